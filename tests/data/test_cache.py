"""brainlib.data.cache: windowed / HU slice cache (correctness, reuse, skipped, workers)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from brainlib.data import cache as cache_mod
from brainlib.data.cache import SliceCache, area_resize, build_cache, cache_key, preprocess_slice
from brainlib.io import BONE, BRAIN, SOFT_TISSUE, SUBDURAL, UnreadableDicomError, read_hu, stack_windows
from brainlib.io.testing import write_ct_slice

WINS = (BRAIN, SUBDURAL, SOFT_TISSUE)


def phantom(seed: int, n: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hu = rng.normal(40, 150, (n, n))
    hu[: n // 4] = -1024
    hu[-2:] = 1500
    return np.clip(hu, -1024, 3000)


@pytest.fixture()
def slices(tmp_path) -> list[str]:
    return [str(write_ct_slice(tmp_path / "dcm" / f"{i}.dcm", phantom(i), instance_number=i + 1)) for i in range(5)]


def reference(path: str, windows, size: int) -> np.ndarray:
    """Slow, obvious reference: HU from read_hu, area resize, window."""
    hu = read_hu(path)
    f = hu.shape[0] // size
    small = hu.reshape(size, f, size, f).astype(np.float64).mean(axis=(1, 3))
    return stack_windows(small, windows) if windows is not None else small[None]


def test_windowed_cache_matches_reference(tmp_path, slices):
    c = build_cache(slices, WINS, 32, cache_dir=tmp_path / "c", progress=False)
    assert isinstance(c, SliceCache) and c.array.shape == (5, 3, 32, 32) and c.array.dtype == np.uint8
    assert isinstance(c.array, np.memmap)
    assert c.skipped == [] and c.index == {p: i for i, p in enumerate(slices)}
    for p in slices:
        x = c.to_tensor(p)
        assert x.dtype == torch.float32 and x.shape == (3, 32, 32)
        assert float(x.min()) >= 0 and float(x.max()) <= 1
        np.testing.assert_allclose(x.numpy(), reference(p, WINS, 32), atol=0.5 / 255 + 1e-6)
    assert torch.equal(c.to_tensor(2), c.to_tensor(slices[2]))


def test_hu_cache_int16(tmp_path, slices):
    c = build_cache(slices, None, 16, cache_dir=tmp_path / "c", progress=False)
    assert c.array.shape == (5, 1, 16, 16) and c.array.dtype == np.int16
    np.testing.assert_allclose(c.to_tensor(0).numpy(), reference(slices[0], None, 16), atol=0.5 + 1e-3)


def test_non_integer_factor_and_non_square(tmp_path):
    p = str(write_ct_slice(tmp_path / "r.dcm", phantom(0, 60)[:, :48]))  # 60 x 48
    x = preprocess_slice(p, [BRAIN, BONE], 25)
    assert x.shape == (2, 25, 25) and x.dtype == np.uint8
    hu = read_hu(p)
    padded = np.full((60, 60), hu.min(), np.float32)
    padded[:, 6:54] = hu
    ref = stack_windows(area_resize(padded, 25), [BRAIN, BONE])
    np.testing.assert_allclose(x / 255.0, ref, atol=0.5 / 255 + 1e-4)


def test_area_resize_integer_and_general_agree_on_means():
    a = np.arange(36, dtype=np.int16).reshape(6, 6)
    np.testing.assert_allclose(area_resize(a, 3), a.reshape(3, 2, 3, 2).mean(axis=(1, 3)))
    np.testing.assert_allclose(area_resize(a.astype(np.float32), 3), area_resize(a, 3), atol=1e-4)
    assert area_resize(a, 4).mean() == pytest.approx(a.mean(), rel=1e-5)


def test_rsna12_and_int16_files_cache_identically(tmp_path):
    hu = np.clip(phantom(3), -1000, 3000)
    a = str(write_ct_slice(tmp_path / "a.dcm", hu, style="int16"))
    b = str(write_ct_slice(tmp_path / "b.dcm", hu, style="rsna12"))
    np.testing.assert_array_equal(preprocess_slice(a, WINS, 32), preprocess_slice(b, WINS, 32))


def test_reuse_and_invalidation(tmp_path, slices, monkeypatch):
    c1 = build_cache(slices, WINS, 32, cache_dir=tmp_path / "c", progress=False)

    def boom(*a, **k):
        raise AssertionError("cache was rebuilt")

    monkeypatch.setattr(cache_mod, "read_stored", boom)
    c2 = build_cache(slices, WINS, 32, cache_dir=tmp_path / "c", progress=False)
    assert c2.file == c1.file and np.array_equal(c1.array, c2.array)
    monkeypatch.undo()

    # another size, other windows, or a modified source -> another key
    k = cache_key(slices, WINS, 32)
    assert cache_key(slices, WINS, 16) != k and cache_key(slices, (BRAIN,), 32) != k
    os.utime(slices[0], ns=(1, 1))
    assert cache_key(slices, WINS, 32) != k
    c3 = build_cache(slices, WINS, 32, cache_dir=tmp_path / "c", progress=False)
    assert c3.file != c1.file
    hidden = [p.name for p in (tmp_path / "c").iterdir() if p.name.startswith(".")]
    assert all(name.endswith(".lock") for name in hidden), hidden  # no temp files (locks stay)


def test_broken_files_are_skipped_not_fatal(tmp_path, slices):
    zero = tmp_path / "zero.dcm"
    zero.write_bytes(b"")
    gone = str(tmp_path / "missing.dcm")
    paths = [slices[0], str(zero), slices[1], gone, slices[2]]
    c = build_cache(paths, WINS, 32, cache_dir=tmp_path / "c", progress=False)
    assert c.paths == [slices[0], slices[1], slices[2]] and c.array.shape[0] == 3
    assert [(s.path, s.error) for s in c.skipped] == [
        (str(zero), "UnreadableDicomError"), (gone, "UnreadableDicomError")]
    full = build_cache(slices[:3], WINS, 32, cache_dir=tmp_path / "c2", progress=False)
    np.testing.assert_array_equal(c.array, full.array)
    again = build_cache(paths, WINS, 32, cache_dir=tmp_path / "c", progress=False)
    assert again.skipped == c.skipped  # the skipped list is kept with the cache


def test_workers_give_identical_cache(tmp_path, slices):
    serial = build_cache(slices, WINS, 32, cache_dir=tmp_path / "a", progress=False)
    par = build_cache(slices + [str(tmp_path / "nope.dcm")], WINS, 32, cache_dir=tmp_path / "b",
                      workers=2, progress=False)
    np.testing.assert_array_equal(serial.array, par.array)
    assert [s.path for s in par.skipped] == [str(tmp_path / "nope.dcm")]


def test_bad_arguments(tmp_path, slices):
    with pytest.raises(ValueError, match="duplicates"):
        build_cache([slices[0], slices[0]], WINS, 32, cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError):
        build_cache(slices, [], 32, cache_dir=tmp_path, progress=False)
    with pytest.raises(UnreadableDicomError):
        preprocess_slice(str(tmp_path / "none.dcm"), WINS, 32)


def test_default_cache_dir_from_env(tmp_path, slices, monkeypatch):
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path / "env"))
    c = build_cache(slices[:1], WINS, 32, progress=False)
    assert Path(c.file).parent == tmp_path / "env" / "slices"


def test_all_inputs_broken_gives_empty_cache_with_skipped(tmp_path):
    c = build_cache([str(tmp_path / "a.dcm")], WINS, 32, cache_dir=tmp_path / "c", progress=False)
    assert c.array.shape == (0, 3, 32, 32) and len(c) == 0
    assert [s.error for s in c.skipped] == ["UnreadableDicomError"]
    assert str(tmp_path / "a.dcm") in c.skipped[0].path
