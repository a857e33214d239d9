"""Header indexes (:func:`brainlib.io.scan_folder` results) saved without pickle.

The cache folder can be shared (``$BRAINLIB_CACHE``) and a pickle runs code when loaded, so
the index is stored as plain arrays in an ``.npz`` read with ``allow_pickle=False``: strings
as fixed-width unicode, numbers as numbers, the tuple columns (spacing, position,
orientation) as float blocks with a presence mask, the skipped list as JSON strings. A damaged
or foreign file is a :class:`ValueError` (the caller rescans), never code execution.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainlib.data.npz_store import (NPZ_ERRORS, load_arrays, save_arrays, skipped_from_array,
                                     skipped_to_array)

__all__ = ["TUPLE_COLUMNS", "load_index", "save_index"]

#: Index columns holding a tuple of floats (or None), with their length.
TUPLE_COLUMNS = {"pixel_spacing": 2, "image_position": 3, "image_orientation": 6}


def save_index(path: str | Path, index: pd.DataFrame, skipped: list[Any]) -> Path:
    """Write ``(index, skipped)`` atomically as an ``.npz`` of plain arrays."""
    arrays: dict[str, np.ndarray] = {"columns": np.array(list(index.columns), dtype=str)}
    for col in index.columns:
        values = index[col].to_list()
        if col in TUPLE_COLUMNS:
            block = np.full((len(values), TUPLE_COLUMNS[col]), np.nan)
            present = np.array([v is not None for v in values], dtype=bool)
            for i, v in enumerate(values):
                if v is not None:
                    block[i] = v
            arrays[f"t:{col}"], arrays[f"p:{col}"] = block, present
        else:
            arr = index[col].to_numpy()
            arrays[f"c:{col}"] = arr if arr.dtype.kind in "biuf" else np.array([str(v) for v in values], dtype=str)
    arrays["skipped"] = skipped_to_array(skipped)
    return save_arrays(path, arrays)


def load_index(path: str | Path) -> tuple[pd.DataFrame, list[Any]]:
    """Read what :func:`save_index` wrote. Raises ValueError for a damaged or foreign file."""
    try:
        data = load_arrays(path)
        columns = [str(c) for c in data["columns"]]
        out: dict[str, Any] = {}
        for col in columns:
            if col in TUPLE_COLUMNS:
                block, present = data[f"t:{col}"], data[f"p:{col}"]
                out[col] = [tuple(float(x) for x in row) if ok else None for row, ok in zip(block, present)]
            else:
                arr = data[f"c:{col}"]
                out[col] = arr.tolist() if arr.dtype.kind == "U" else arr
        skipped = skipped_from_array(data["skipped"])
    except NPZ_ERRORS as err:
        raise ValueError(f"{path}: not a brainlib index ({type(err).__name__}: {err})") from err
    return pd.DataFrame(out, columns=columns), skipped
