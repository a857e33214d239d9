"""Data and measurements behind the student notebook `explore_ct_windows.ipynb`.

Loads one phantom study (RSNA layout, through the same readers as the real data) or a real
DICOM series folder, and measures why subdural blood is easier to see in the subdural window:
a thin crescent of blood (~60-90 HU) lies against the skull (> 700 HU). In the brain window
(40, 80) both are near white, so the crescent merges with the bone; the subdural window
(80, 200) keeps blood grey and bone white, at the cost of less contrast against the brain.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from brainlib.data.base import scan_cached
from brainlib.data.classes import RSNA_SUBTYPES
from brainlib.io import WINDOWS, assemble_series, read_hu
from brainlib.widgets import load_source, region_contrast

__all__ = ["ExampleStudy", "load_example_study", "window_contrast_table"]


@dataclass
class ExampleStudy:
    """A HU volume (Z, H, W) with optional per-class masks of the same shape."""

    volume: np.ndarray
    description: str
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = "phantom"

    def best_slice(self, cls: str = "subdural") -> int:
        """Slice with the most pixels of `cls` (the middle slice when there is no mask)."""
        if cls in self.masks and self.masks[cls].any():
            return int(np.argmax(self.masks[cls].reshape(len(self.volume), -1).sum(1)))
        return len(self.volume) // 2


def load_example_study(data_root: str | Path | None = None, study: str | int | None = None,
                       seed: int = 0, size: int = 256) -> ExampleStudy:
    """One study to explore.

    With `data_root` None: phantoms in the RSNA layout (generated once into the cache), the
    study `study` (index or StudyInstanceUID), by default the first one with subdural blood.
    With `data_root` a DICOM file, a series folder or a whole dataset folder (RSNA, CQ500: the
    same `--data-root` the paper notebooks get): the series `study` (index, StudyInstanceUID
    or SeriesInstanceUID; default the first in UID order). Real data carry no masks.
    """
    if data_root is not None:
        return _real_study(Path(data_root), study)
    from brainlib.data.synth import ensure_phantoms, load_truth

    root = ensure_phantoms("rsna", n_studies=24, seed=seed, size=size)
    truth = load_truth(root)
    studies = truth.study_labels
    if study is None:
        with_sdh = studies.index[studies["subdural"] == 1]
        row = studies.loc[with_sdh[0] if len(with_sdh) else studies.index[0]]
    elif isinstance(study, int):
        row = studies.iloc[study]
    else:
        hit = studies.index[studies["study_id"] == study]
        if len(hit) == 0:
            raise KeyError(f"{root}: no phantom study {study!r}")
        row = studies.loc[hit[0]]
    sl = truth.slice_labels[truth.slice_labels["series_uid"] == row["series_uid"]]
    index, _ = scan_cached(root / "stage_2_train")
    series = assemble_series(index[index["series_uid"] == row["series_uid"]])[0]
    volume = np.stack([read_hu(p) for p in series.paths]).astype(np.float32)
    # Masks in the series' position order (the truth keeps the generator's z index).
    sop_by_name = {Path(p).name: s for p, s in zip(sl["path"], sl["sop_uid"])}
    per_slice = [truth.masks(sop_by_name[Path(p).name]) for p in series.paths]
    masks = {c: np.stack([m[c] for m in per_slice]) for c in truth.mask_classes}
    labels = [c for c in RSNA_SUBTYPES if row[c] == 1]
    desc = (f"synthetic phantom (RSNA layout), study {row['study_id'][-12:]}, "
            f"{len(volume)} slices, lesions: {', '.join(labels) or 'none'}")
    return ExampleStudy(volume, desc, masks, source="phantom")


def _real_study(path: Path, study: str | int | None) -> ExampleStudy:
    """A series from a DICOM file or folder (which may hold a whole dataset)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such DICOM file or folder")
    if path.is_file():
        return ExampleStudy(load_source(path), f"DICOM file {path}", source="real")
    index, skipped = scan_cached(path)
    series = assemble_series(index) if len(index) else []
    if not series:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:3])
        raise ValueError(f"{path}: no readable CT series in this folder. {reasons}")
    series.sort(key=lambda s: (s.study_uid, s.series_uid))
    if study is None:
        chosen = series[0]
    elif isinstance(study, int):
        if not 0 <= study < len(series):
            raise IndexError(f"{path}: study index {study} outside 0..{len(series) - 1}")
        chosen = series[study]
    else:
        hits = [s for s in series if study in (s.study_uid, s.series_uid)]
        if not hits:
            raise KeyError(f"{path}: no series or study with UID {study!r}")
        chosen = hits[0]
    volume = np.stack([read_hu(p) for p in chosen.paths]).astype(np.float32)
    desc = (f"DICOM data from {path}: series {chosen.description or chosen.series_uid} "
            f"({len(volume)} slices, {len(series)} series in the folder)")
    return ExampleStudy(volume, desc, source="real")


def window_contrast_table(hu: np.ndarray, lesion: np.ndarray, ring_px: int = 3) -> pd.DataFrame:
    """Displayed contrast of a lesion against the adjacent bone and brain, per preset window.

    The neighbourhood is a `ring_px` ring around the lesion, split into bone (> 300 HU) and
    brain (0-60 HU). Contrast is the difference of mean grey level in [0, 1].
    """
    if not lesion.any():
        raise ValueError("the lesion mask is empty on this slice")
    ring = ndimage.binary_dilation(lesion, iterations=ring_px) & ~lesion
    bone, brain = ring & (hu > 300), ring & (hu > 0) & (hu < 60)
    rows = []
    for name, win in WINDOWS.items():
        rows.append({
            "window": name, "level": win.level, "width": win.width,
            "blood vs bone": region_contrast(hu, lesion, bone, win) if bone.any() else np.nan,
            "blood vs brain": region_contrast(hu, lesion, brain, win) if brain.any() else np.nan,
        })
    return pd.DataFrame(rows)
