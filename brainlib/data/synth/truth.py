"""Ground-truth sidecar of a phantom dataset: `<root>/_phantom_truth/`.

Loaders of the real layouts never look here; tests and metrics (CAM localisation AP,
Mask R-CNN, reader agreement) do. Contents, each written atomically:

- `params.json`: generator version, layout, seed, size, difficulty, `min_pixels`, the label
  rule at the working size (`label_size`, `label_min_pixels`, `label_rule`; None when the tree
  was written without one), and every study's drawn parameters.
- `slice_labels.csv`: one row per written image: `sop_uid`, `image_id` (RSNA `ID_<hex>` or
  the CQ500 relative path), `study_id`, `series_uid`, `series_description`, `path` (relative
  to root), `z_index` (0 = most inferior), `position_z`, the RSNA classes, `calvarial_fracture`,
  `calcification` (distractor present, never a positive label). Trees written with a
  `label_size` (the working size of a model) also have, per subtype, `px_<class>` (pixels of
  the mask area-averaged to label_size x label_size that are at least half lesion, the way the
  pixel cache resizes) and `uncertain_<class>` (1 when the slice is positive in the dataset's
  CSV but its lesion covers fewer than `label_min_pixels` such pixels: too small to see at the
  working size), and `uncertain_any` (no subtype certainly positive, at least one uncertain).
  The dataset's own CSV keeps the 0/1 labels of the native-size rule, as the real format
  requires; `PhantomTruth.certain_labels` gives the labels with uncertain slices as NaN.
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
from brainlib.data.cache import area_resize
from brainlib.data.csvfile import read_csv_bounded

TRUTH_DIR = "_phantom_truth"
BOX_MODES = ("all", "largest")
#: pixels at the working size a lesion needs for its slice to be certainly positive
LABEL_MIN_PIXELS = 8
#: fraction of a working-size pixel that must be lesion for the pixel to count
LABEL_COVERAGE = 0.5


def label_rule_text(label_size: int, label_min_pixels: int = LABEL_MIN_PIXELS) -> str:
    """The slice-label rule at the working size, in words (params.json, manifests)."""
    return (f"a slice is certainly positive for a subtype when its lesion covers >= "
            f"{label_min_pixels} pixels of the mask area-averaged to {label_size} x {label_size} "
            f"that are >= {LABEL_COVERAGE:.0%} lesion; slices positive at the native size with a "
            f"smaller lesion are uncertain (NaN in training and evaluation; 1 in the CSV)")


def visible_pixels(masks: np.ndarray, label_size: int,
                   coverage: float = LABEL_COVERAGE) -> np.ndarray:
    """Per slice of a (Z, H, W) bool mask, the pixels of the mask area-averaged to
    label_size x label_size (as `brainlib.data.cache` resizes images) that are at least
    `coverage` lesion. Returns (Z,) int64."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (Z, H, W), got shape {masks.shape}")
    out = np.zeros(len(masks), dtype=np.int64)
    for z in np.flatnonzero(masks.reshape(len(masks), -1).any(axis=1)):
        frac = area_resize(masks[z].astype(np.uint8), int(label_size))
        out[z] = int(np.count_nonzero(frac >= coverage - 1e-6))
    return out


def uncertain_columns(masks: dict[str, np.ndarray], labels: pd.DataFrame, classes: list[str],
                      label_size: int, label_min_pixels: int = LABEL_MIN_PIXELS) -> pd.DataFrame:
    """`px_<class>`, `uncertain_<class>` for each of `classes` and `uncertain_any` for one
    series: `labels` are its 0/1 slice labels (native rule), `masks` its (Z, H, W) masks."""
    cols: dict[str, np.ndarray] = {}
    certain = np.zeros(len(labels), dtype=bool)
    unsure = np.zeros(len(labels), dtype=bool)
    for c in classes:
        px = visible_pixels(masks[c], label_size)
        pos = labels[c].to_numpy() == 1
        u = pos & (px < label_min_pixels)
        cols[f"px_{c}"] = px
        cols[f"uncertain_{c}"] = u.astype(np.int8)
        certain |= pos & ~u
        unsure |= u
    cols["uncertain_any"] = (unsure & ~certain).astype(np.int8)
    return pd.DataFrame(cols, index=labels.index)


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
    def label_size(self) -> int | None:
        """Working size of the tree's label rule (None: written without one)."""
        value = self.params.get("label_size")
        return None if value is None else int(value)

    def certain_labels(self, classes: list[str] | tuple[str, ...]) -> pd.DataFrame:
        """Slice labels (index `image_id`, columns `classes`) with uncertain slices as NaN:
        a lesion too small to see at the tree's `label_size`. Without a label rule the 0/1
        labels are returned unchanged."""
        sl = self.slice_labels.set_index("image_id")
        out = sl[list(classes)].astype(np.float32)
        for c in classes:
            col = f"uncertain_{c}"
            if col in sl.columns:
                out.loc[sl[col].to_numpy() == 1, c] = np.nan
        return out

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
    # bounded (brainlib.data.csvfile): a damaged sidecar is a CsvFileError naming the file
    sl = read_csv_bounded(tdir / "slice_labels.csv", dtype={"sop_uid": str, "image_id": str,
                                                            "series_uid": str, "study_id": str})
    st = read_csv_bounded(tdir / "study_labels.csv", dtype={"study_id": str})
    return PhantomTruth(root=root, params=params, slice_labels=sl, study_labels=st)
