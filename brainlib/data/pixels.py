"""Pixel access for the datasets: one place that turns DICOM paths into tensors.

Datasets ask a :class:`PixelStore` for ``(Z, C, S, S)`` tensors (windowed to [0, 1], or HU
with ``C = 1`` when ``windows`` is None). With ``cache=True`` the store goes through
:mod:`brainlib.data.cache` (preprocessed once, memory-mapped, reused between runs); without
it, files are decoded on every access (handy for a quick look at a few files).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch


def read_slice(path: str, windows: Sequence[Any] | None, size: int | None) -> torch.Tensor:
    """One slice as ``(C, S, S)`` float32 without the cache, computed exactly as the cache does
    (:func:`brainlib.data.cache.preprocess_slice`); ``size=None`` keeps the native size."""
    import brainlib.io as bio

    if size is None:
        hu = bio.read_hu(path)
        arr = bio.stack_windows(hu, tuple(windows)) if windows else hu[None]
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    from brainlib.data.cache import preprocess_slice

    x = torch.from_numpy(preprocess_slice(path, windows, size).astype(np.float32))
    return x.mul_(1.0 / 255.0) if windows else x


class PixelStore:
    """Tensors for DICOM paths at one (windows, size) setting."""

    def __init__(self, windows: Sequence[Any] | None, size: int | None, cache: bool = True,
                 progress: bool = False) -> None:
        if windows:
            from brainlib.io import as_window

            self.windows: tuple[Any, ...] | None = tuple(as_window(w) for w in windows)
        else:
            self.windows = None
        self.size = size
        # The cache stores a fixed working size; native-size access reads on demand.
        self.use_cache = bool(cache) and size is not None
        self.progress = progress
        self._caches: list[Any] = []

    @property
    def channels(self) -> int:
        """Channels per slice: one per window, or 1 for HU."""
        return len(self.windows) if self.windows else 1

    def prepare(self, paths: list[str], workers: int = 0) -> list[Any]:
        """Preprocess ``paths`` into the cache (no-op without cache); return failures as Skipped.

        Each call builds (or reuses, when the same files were cached before) one cache.
        """
        if not self.use_cache or not paths:
            return []
        from brainlib.data.cache import build_cache

        built = build_cache(list(dict.fromkeys(paths)), self.windows, self.size,
                            workers=workers, progress=self.progress)
        self._caches.append(built)
        return list(built.skipped)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle cache references, not pixel arrays (DataLoader workers under spawn)."""
        state = self.__dict__.copy()
        state["_caches"] = [(str(c.file), c.paths, c.skipped, c.windows, c.size)
                            for c in self._caches]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from brainlib.data.cache import SliceCache

        caches = state.pop("_caches")
        self.__dict__.update(state)
        self._caches = [SliceCache(np.load(f, mmap_mode="r"), paths, skipped, wins, size, Path(f))
                        for f, paths, skipped, wins, size in caches]

    def load(self, paths: Sequence[str]) -> torch.Tensor:
        """``(Z, C, S, S)`` float32 tensor for ``paths`` in the given order."""
        paths = [str(p) for p in paths]
        if len(self._caches) == 1 and all(p in self._caches[0].index for p in paths):
            c = self._caches[0]  # common case: one gather from the memory map
            rows = np.fromiter((c.index[p] for p in paths), dtype=np.int64, count=len(paths))
            return self._from_cache(c.array[rows])
        return torch.stack([self._one(p) for p in paths])

    def _from_cache(self, stored: np.ndarray) -> torch.Tensor:
        """Cache rows (uint8 windowed or int16 HU) -> float32, as SliceCache.to_tensor does."""
        x = torch.from_numpy(np.asarray(stored, dtype=np.float32))
        return x.mul_(1.0 / 255.0) if self.windows else x

    def _one(self, path: str) -> torch.Tensor:
        for c in self._caches:
            if path in c.index:
                return self._from_cache(c.array[c.index[path]])
        return read_slice(path, self.windows, self.size)
