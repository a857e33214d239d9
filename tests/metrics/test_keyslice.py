"""Key-slice tasks of Wang et al. (Algorithm 1): hand-worked scans, edge cases, errors."""
import numpy as np
import pytest

from brainlib.metrics.keyslice import key_slice_recall, key_slice_task


def _scan(m, key_idx, att_order):
    """One scan of m slices: key slices `key_idx`, attention ranking `att_order` (best first)."""
    key = np.zeros(m, bool)
    key[list(key_idx)] = True
    att = np.zeros(m)
    for rank, i in enumerate(att_order):
        att[i] = m - rank
    return att, key


def _stack(*scans):
    return np.stack([s[0] for s in scans]), np.stack([s[1] for s in scans])


def test_easy_counts_top5_hits_over_scans_with_at_least_5_keys():
    a = _scan(10, range(0, 6), [0, 1, 2, 7, 8])      # 6 keys, 3 of the top 5 are key -> 0.6
    b = _scan(10, range(2, 7), [2, 3, 4, 5, 6])      # 5 keys, all found -> 1.0
    c = _scan(10, [1, 2], [1, 2, 3, 4, 5])           # 2 keys: not an easy scan
    d = _scan(10, [], [0, 1, 2, 3, 4])               # healthy: not counted
    att, key = _stack(a, b, c, d)
    acc, n = key_slice_task(att, key, "easy")
    assert n == 2 and acc == pytest.approx(80.0)


def test_difficult_scores_any_hit_in_top5_for_1_to_5_keys():
    a = _scan(10, [9], [0, 1, 2, 3, 4])              # missed -> 0
    b = _scan(10, [4, 5], [0, 1, 2, 3, 4])           # one hit -> 1
    c = _scan(10, range(5), [9, 8, 7, 6, 5])         # 5 keys (counted), none found -> 0
    d = _scan(10, range(6), [0, 1, 2, 3, 4])         # 6 keys: not difficult
    att, key = _stack(a, b, c, d)
    acc, n = key_slice_task(att, key, "difficult")
    assert n == 3 and acc == pytest.approx(100 / 3)


def test_comprehensive_uses_top_h():
    a = _scan(8, [0, 1, 2], [0, 5, 1, 2])            # top 3 = {0,5,1}: 2/3
    b = _scan(8, [7], [7, 0])                        # top 1 = {7}: 1
    c = _scan(8, [], [0])                            # not counted
    att, key = _stack(a, b, c)
    acc, n = key_slice_task(att, key, "comprehensive")
    assert n == 2 and acc == pytest.approx((2 / 3 + 1) / 2 * 100)
    recall, amount = key_slice_recall(att, key)       # slice-weighted: (2 + 1) / 4
    assert amount == 4 and recall == pytest.approx(75.0)


def test_perfect_attention_scores_100_and_ties_are_stable():
    rng = np.random.default_rng(0)
    key = rng.random((20, 12)) < 0.3
    att = key.astype(float) + 0.01 * rng.random((20, 12))
    for task in ("easy", "difficult", "comprehensive"):
        acc, n = key_slice_task(att, key, task)
        assert n == 0 or acc == pytest.approx(100.0)
    flat = np.zeros((1, 6))                           # all tied: top 5 = slices 0..4
    assert key_slice_task(flat, np.array([[0, 0, 0, 0, 0, 1]], bool), "difficult") == (0.0, 1)


def test_no_qualifying_scan_gives_nan_and_zero():
    acc, n = key_slice_task(np.ones((2, 6)), np.zeros((2, 6), bool), "easy")
    assert n == 0 and np.isnan(acc)


@pytest.mark.parametrize("att,key,task,msg", [
    (np.ones((2, 5)), np.zeros((2, 4), bool), "easy", "shape"),
    (np.ones(5), np.zeros(5, bool), "easy", "n_scans"),
    (np.ones((1, 5)), np.zeros((1, 5), bool), "medium", "task"),
    (np.full((1, 5), np.nan), np.zeros((1, 5), bool), "easy", "NaN"),
    (np.ones((1, 5)), np.full((1, 5), 2), "easy", "boolean"),
])
def test_bad_input_raises(att, key, task, msg):
    with pytest.raises(ValueError, match=msg):
        key_slice_task(att, key, task)


def test_repeated_slices_count_once_in_h_and_hits():
    # a 3-slice scan sampled to 6 positions: slices 0,0,1,1,2,2; slice 2 is the only key slice
    pos = np.array([[0, 0, 1, 1, 2, 2]])
    key = np.array([[0, 0, 0, 0, 1, 1]], bool)
    att = np.array([[0.30, 0.05, 0.25, 0.05, 0.20, 0.15]])
    # without positions h = 2 and the top 2 (slices 0, 1) miss it: 0 %
    assert key_slice_task(att, key, "comprehensive") == (0.0, 1)
    # distinct slices: h = 1, ranking by best copy 0 (0.30) > 1 (0.25) > 2 (0.20): still 0 %
    assert key_slice_task(att, key, "comprehensive", positions=pos) == (0.0, 1)
    att2 = np.array([[0.10, 0.05, 0.25, 0.05, 0.40, 0.15]])  # slice 2 ranked first
    assert key_slice_task(att2, key, "comprehensive", positions=pos) == (100.0, 1)
    # 2 repeated key copies were 2 of the old h; distinct count is 1 for recall and difficult
    assert key_slice_recall(att2, key, positions=pos) == (100.0, 1)
    assert key_slice_recall(att2, key)[1] == 2
    # easy needs >= 5 distinct key slices: 3 distinct slices repeated never qualify
    full = np.ones((1, 6), bool)
    assert key_slice_task(att2, full, "easy")[1] == 1
    assert key_slice_task(att2, full, "easy", positions=pos)[1] == 0
    # top 5 of the distinct slices: copies never fill the top with the same slice twice
    pos3 = np.array([[0, 0, 0, 1, 1, 1, 2, 3, 4, 5]])
    key3 = np.zeros((1, 10), bool)
    key3[0, 9] = True                                     # slice 5, ranked 6th of positions
    att3 = np.array([[9, 8, 7, 6, 5, 4, 3, 2, 1, 0.5]])
    assert key_slice_task(att3, key3, "difficult") == (0.0, 1)
    assert key_slice_task(att3, key3, "difficult", positions=pos3) == (0.0, 1)  # 6 distinct
    pos4 = np.array([[0, 0, 0, 1, 1, 1, 2, 3, 4, 4]])  # 5 distinct: slice 4 is in the top 5
    assert key_slice_task(att3, key3, "difficult", positions=pos4) == (100.0, 1)
    # a slice is key when any copy is marked (its best copy, index 8, is the one kept)
    assert key_slice_recall(att3, key3, positions=pos4) == (0.0, 1)


def test_positions_without_repeats_change_nothing_and_bad_shape_raises():
    rng = np.random.default_rng(1)
    att, key = rng.random((5, 8)), rng.random((5, 8)) < 0.4
    pos = np.tile(np.arange(8), (5, 1))
    for task in ("easy", "difficult", "comprehensive"):
        np.testing.assert_equal(key_slice_task(att, key, task, pos), key_slice_task(att, key, task))
    with pytest.raises(ValueError, match="positions"):
        key_slice_task(att, key, "easy", positions=pos[:, :4])
