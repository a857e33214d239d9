"""CAM, CAM -> box, IoU and AP (brainlib.localize; He et al. 2024 section 2.1.3, eq. 4.1)."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from brainlib.localize import (
    average_precision, box_iou, cam_box, class_activation_maps, interpolated_average_precision,
    load_box_csv, localization_ap, mask_boxes, match_detections,
)

torch.set_num_threads(1)


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.feat = nn.Identity()
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return self.fc(self.feat(x).mean(dim=(2, 3)))


def test_cam_is_classifier_weighted_feature_sum():
    m = _Tiny()
    x = torch.zeros(1, 2, 4, 4)
    x[0, 0, 1, 2] = 4.0
    x[0, 1, 3, 0] = 2.0
    cams, logits = class_activation_maps(m, x, "feat", "fc")
    assert cams.shape == (1, 3, 4, 4) and logits.shape == (1, 3)
    w = m.fc.weight.detach().numpy()
    expected = np.einsum("ck,khw->chw", w, x[0].numpy())
    np.testing.assert_allclose(cams[0], expected, rtol=1e-5, atol=1e-6)
    # GAP of the CAM + bias is the logit (the CAM identity)
    np.testing.assert_allclose(cams[0].mean(axis=(1, 2)) + m.fc.bias.detach().numpy(),
                               logits[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(KeyError):
        class_activation_maps(m, x, "nope", "fc")


def test_cam_box_takes_largest_component_above_20_percent():
    cam = np.zeros((20, 20))
    cam[2:4, 2:4] = 1.0          # small but hottest blob
    cam[10:16, 5:12] = 0.5       # large warm blob -> the box
    cam[0, 19] = 0.1             # below 20 % of max
    assert cam_box(cam) == (5, 10, 12, 16)
    assert cam_box(cam, threshold=0.6) == (2, 2, 4, 4)
    assert cam_box(np.ones((5, 5))) is None


def test_cam_box_threshold_is_a_fraction_of_the_maximum_not_of_the_range():
    # min + 20 % of the range would be -10 + 0.2 * 20 = -6 and keep the whole left half;
    # 20 % of the maximum (Sec. 2.1.3) is 2 and keeps only the hot blob.
    cam = np.full((10, 10), -10.0)
    cam[:, :5] = -5.0
    cam[2:5, 6:9] = 10.0
    cam[7, 7] = 1.0  # below 2: left out
    assert cam_box(cam) == (6, 2, 9, 5)
    assert cam_box(np.full((4, 4), -1.0) + np.eye(4)) is None  # max 0: nothing to threshold
    assert cam_box(-np.ones((4, 4)) - np.eye(4)) is None


def test_interpolated_ap_follows_eq_4_1():
    # ranked hits: TP, FP, TP with 4 ground-truth boxes -> recall .25 (P 1), .5 (P 2/3)
    scores, tp = np.array([0.9, 0.8, 0.7]), np.array([True, False, True])
    points = np.linspace(0, 1, 101)
    want = np.where(points <= 0.25, 1.0, np.where(points <= 0.5, 2 / 3, 0.0)).mean()
    assert interpolated_average_precision(scores, tp, 4) == pytest.approx(want)
    # 11 points (VOC 2007): r = 0, .1, .2 -> 1; .3, .4, .5 -> 2/3; rest 0
    assert interpolated_average_precision(scores, tp, 4, n_points=11) == \
        pytest.approx((3 * 1.0 + 3 * 2 / 3) / 11)
    # every box found at precision 1 -> 1; none found -> 0; order of input irrelevant
    assert interpolated_average_precision([0.1, 0.5], [True, True], 2) == pytest.approx(1.0)
    assert interpolated_average_precision([0.1], [False], 2) == 0.0
    assert interpolated_average_precision(scores[::-1], tp[::-1], 4) == \
        interpolated_average_precision(scores, tp, 4)
    # the step AP differs (no interpolation): .25 * 1 + .25 * 2/3
    assert average_precision(scores, tp, 4) == pytest.approx(0.25 + 0.25 * 2 / 3)
    with pytest.raises(ValueError):
        interpolated_average_precision(scores, tp, 0)


def test_mask_boxes_and_iou():
    mask = np.zeros((10, 10), bool)
    mask[1:3, 1:4] = True
    mask[6:9, 6:8] = True
    assert sorted(mask_boxes(mask)) == [(1, 1, 4, 3), (6, 6, 8, 9)]
    assert box_iou((0, 0, 2, 2), (0, 0, 2, 2)) == 1.0
    assert box_iou((0, 0, 2, 2), (1, 0, 3, 2)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def _boxes(rows, score=False):
    cols = ["image_id", "class", "x0", "y0", "x1", "y1"] + (["score"] if score else [])
    return pd.DataFrame(rows, columns=cols)


def test_ap_counts_unmatched_ground_truth_and_iou_threshold():
    gt = _boxes([("a", "sdh", 0, 0, 10, 10), ("b", "sdh", 0, 0, 10, 10),
                 ("c", "sdh", 0, 0, 10, 10), ("d", "sdh", 0, 0, 10, 10)])
    det = _boxes([("a", "sdh", 0, 0, 10, 10, 0.9),   # TP
                  ("e", "sdh", 0, 0, 10, 10, 0.8),   # FP (no GT on image e)
                  ("b", "sdh", 0, 0, 10, 5, 0.7),    # IoU 0.5, not > 0.5 -> FP
                  ("c", "sdh", 0, 0, 10, 9, 0.6)],   # IoU 0.9 -> TP
                 score=True)
    m = match_detections(det, gt)
    assert m["tp"].tolist() == [True, False, False, True]
    # precision at each TP: 1/1 and 2/4; recall steps of 1/4 over 4 GT boxes
    ap = average_precision(m["score"].to_numpy(), m["tp"].to_numpy(), 4)
    assert ap == pytest.approx(0.25 * 1.0 + 0.25 * 0.5)


def test_localization_ap_flags_rare_classes_and_means_the_rest():
    gt = _boxes([(f"i{k}", "sdh", 0, 0, 4, 4) for k in range(5)] + [("i0", "edh", 0, 0, 4, 4)])
    det = _boxes([(f"i{k}", "sdh", 0, 0, 4, 4, 0.9 - k / 10) for k in range(5)]
                 + [("i0", "edh", 0, 0, 4, 4, 0.9)], score=True)
    table = localization_ap(det, gt, ["edh", "sdh"], min_positives=5)
    row = table.set_index("class")
    assert np.isnan(row.loc["edh", "ap"]) and "too few" in row.loc["edh", "note"]
    assert row.loc["sdh", "ap"] == pytest.approx(1.0)
    assert row.loc["mAP", "ap"] == pytest.approx(1.0)


def test_load_box_csv_errors_name_the_file(tmp_path):
    good = tmp_path / "boxes.csv"
    good.write_text("image_id,class,x0,y0,x1,y1\nID_1,subdural,1,2,5,6\n")
    assert load_box_csv(good).iloc[0]["x1"] == 5
    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,class,x0,y0,x1\nID_1,subdural,1,2,5\n")
    with pytest.raises(ValueError, match="bad.csv"):
        load_box_csv(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("image_id,class,x0,y0,x1,y1\nID_1,subdural,5,2,5,6\n")
    with pytest.raises(ValueError, match="line 2"):
        load_box_csv(empty)


def test_cam_to_box_to_ap_end_to_end():
    """A network whose class-k feature is the lesion itself localises perfectly (AP = 1)."""
    m = _Tiny()
    with torch.no_grad():
        m.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        m.fc.bias.zero_()
    x = torch.zeros(3, 2, 16, 16)
    lesions = [(0, (2, 3, 6, 8)), (1, (9, 9, 14, 12)), (0, (10, 1, 13, 5))]
    for i, (k, (x0, y0, x1, y1)) in enumerate(lesions):
        x[i, k, y0:y1, x0:x1] = 1.0
    cams, logits = class_activation_maps(m, x, "feat", "fc")
    det = _boxes([(f"i{i}", f"c{k}", *cam_box(cams[i, k]), float(logits[i, k]))
                  for i, (k, _) in enumerate(lesions)], score=True)
    gt = _boxes([(f"i{i}", f"c{k}", *box) for i, (k, box) in enumerate(lesions)])
    table = localization_ap(det, gt, ["c0", "c1"], min_positives=1).set_index("class")
    assert table.loc["mAP", "ap"] == pytest.approx(1.0)
    # shifting every predicted box by half its size drops IoU below 0.5: AP 0
    shifted = det.assign(x0=det.x0 + 3, x1=det.x1 + 3)
    assert localization_ap(shifted, gt, ["c0", "c1"], min_positives=1).iloc[-1]["ap"] == 0.0
