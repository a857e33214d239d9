"""Free-space check before the HU slice cache is built.

`prepare_data` caches every slice as int16 HU at the working size (`brainlib.data.cache`).
On the real RSNA 2019 training set (752 803 images) at the paper's 512 px that is ~395 GB,
written without asking; this module estimates the cache's size from the files on disk and
refuses with a clear error, before anything is written, when the disk cannot hold it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from brainlib.experiment.estimate import cache_plan

#: Generous slices per study for a `max_studies` estimate (RSNA studies hold ~20-60 slices).
SLICES_PER_STUDY_BOUND = 60
HU_BYTES = 2  # int16 HU per pixel (brainlib.data.cache)


class CacheSpaceError(OSError):
    """The HU cache would not fit on the disk of its folder."""


def planned_cache_bytes(n_slices: int, size: int) -> int:
    """Bytes of an int16 HU cache of `n_slices` slices at `size` x `size`."""
    return int(n_slices) * int(size) * int(size) * HU_BYTES


def count_dicoms(image_dir: Path) -> int:
    """Number of ``*.dcm`` files directly in `image_dir` (one directory listing)."""
    with os.scandir(image_dir) as it:
        return sum(1 for e in it if e.name.endswith(".dcm"))


def _existing_rows(cache_folder: Path, size: int) -> int:
    """Most rows of an HU cache at `size` already in `cache_folder` (0 without one)."""
    best = 0
    for npy in cache_folder.glob("slices-*.npy"):
        try:
            arr = np.load(npy, mmap_mode="r")
        except (OSError, ValueError):
            continue
        if arr.dtype == np.int16 and arr.shape[1:] == (1, size, size):
            best = max(best, int(arr.shape[0]))
    return best


def check_cache_space(image_dir: Path, cache_folder: Path, size: int,
                      max_studies: int | None = None) -> int:
    """Raise :class:`CacheSpaceError` when the HU cache of the DICOMs in `image_dir` at `size`
    px cannot fit in `cache_folder`'s free space; return the planned bytes otherwise.

    The slice count is the number of files (bounded by ``max_studies * 60`` when set); a
    cache of this size already holding that many rows needs no new space.
    """
    n = count_dicoms(image_dir)
    if max_studies is not None:
        n = min(n, int(max_studies) * SLICES_PER_STUDY_BOUND)
    planned = planned_cache_bytes(n, size)
    if n == 0 or _existing_rows(cache_folder, size) >= n:
        return planned
    plan = cache_plan(n, size, 1, HU_BYTES, cache_folder, reserve=0.0)
    if not plan.fits:
        raise CacheSpaceError(
            f"{cache_folder}: the HU slice cache of {n} slices at {size} px needs about "
            f"{planned / 1e9:.1f} GB but only {plan.bytes_free / 1e9:.1f} GB are free there. Free space, "
            f"point BRAINLIB_CACHE at a larger disk, lower image_size, set max_studies, or "
            f"call prepare_data(exp, cache=False) (reads every DICOM on each access: slow)")
    return planned
