"""he2024 data: training-slice selection (quick profile) and the HU-cache free-space check."""
from __future__ import annotations

import shutil
from collections import namedtuple

import numpy as np
import pytest

from brainlib.papers.he2024 import cache_space
from brainlib.papers.he2024.cache_space import CacheSpaceError, check_cache_space
from brainlib.papers.he2024.data import informative_slices

NAN = np.nan


def _labels():
    # rows: 0 certain positive, 1 negative, 2 only uncertain, 3 negative, 4 positive + uncertain,
    # 5..9 negatives
    lab = np.zeros((10, 6), np.float32)
    lab[0, [0, 2]] = 1
    lab[2, [0, 3]] = NAN
    lab[4, [0, 1]] = 1
    lab[4, 5] = NAN
    return lab


def test_informative_slices_keeps_every_positive_and_draws_negatives():
    lab = _labels()
    rows = np.arange(10)
    out = informative_slices(lab, rows, 1.0, seed=0)
    assert {0, 4} <= set(out)          # every certain positive
    assert 2 not in out                # uncertain-only slice carries nothing but zeros
    assert len(out) == 4               # two positives + two lesion-free slices
    assert np.all(np.diff(out) > 0)
    neg = [r for r in out if r not in (0, 4)]
    assert all(np.all(lab[r] == 0) for r in neg)
    np.testing.assert_array_equal(out, informative_slices(lab, rows, 1.0, seed=0))
    draws = {tuple(informative_slices(lab, rows, 1.0, seed=s)) for s in range(20)}
    assert len(draws) > 1              # the seed chooses the negatives


def test_informative_slices_respects_the_split_and_caps_negatives():
    lab = _labels()
    out = informative_slices(lab, np.array([0, 1, 2, 3]), 5.0, seed=1)
    assert out.tolist() == [0, 1, 3]   # only rows of the split; fewer negatives than asked
    with pytest.raises(ValueError):
        informative_slices(lab, np.arange(10), -1.0, seed=0)


def _tree(tmp_path, n):
    image_dir = tmp_path / "stage_2_train"
    image_dir.mkdir()
    for i in range(n):
        (image_dir / f"ID_{i:09x}.dcm").write_bytes(b"")
    cache = tmp_path / "cache"
    cache.mkdir()
    return image_dir, cache


Usage = namedtuple("Usage", "total used free")


def test_cache_space_refuses_before_writing_when_the_disk_is_too_small(tmp_path, monkeypatch):
    image_dir, cache = _tree(tmp_path, 10)
    need = cache_space.planned_cache_bytes(10, 512)
    assert need == 10 * 512 * 512 * 2
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 0, need - 1))
    with pytest.raises(CacheSpaceError) as err:
        check_cache_space(image_dir, cache, 512)
    msg = str(err.value)
    assert str(cache) in msg and "10 slices at 512 px" in msg
    assert "BRAINLIB_CACHE" in msg and "cache=False" in msg
    assert list(cache.iterdir()) == []
    # enough room, a smaller size, or a max_studies bound pass
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 0, need))
    assert check_cache_space(image_dir, cache, 512) == need


def test_cache_space_counts_max_studies_and_existing_caches(tmp_path, monkeypatch):
    image_dir, cache = _tree(tmp_path, 200)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 0, 0))
    with pytest.raises(CacheSpaceError):
        check_cache_space(image_dir, cache, 64, max_studies=1)   # min(200, 60) slices
    arr = np.lib.format.open_memmap(cache / "slices-abc.npy", mode="w+", dtype=np.int16,
                                    shape=(200, 1, 64, 64))
    del arr
    assert check_cache_space(image_dir, cache, 64) == 200 * 64 * 64 * 2  # cache exists
    with pytest.raises(CacheSpaceError):
        check_cache_space(image_dir, cache, 128)                  # not at this size


def test_evaluation_loaders_use_the_eval_batch_size():
    from types import SimpleNamespace

    from brainlib.papers.he2024.train import make_loaders

    data = SimpleNamespace(subset=lambda part: list(range(100)))
    for ebs, want in ((64, 64), (None, 8)):
        exp = SimpleNamespace(settings=SimpleNamespace(batch_size=8, eval_batch_size=ebs), seed=0)
        loaders = make_loaders(exp, data)
        assert loaders["train"].batch_size == 8
        assert loaders["val"].batch_size == loaders["test"].batch_size == want
