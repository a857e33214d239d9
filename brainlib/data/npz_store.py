"""Caches as plain arrays in an ``.npz``, never a pickle.

A cache folder can be shared (``$BRAINLIB_CACHE``) and a pickle runs code when it is loaded,
so brainlib's caches (header indexes, `index_store`; yin2024's image sets) are ``.npz`` files
of plain arrays written atomically and read with ``allow_pickle=False``. A reader catches
`NPZ_ERRORS` and raises one ValueError naming the file, and its caller rebuilds the cache.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from brainlib._atomic import atomic_path

__all__ = ["NPZ_ERRORS", "load_arrays", "save_arrays", "skipped_from_array", "skipped_to_array"]

#: What reading a damaged or foreign file can raise (a planted pickle included).
NPZ_ERRORS: tuple[type[BaseException], ...] = (OSError, KeyError, EOFError, ValueError,
                                               zipfile.BadZipFile, TypeError)


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` atomically as an ``.npz`` (temp file + rename)."""
    with atomic_path(path, fsync=False) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return Path(path)


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, read without unpickling (object arrays are refused)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def skipped_to_array(skipped: Iterable[Any]) -> np.ndarray:
    """A skipped list (`brainlib.io.Skipped`) as JSON strings."""
    return np.array([json.dumps([s.path, s.error, s.reason]) for s in skipped], dtype=str)


def skipped_from_array(values: np.ndarray) -> list[Any]:
    """The inverse of :func:`skipped_to_array`."""
    from brainlib.io import Skipped

    return [Skipped(*json.loads(str(s))) for s in values]
