"""Data and measurements behind the student notebook `explore_ct_windows.ipynb`.

Loads one phantom study (RSNA layout, through the same readers as the real data) or a real
DICOM series folder, and measures two lessons on the phantom's own ground-truth masks:

1. *Acute* subdural blood (~60-90 HU) is a thin crescent against the skull (> 700 HU). In the
   brain window (40, 80) both are white, so the crescent merges with the bone; the subdural
   window (80, 200) keeps blood grey and bone white, at the cost of less contrast against
   the brain (`window_contrast_table`).
2. Blood at the *same density as brain* (subacute blood, a few days to weeks old, passes
   through brain density) cannot be windowed out: a window is a straight line from HU to grey,
   so narrowing it stretches the blood-brain difference and the noise alike, and their ratio
   (contrast-to-noise) is the same in every window that clips neither (`visibility_table`).

The crescents are told apart as the 3-D connected parts of the phantom's subdural mask
(`split_lesion`), so every number in the notebook is measured, none typed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from brainlib.data.base import scan_cached
from brainlib.data.classes import RSNA_SUBTYPES
from brainlib.io import WINDOWS, Skipped, Window, assemble_series
from brainlib.io import window as apply_window
from brainlib.widgets import load_source
from brainlib.widgets.sources import describe_skipped, find_series, read_volume

__all__ = ["ExampleStudy", "LesionPart", "load_example_study", "split_lesion", "describe_contrast",
           "describe_visibility", "compare_windows_figure",
           "window_contrast_table", "visibility_table", "BONE_HU", "BRAIN_HU"]

#: HU bands that define the neighbours of a lesion (settings of this teaching measure).
BONE_HU = 300.0
BRAIN_HU = (0.0, 60.0)


@dataclass
class ExampleStudy:
    """A HU volume (Z, H, W) with optional per-class masks of the same shape."""

    volume: np.ndarray
    description: str
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = "phantom"
    skipped: list[Skipped] = field(default_factory=list)

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
    volume = read_volume(series)
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
    series, skipped = find_series(path, scan=scan_cached)
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
    volume = read_volume(chosen)
    desc = (f"DICOM data from {path}: series {chosen.description or chosen.series_uid} "
            f"({len(volume)} slices, {len(series)} series in the folder)")
    if skipped:
        desc += f"; not read: {describe_skipped(skipped)}"
    return ExampleStudy(volume, desc, source="real", skipped=skipped)


@dataclass
class LesionPart:
    """One 3-D connected part of a lesion mask, measured against the brain around it."""

    mask: np.ndarray  # (Z, H, W) bool
    slice_index: int  # the slice where this part is largest
    voxels: int
    median_hu: float  # median, so edge pixels that mix blood with bone do not count
    brain_hu: float  # median HU of the brain in a ring around the part, on its largest slice
    brain_noise: float  # robust spread (1.4826 x MAD) of that brain: what the eye sees through

    @property
    def difference_hu(self) -> float:
        """Median HU of the part minus that of the brain next to it."""
        return self.median_hu - self.brain_hu


def _ring(mask2d: np.ndarray, exclude: np.ndarray, ring_px: int) -> np.ndarray:
    return ndimage.binary_dilation(mask2d, iterations=ring_px) & ~mask2d & ~exclude


def _brain(hu: np.ndarray, ring: np.ndarray) -> np.ndarray:
    return ring & (hu > BRAIN_HU[0]) & (hu < BRAIN_HU[1])


def _robust_sd(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation (outliers ignored)."""
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _median_contrast(shown: np.ndarray, region: np.ndarray, reference: np.ndarray) -> float:
    return float(np.median(shown[region]) - np.median(shown[reference])) if reference.any() else np.nan


