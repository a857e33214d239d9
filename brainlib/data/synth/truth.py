"""Ground-truth sidecar of a phantom dataset: `<root>/_phantom_truth/`.

Loaders of the real layouts never look here; tests and metrics (CAM localisation AP,
Mask R-CNN, reader agreement) do. Contents, each written atomically:

- `params.json`: generator version, layout, seed, size, difficulty, `min_pixels`, and every
  study's drawn parameters.
- `slice_labels.csv`: one row per written image: `sop_uid`, `image_id` (RSNA `ID_<hex>` or
  the CQ500 relative path), `study_id`, `series_uid`, `series_description`, `path` (relative
  to root), `z_index` (0 = most inferior), `position_z`, the RSNA classes, `calvarial_fracture`,
  `calcification` (distractor present, never a positive label).
- `study_labels.csv`: one row per study (RSNA: `study_id` = StudyInstanceUID; CQ500: one row
  per patient, `study_id` = the reads.csv name) with `study_seed` and the generator's truth
  (the 14 CQ500 fields + RSNA classes, from the thick plain series' masks); for CQ500 also
  every reader's call `R1:<label>`... and `majority:<label>` for the 9 `CQ500_CLASSES`.
- `masks/<series_uid>.npz`: per class a (Z, H, W) bool array (compressed) and `sop_uids`.
- `COMPLETE`: written last; a tree without it is never trusted.
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from brainlib._atomic import atomic_path

TRUTH_DIR = "_phantom_truth"
BOX_MODES = ("all", "largest")


class PhantomTruthError(FileNotFoundError):
    """The phantom ground-truth sidecar is missing or incomplete."""


def write_masks(path: Path, masks: dict[str, np.ndarray], sop_uids: list[str]) -> None:
    """Compressed npz of (Z, H, W) bool masks, written atomically."""
    with atomic_path(path, fsync=False) as tmp:  # tmp keeps the .npz suffix, so numpy adds none
        np.savez_compressed(tmp, sop_uids=np.asarray(sop_uids), **{k: v.astype(bool) for k, v in masks.items()})


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def dump_json(obj: Any) -> str:
    """JSON text of `obj` with numpy scalars and arrays converted (for ``params.json``)."""
    return json.dumps(obj, indent=1, default=_json_default)


@dataclass
class PhantomTruth:
    """Ground truth of a written phantom tree (see module docstring for the files)."""

    root: Path
    params: dict[str, Any]
    slice_labels: pd.DataFrame
    study_labels: pd.DataFrame
    _cache: "OrderedDict[str, dict[str, np.ndarray]]" = field(default_factory=OrderedDict, repr=False)

    def _locate(self, key: str) -> pd.Series:
        sl = self.slice_labels
        hit = sl.index[sl["sop_uid"] == key]
        if len(hit) == 0:
            hit = sl.index[sl["image_id"] == key]
        if len(hit) == 0:
            raise KeyError(f"{self.root}: no phantom slice with SOP UID or image id {key!r}")
        return sl.loc[hit[0]]

    def _series(self, series_uid: str) -> dict[str, np.ndarray]:
        if series_uid not in self._cache:
            path = self.root / TRUTH_DIR / "masks" / f"{series_uid}.npz"
            if not path.exists():
                raise PhantomTruthError(f"{path}: mask file missing")
            with np.load(path) as z:
                self._cache[series_uid] = {k: z[k] for k in z.files}
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        return self._cache[series_uid]

    @property
    def mask_classes(self) -> tuple[str, ...]:
        """Classes with a mask in ``masks/`` (from ``params.json``)."""
        return tuple(self.params["mask_classes"])

    def masks(self, sop_uid: str) -> dict[str, np.ndarray]:
        """Per class an (H, W) bool mask of the slice (`sop_uid` or RSNA image id)."""
        row = self._locate(sop_uid)
        arrs = self._series(row["series_uid"])
        z = int(row["z_index"])
        return {k: arrs[k][z] for k in self.mask_classes}

    def boxes(self, sop_uid: str, mode: str = "all") -> dict[str, tuple[int, int, int, int]]:
        """Per class present on the slice, a box `(x_min, y_min, x_max, y_max)` in pixels.

        `x` is the column, `y` the row, maxima exclusive (numpy slicing). `mode="all"` boxes
        all the class's pixels on the slice; `mode="largest"` boxes its largest 8-connected
        component. Classes with no pixels are absent from the result.
        """
        if mode not in BOX_MODES:
            raise ValueError(f"mode must be one of {BOX_MODES}, got {mode!r}")
        out: dict[str, tuple[int, int, int, int]] = {}
        for k, m in self.masks(sop_uid).items():
            if not m.any():
                continue
            if mode == "largest":
                lab, n = ndimage.label(m, structure=np.ones((3, 3), bool))
                sizes = np.bincount(lab.ravel())[1:]
                m = lab == (int(np.argmax(sizes)) + 1)
            rows = np.flatnonzero(m.any(axis=1))
            cols = np.flatnonzero(m.any(axis=0))
            out[k] = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        return out


def load_truth(root: str | os.PathLike[str]) -> PhantomTruth:
    """Read the sidecar of a phantom tree written by `write_rsna` / `write_cq500`."""
    root = Path(root)
    tdir = root / TRUTH_DIR
    if not (tdir / "COMPLETE").exists():
        raise PhantomTruthError(f"{tdir}: no complete phantom ground truth here (missing COMPLETE marker)")
    params = json.loads((tdir / "params.json").read_text())
    sl = pd.read_csv(tdir / "slice_labels.csv", dtype={"sop_uid": str, "image_id": str, "series_uid": str,
                                                        "study_id": str})
    st = pd.read_csv(tdir / "study_labels.csv", dtype={"study_id": str})
    return PhantomTruth(root=root, params=params, slice_labels=sl, study_labels=st)
