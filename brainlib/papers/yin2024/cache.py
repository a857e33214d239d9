"""The yin2024 image-set cache, saved without pickle.

Building an :class:`~brainlib.papers.yin2024.data.ImageSet` scans a CQ500 or DeepLesion tree
(the slow part), so it is saved once per (data, settings, seed). The cache folder can be shared
(``$BRAINLIB_CACHE``) and a pickle runs code when it is loaded, so the set is stored as plain
arrays in an ``.npz`` read with ``allow_pickle=False`` (:mod:`brainlib.data.npz_store`):
strings as fixed-width unicode, the variable number of lesion masks per image as one
concatenated block with per-image counts, the skipped list and ``extra`` as JSON strings. A
damaged or foreign file (a planted pickle included) is a :class:`ValueError`, never code
execution; :func:`brainlib.papers.yin2024.data.load_set` then rebuilds the set.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from brainlib.data.npz_store import (NPZ_ERRORS, load_arrays, save_arrays, skipped_from_array,
                                     skipped_to_array)

__all__ = ["FORMAT", "load_image_set", "save_image_set"]

FORMAT = "brainlib.yin2024.imageset/1"


def save_image_set(path: str | Path, data: Any, root: str, synthetic: bool, skipped: list[Any]) -> Path:
    """Write ``data`` (an ImageSet) and its source (root, synthetic, skipped) atomically."""
    counts = np.array([len(m) for m in data.masks], np.int64)
    size = data.images.shape[1:]
    masks = np.concatenate(data.masks) if counts.sum() else np.zeros((0, *size), bool)
    inst = np.concatenate(data.inst_labels).astype(np.int64) if counts.sum() else np.zeros(0, np.int64)
    arrays = {
        "format": np.array(FORMAT), "name": np.array(data.name), "classes": np.array(data.classes, dtype=str),
        "images": data.images.astype(np.float32), "label": data.label.astype(np.int64),
        "ids": np.array(data.ids, dtype=str), "groups": np.asarray(data.groups, dtype=str),
        "split": np.asarray(data.split, dtype=str), "mask_counts": counts, "masks": masks.astype(bool),
        "inst_labels": inst, "extra": np.array(json.dumps(data.extra)), "root": np.array(str(root)),
        "synthetic": np.array(bool(synthetic)),
        "skipped": skipped_to_array(skipped),
    }
    return save_arrays(path, arrays)


def load_image_set(path: str | Path) -> tuple[dict[str, Any], tuple[str, bool, list[Any]]]:
    """Read what :func:`save_image_set` wrote: (ImageSet fields, (root, synthetic, skipped)).
    Raises ValueError for a damaged or foreign file (never unpickles)."""
    try:
        d = load_arrays(path)
        if str(d["format"]) != FORMAT:
            raise ValueError(f"format {str(d['format'])!r}, expected {FORMAT!r}")
        counts = d["mask_counts"]
        edges = np.concatenate([[0], np.cumsum(counts)])
        if len(counts) != len(d["label"]) or edges[-1] != len(d["masks"]) or edges[-1] != len(d["inst_labels"]):
            raise ValueError("mask counts do not match the stored masks")
        fields = {
            "name": str(d["name"]), "classes": tuple(str(c) for c in d["classes"]), "images": d["images"],
            "label": d["label"], "ids": [str(i) for i in d["ids"]], "groups": d["groups"], "split": d["split"],
            "masks": [d["masks"][a:b] for a, b in zip(edges[:-1], edges[1:])],
            "inst_labels": [d["inst_labels"][a:b] for a, b in zip(edges[:-1], edges[1:])],
            "extra": json.loads(str(d["extra"])),
        }
        skipped = skipped_from_array(d["skipped"])
        source = (str(d["root"]), bool(d["synthetic"]), skipped)
    except NPZ_ERRORS as err:
        raise ValueError(f"{path}: not a yin2024 image-set cache ({type(err).__name__}: {err})") from err
    return fields, source