def split_lesion(volume: np.ndarray, mask: np.ndarray, min_fraction: float = 0.05,
                 ring_px: int = 3) -> list[LesionPart]:
    """The 3-D connected parts of `mask`, largest difference from brain first.

    Parts smaller than `min_fraction` of the mask (partial-volume crumbs at the edges) are
    left out. Raises ValueError for an empty mask.
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("the lesion mask is empty")
    labels, n = ndimage.label(mask)
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    parts = []
    for k in np.flatnonzero(sizes >= min_fraction * mask.sum()) + 1:
        part = labels == k
        z = int(np.argmax(part.reshape(len(part), -1).sum(1)))
        brain = _brain(volume[z], _ring(part[z], mask[z], ring_px))
        vals = volume[z][brain] if brain.any() else np.array([np.nan])
        parts.append(LesionPart(part, z, int(part.sum()), float(np.median(volume[part])),
                                float(np.median(vals)), _robust_sd(vals)))
    return sorted(parts, key=lambda p: -abs(p.difference_hu))


def window_contrast_table(hu: np.ndarray, lesion: np.ndarray, ring_px: int = 3,
                          windows: dict[str, Window] | None = None) -> pd.DataFrame:
    """Displayed contrast of a lesion against the adjacent bone and brain, per window.

    The neighbourhood is a `ring_px` ring around the lesion, split into bone (> `BONE_HU`)
    and brain (`BRAIN_HU`). Each entry is the lesion's median grey level minus the
    neighbour's, on the screen's 0 (black) .. 1 (white) scale: positive, the blood looks
    brighter; negative, darker; near 0, the same grey (no visible edge). Medians, so the few
    edge pixels that mix blood with bone do not count. Indexed by window.
    """
    if not lesion.any():
        raise ValueError("the lesion mask is empty on this slice")
    ring = ndimage.binary_dilation(lesion, iterations=ring_px) & ~lesion
    bone, brain = ring & (hu > BONE_HU), _brain(hu, ring)
    rows = []
    for name, win in (windows or WINDOWS).items():
        shown = apply_window(hu, win.level, win.width)
        rows.append({"window": name.replace("_", " "), "level": win.level, "width": win.width,
                     "blood vs bone": _median_contrast(shown, lesion, bone),
                     "blood vs brain": _median_contrast(shown, lesion, brain)})
    return pd.DataFrame(rows).set_index("window")


def visibility_table(hu: np.ndarray, lesion: np.ndarray, ring_px: int = 3,
                     windows: dict[str, Window] | None = None) -> pd.DataFrame:
    """Per window: the blood-brain grey difference (medians), the brain's noise in grey
    levels (1.4826 x MAD) and their ratio (contrast-to-noise). A window cannot raise that ratio: where it clips
    neither tissue it is the same in every window; where it clips, it falls."""
    if not lesion.any():
        raise ValueError("the lesion mask is empty on this slice")
    brain = _brain(hu, _ring(lesion, lesion, ring_px))
    if not brain.any():
        raise ValueError("no brain (0-60 HU) next to the lesion on this slice")
    rows = []
    for name, win in (windows or WINDOWS).items():
        shown = apply_window(hu, win.level, win.width)
        diff = _median_contrast(shown, lesion, brain)
        noise = _robust_sd(shown[brain])
        rows.append({"window": name.replace("_", " "), "level": win.level, "width": win.width,
                     "blood - brain (grey)": diff, "brain noise (grey)": noise,
                     "contrast / noise": diff / noise if noise > 0 else np.nan})
    return pd.DataFrame(rows).set_index("window")


def _reading(x: float, same: float = 0.1) -> str:
    """Words for a grey-level difference on the 0..1 scale."""
    if abs(x) < same:
        return "about the same grey: no visible edge"
    return "brighter" if x > 0 else "darker"


def describe_contrast(table: pd.DataFrame) -> str:
    """Plain sentences on an acute crescent's contrast table (numbers and words from `table`)."""
    out = []
    for name in ("brain", "subdural"):
        row = table.loc[name]
        out.append(f"{name.capitalize()} window: against the bone beside it the blood is "
                   f"{row['blood vs bone']:+.2f} ({_reading(row['blood vs bone'])}); against the "
                   f"brain {row['blood vs brain']:+.2f} ({_reading(row['blood vs brain'])}).")
    return " ".join(out)


def describe_visibility(part: LesionPart, table: pd.DataFrame) -> str:
    """Plain sentences on a faint crescent (numbers read from `part` and `table`)."""
    side = "darker" if part.difference_hu < 0 else "brighter"
    ratios = table["contrast / noise"]
    lo, hi = ratios.min(), ratios.max()
    span = f"is {lo:+.2f} in every window" if f"{lo:+.2f}" == f"{hi:+.2f}" else \
        f"stays between {lo:+.2f} and {hi:+.2f} across the windows"
    size = abs(ratios).max()
    verdict = ("below 1: a pixel of this blood cannot be told from a pixel of brain"
               if size < 1 else "below 3, the usual rule of thumb for seeing a small object "
               "(Rose criterion): it shows, if at all, only as a faint region" if size < 3
               else "above 3: it can be seen")
    return (f"This crescent's median is {part.median_hu:.0f} HU and the brain beside it "
            f"{part.brain_hu:.0f} HU: {abs(part.difference_hu):.0f} HU {side}, while the brain "
            f"itself varies by about {part.brain_noise:.0f} HU (noise and texture). The "
            f"contrast-to-noise ratio {span}, {verdict}. A window changes how grey things look, "
            f"not how far apart they are compared with the noise.")


def compare_windows_figure(hu: np.ndarray, mask: np.ndarray | None,
                           windows: dict[str, Window]) -> "object":
    """One panel per window of the same slice, the mask drawn as a thin cyan contour
    (outside the lesion, so the blood itself is never covered)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(windows), figsize=(5 * len(windows), 5.2))
    for ax, (name, win) in zip(np.atleast_1d(axes), windows.items()):
        ax.imshow(apply_window(hu, win.level, win.width), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        if mask is not None and mask.any():
            ax.contour(ndimage.binary_dilation(mask) & ~mask, levels=[0.5], colors="cyan",
                       linewidths=0.6)
        ax.set_title(f"{name.replace('_', ' ')} window ({win.level:g}/{win.width:g})")
        ax.axis("off")
    fig.tight_layout()
    return fig
