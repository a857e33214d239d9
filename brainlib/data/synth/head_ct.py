"""Analytic synthetic head CT with intracranial haemorrhage, deterministic per seed.

The head is a set of smooth analytic fields evaluated on the voxel grid (vectorised numpy, in
chunks of slices): an ellipsoidal head with scalp, a skull of variable thickness (outer
table, diploe, inner table), grey/white matter with sulci, ventricles, fissures and basal
cisterns, and a skull base. Every structure is drawn with a soft edge one pixel wide, so
edges carry partial volume.

Lesions follow the shapes of He et al. (2024), Table 1: IPH round/oval in the parenchyma,
IVH inside (a part of) the ventricles, SAH along sulci, fissures and cisterns, SDH a broad
crescent along the convexity, EDH a lens (fusiform, biconvex) against the inner table.
Distractors: calcifications (pineal, choroid plexus in the ventricular atria -- the DrCT2
"white spot" trap of Wang et al., Fig. 3, visible on one slice only; falx, basal ganglia),
beam hardening near the inner table and streaks at the skull base, dense dural sinus.
Calvarial fractures, mass effect (ipsilateral ventricle compression) and midline shift
are rendered and labelled.

`difficulty` in [0, 1] pulls lesion contrast toward the noise floor, raises the noise and
shrinks lesions; it is recorded in `PhantomStudy.params`. Coordinates: DICOM patient (LPS)
millimetres; image rows run along +y (posterior), columns along +x (patient left).

The subject draw lives in `head_anatomy`, the voxel fields in `head_render`; this module is
the public API (series, slice labels, study truth).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainlib.data.classes import CQ500_READ_FIELDS, RSNA_CLASSES, RSNA_SUBTYPES
# The subject's parameters and the renderer live in their own modules; the names callers
# import from here (constants, the subject draw) are re-exported.
from brainlib.data.synth.head_anatomy import (  # noqa: F401 (re-exported)
    DISTRACTOR_KEYS, FRACTURE, GENERATOR_VERSION, MASK_KEYS, RSNA_TO_CQ500, TISSUES,
    _draw_subject)
from brainlib.data.synth.head_render import _noise, _render



def min_pixels(size: int) -> int:
    """Pixels a lesion mask needs on a slice for that slice to be labelled positive."""
    return max(2, int(round(4 * (size / 256.0) ** 2)))


@dataclass
class PhantomStudy:
    """One synthetic head CT series and its ground truth.

    `hu` is (Z, H, W) float32 Hounsfield units, slices ordered inferior -> superior;
    `masks[k]` (Z, H, W) bool for k in `MASK_KEYS`; `slice_labels` has one row per slice
    and columns `RSNA_CLASSES` + `calvarial_fracture` (0/1); `study_labels` holds the 14
    CQ500 reader fields (truth) and the RSNA classes (study-level OR).
    """

    seed: int
    size: int
    difficulty: float
    hu: np.ndarray
    masks: dict[str, np.ndarray]
    distractors: dict[str, np.ndarray]
    tissue: np.ndarray  # (Z, H, W) uint8, labels in TISSUES (anatomy under the lesions)
    slice_labels: pd.DataFrame
    study_labels: dict[str, int]
    spacing: tuple[float, float, float]  # (slice spacing, row spacing, column spacing) mm
    positions: np.ndarray  # (Z, 3) ImagePositionPatient
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    slice_thickness: float = 5.0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_slices(self) -> int:
        """Number of slices Z of ``hu``."""
        return int(self.hu.shape[0])


# ----------------------------------------------------------------------------- public API

def study_slices(s: dict[str, Any], spacing_factor: float = 1.0, n_slices: int | None = None) -> np.ndarray:
    """World z (mm, head-centred) of the slices covering the subject's head."""
    C = s["C"]
    z_lo, z_hi = -0.52 * C, 0.98 * C
    n = int(n_slices or round(s["n_slices"] / spacing_factor))
    dz = (z_hi - z_lo) / n
    return (z_lo + (np.arange(n) + 0.5) * dz).astype(np.float64)


def render_series(
    subject: dict[str, Any], size: int, *, seed: int, spacing_factor: float = 1.0,
    n_slices: int | None = None, kernel: str = "soft", contrast: bool = False, series_key: str = "",
) -> PhantomStudy:
    """Render one series of a drawn subject (the CQ500 writer renders several per subject)."""
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    zs = study_slices(subject, spacing_factor, n_slices)
    dz = float(zs[1] - zs[0]) if len(zs) > 1 else 5.0
    thickness = dz
    # slab partial volume: thick slices average two sub-slices (masks: >= half the slab)
    n_sub = 2 if thickness > 2.5 else 1
    offsets = [(j + 0.5) / n_sub - 0.5 for j in range(n_sub)]
    chunk = max(1, int(1_500_000 // (size * size)))
    hu_parts, occ_parts, dis_parts = [], {k: [] for k in MASK_KEYS}, {k: [] for k in DISTRACTOR_KEYS}
    tissue_parts = []
    for i in range(0, len(zs), chunk):
        acc_h, acc_o, acc_d, tis = None, None, None, None
        for off in offsets:
            h, o, dd, t = _render(subject, zs[i:i + chunk] + off * thickness, size, thickness / n_sub,
                                  contrast=contrast)
            if acc_h is None:
                acc_h, acc_o, acc_d, tis = h, o, dd, t
            else:
                acc_h += h
                for k in MASK_KEYS:
                    acc_o[k] += o[k]
                for k in DISTRACTOR_KEYS:
                    acc_d[k] += dd[k]
        hu_parts.append(acc_h / n_sub)
        tissue_parts.append(tis)
        for k in MASK_KEYS:
            occ_parts[k].append(acc_o[k] >= 0.5 * n_sub)
        for k in DISTRACTOR_KEYS:
            dis_parts[k].append(acc_d[k] >= 0.5 * n_sub)
    hu = np.concatenate(hu_parts)
    key = int.from_bytes(hashlib.sha1(series_key.encode()).digest()[:8], "little")
    rng = np.random.default_rng([int(seed), 0xA015E, key])
    # thinner slices collect fewer photons: noise grows like 1/sqrt(thickness)
    sd = subject["noise_sd"] * (3.0 if kernel == "bone" else 1.0) / math.sqrt(min(1.0, spacing_factor))
    corr = subject["noise_corr"] * (0.35 if kernel == "bone" else 1.0) * (size / 256.0) ** 0.5
    hu += _noise(rng, hu.shape, sd, corr)
    masks = {k: np.concatenate(v) for k, v in occ_parts.items()}
    distractors = {k: np.concatenate(v) for k, v in dis_parts.items()}

    mp = min_pixels(size)
    counts = {k: masks[k].sum(axis=(1, 2)) for k in MASK_KEYS}
    sl = pd.DataFrame({k: (counts[k] >= mp).astype(np.int8) for k in RSNA_SUBTYPES})
    sl.insert(0, "any", sl[list(RSNA_SUBTYPES)].max(axis=1).astype(np.int8))
    sl[FRACTURE] = (counts[FRACTURE] >= mp).astype(np.int8)
    sl = sl[list(RSNA_CLASSES) + [FRACTURE]]

    px = float(subject["fov"]) / size
    half = (size - 1) / 2 * px
    x0 = -half
    y0 = -half
    positions = np.stack([np.full(len(zs), x0), np.full(len(zs), y0), zs + subject["z_offset"]], axis=1)
    study = PhantomStudy(
        seed=int(seed), size=int(size), difficulty=float(subject["difficulty"]), hu=hu, masks=masks,
        distractors=distractors, tissue=np.concatenate(tissue_parts), slice_labels=sl, study_labels={}, spacing=(dz, px, px),
        positions=positions, slice_thickness=thickness,
        params=dict(version=GENERATOR_VERSION, seed=int(seed), size=int(size),
                    difficulty=float(subject["difficulty"]), kernel=kernel, contrast=contrast,
                    spacing_factor=spacing_factor, subject=subject),
    )
    study.study_labels = study_truth(subject, sl)
    return study


def study_truth(subject: dict[str, Any], slice_labels: pd.DataFrame | None = None) -> dict[str, int]:
    """Study-level truth: the 14 CQ500 reader fields and the six RSNA classes.

    Subtype presence comes from the rendered slice labels when given (a lesion too small to
    reach `min_pixels` on any slice is not called present), else from the drawn lesions.
    """
    if slice_labels is not None:
        present = {t: int(slice_labels[t].max()) for t in RSNA_SUBTYPES}
        frac = int(slice_labels[FRACTURE].max()) if FRACTURE in slice_labels else int(bool(subject["fractures"]))
    else:
        types = {le["type"] for le in subject["lesions"]}
        present = {t: int(t in types) for t in RSNA_SUBTYPES}
        frac = int(bool(subject["fractures"]))
    out: dict[str, int] = {f: 0 for f in CQ500_READ_FIELDS}
    for t, short in RSNA_TO_CQ500.items():
        out[short] = present[t]
    out["ICH"] = int(any(present.values()))
    sides = {("BleedLocation-Left" if _lesion_x(le) > 0 else "BleedLocation-Right")
             for le in subject["lesions"] if present[le["type"]]}
    for sname in sides:
        out[sname] = 1
    out["ChronicBleed"] = int(any(le.get("chronic") for le in subject["lesions"] if present[le["type"]]))
    out["CalvarialFracture"] = frac
    out["Fracture"] = frac
    m = subject["mass"]
    out["MidlineShift"] = int(m["shift_mm"] >= 2.5 and out["ICH"] == 1)
    out["MassEffect"] = int((m["volume_ml"] >= 15.0 or m["shift_mm"] >= 2.5) and out["ICH"] == 1)
    for t in RSNA_SUBTYPES:
        out[t] = present[t]
    out["any"] = out["ICH"]
    return out


def _lesion_x(le: dict[str, Any]) -> float:
    """Patient-left is +x (DICOM LPS)."""
    if "u" in le:
        return le["u"][0]
    return le["c"][0]


def draw_subject(seed: int, difficulty: float = 0.5) -> dict[str, Any]:
    """The subject's random parameters (JSON-serialisable); same seed, same subject."""
    if not 0.0 <= float(difficulty) <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
    return _draw_subject(seed, difficulty)


def make_head_study(seed: int, size: int = 256, difficulty: float = 0.5, *,
                    n_slices: int | None = None, spacing_factor: float = 1.0, kernel: str = "soft",
                    contrast: bool = False) -> PhantomStudy:
    """A deterministic synthetic non-contrast head CT (thick axial series) for `seed`.

    `n_slices` overrides the subject's slice count (24-40 by default) and `spacing_factor`
    scales the slice spacing (0.5: a thin series of the same head); `kernel="bone"` gives the
    sharper, noisier bone reconstruction; `contrast=True` a post-contrast look. The RSNA
    writer's study `i` is exactly `make_head_study(study_seed(seed, i), size, difficulty)`.
    """
    if kernel not in ("soft", "bone"):
        raise ValueError(f"kernel must be 'soft' or 'bone', got {kernel!r}")
    subject = draw_subject(seed, difficulty)
    key = "" if (n_slices, spacing_factor, kernel, contrast) == (None, 1.0, "soft", False) else \
        f"{kernel}-{contrast}-{n_slices}-{spacing_factor}"
    return render_series(subject, size, seed=seed, n_slices=n_slices, spacing_factor=spacing_factor,
                         kernel=kernel, contrast=contrast, series_key=key)
