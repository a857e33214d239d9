"""Body-CT phantoms written in the DeepLesion layout (Yan et al. 2018), for Yin et al. (2024).

Each phantom patient has one study and one series; the series holds a key slice with one to
three lesions, the slices next to it (the lesions still visible, ``Slice_range`` = key +- 1) and
two slices four positions away with no lesion (lesion-free slices of the same series, as the
real ``Images_png`` folders hold slices beyond each lesion's range). Anatomy: air, a body
ellipse of fat and muscle, two lungs, liver, two kidneys, a vertebral body, with jitter per
patient. Lesions are axis-aligned ellipses, so the ellipse inscribed in each box is the
lesion's exact outline; their coarse type decides where they sit and how they look:

==========  ==========================  ==========================================
type        where                       appearance (HU, before noise)
==========  ==========================  ==========================================
lung (5)    inside a lung               solid nodule, +40 HU in -850 HU lung
liver (4)   inside the liver            hypodense, liver 60 -> lesion ~ 10 HU
kidney (6)  inside a kidney             cyst, ~ 0 HU in 30 HU kidney (with a bright rim)
bone (1)    vertebral body              lytic, ~ 100 HU in 700 HU bone
soft (7)    subcutaneous fat            +60 HU nodule in -100 HU fat
==========  ==========================  ==========================================

``difficulty`` (0 easy .. 1 hard) shrinks lesion contrast and size and raises the noise.
Files: ``Images_png/<PPPPPP>_01_01/<NNN>.png`` (16-bit, value = HU + 32768), ``DL_info.csv``
with the 18 official columns (one row per lesion), ``SYNTHETIC.json`` (the phantom mark).
The official split column: patients 70 / 15 / 15 % train / validation / test; a fraction
``unlabelled`` of test lesions carries ``Coarse_lesion_type`` -1 as in the real test split.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from brainlib._atomic import atomic_dir
from brainlib.data.classes import DEEPLESION_TYPES
from brainlib.data.deeplesion import DL_INFO, DL_INFO_COLUMNS, HU_OFFSET, IMAGES
from brainlib.data.synth.marks import MARK_VERSION, write_synthetic_json
from brainlib.data.synth import locked_generation  # lock per phantom set

GENERATOR = "brainlib.data.synth.body_ct"
GENERATOR_VERSION = "1"
#: Coarse types the phantom can draw (code -> organ mask name in :func:`draw_anatomy`).
ORGANS: dict[int, str] = {5: "lung", 4: "liver", 6: "kidney", 1: "bone", 7: "fat"}
KEY_OFFSETS = (-1, 0, 1)      # slices showing the lesions (Slice_range = key -1 .. key +1)
NORMAL_OFFSETS = (-4, 4)      # lesion-free slices of the same series


def _ellipse(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def draw_anatomy(rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One axial body slice in HU (size x size) and its organ masks."""
    s = size
    j = lambda v: v * (1 + rng.uniform(-0.06, 0.06))  # noqa: E731
    hu = np.full((s, s), -1000.0, np.float32)
    body = _ellipse((s, s), j(0.52 * s), j(0.5 * s), j(0.36 * s), j(0.45 * s))
    muscle = _ellipse((s, s), 0.52 * s, 0.5 * s, 0.31 * s, 0.40 * s)
    hu[body] = -100.0
    hu[muscle] = 45.0
    organs = {
        "lung": _ellipse((s, s), j(0.45 * s), j(0.33 * s), j(0.17 * s), j(0.11 * s))
        | _ellipse((s, s), j(0.45 * s), j(0.67 * s), j(0.17 * s), j(0.11 * s)),
        "liver": _ellipse((s, s), j(0.62 * s), j(0.36 * s), j(0.11 * s), j(0.14 * s)),
        "kidney": _ellipse((s, s), j(0.66 * s), j(0.64 * s), j(0.06 * s), j(0.045 * s))
        | _ellipse((s, s), j(0.66 * s), j(0.78 * s), j(0.06 * s), j(0.045 * s)),
        "bone": _ellipse((s, s), j(0.74 * s), 0.5 * s, j(0.06 * s), j(0.065 * s)),
    }
    organs["lung"] &= ~organs["liver"]
    for name, value in (("lung", -850.0), ("liver", 60.0), ("kidney", 30.0), ("bone", 700.0)):
        hu[organs[name] & muscle] = value
        organs[name] &= muscle
    organs["fat"] = body & ~muscle
    return hu, organs


_LESION_HU = {5: -810.0 + 890.0, 4: 10.0, 6: 0.0, 1: 100.0, 7: 60.0}  # lesion HU at difficulty 0
_BACKGROUND_HU = {5: -850.0, 4: 60.0, 6: 30.0, 1: 700.0, 7: -100.0}


def place_lesion(rng: np.random.Generator, organ: np.ndarray, ctype: int, size: int,
                 difficulty: float, taken: np.ndarray) -> tuple[float, float, float, float] | None:
    """Centre and radii (cy, cx, ry, rx) of a lesion inside ``organ`` avoiding ``taken``."""
    scale = 1.0 - 0.5 * difficulty
    cand = np.argwhere(organ & ~taken)
    for _ in range(30):
        if not len(cand):
            return None
        cy, cx = cand[rng.integers(len(cand))] + 0.5
        r = size * rng.uniform(0.035, 0.07) * scale
        ry, rx = r * rng.uniform(0.75, 1.25), r * rng.uniform(0.75, 1.25)
        if ctype == 7:  # subcutaneous: small enough to stay in the fat
            ry, rx = ry * 0.6, rx * 0.6
        ell = _ellipse(organ.shape, cy, cx, ry, rx)
        if (ell & organ).sum() >= 0.8 * ell.sum() and not (ell & taken).any():
            return float(cy), float(cx), float(ry), float(rx)
    return None


def render_lesion(hu: np.ndarray, lesion: tuple[float, float, float, float], ctype: int,
                  difficulty: float, shrink: float = 1.0) -> None:
    """Paint one lesion into ``hu`` (in place); ``shrink`` < 1 for slices next to the key slice."""
    cy, cx, ry, rx = lesion
    ell = _ellipse(hu.shape, cy, cx, ry * shrink, rx * shrink)
    contrast = 1.0 - 0.7 * difficulty
    bg = _BACKGROUND_HU[ctype]
    hu[ell] = bg + (_LESION_HU[ctype] - bg) * contrast
    if ctype == 6:  # cyst with a bright rim
        rim = ell & ~_ellipse(hu.shape, cy, cx, ry * shrink - 1.2, rx * shrink - 1.2)
        hu[rim] = bg + 120 * contrast


def write_deeplesion(root: str | Path, n_patients: int = 60, seed: int = 0, size: int = 512,
                     difficulty: float = 0.5, types: Sequence[int] = (5, 4, 6),
                     max_lesions: int = 3, unlabelled: float = 0.0) -> Path:
    """Write a DeepLesion-layout phantom tree into ``root``; return ``root``.

    Args:
        n_patients: one study and series each; every key slice has 1..``max_lesions`` lesions.
        types: coarse lesion types drawn (codes of :data:`ORGANS`); each key slice's lesions
            share one type (the slice's class stays unambiguous; several lesions per slice).
        unlabelled: fraction of test-split lesions written with ``Coarse_lesion_type`` -1.
    """
    root = Path(root)
    bad = [t for t in types if t not in ORGANS]
    if bad:
        raise ValueError(f"types {bad} not drawable; choose from {sorted(ORGANS)}")
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    n_train, n_val = int(round(0.7 * n_patients)), int(round(0.15 * n_patients))
    for p in range(n_patients):
        prng = np.random.default_rng([seed, p])
        split = 1 if p < n_train else 2 if p < n_train + n_val else 3
        base, organs = draw_anatomy(prng, size)
        ctype = int(types[p % len(types)])
        taken = np.zeros((size, size), bool)
        lesions = []
        for _ in range(int(prng.integers(1, max_lesions + 1))):
            les = place_lesion(prng, organs[ORGANS[ctype]], ctype, size, difficulty, taken)
            if les is not None:
                lesions.append(les)
                taken |= _ellipse(taken.shape, les[0], les[1], les[2] + 3, les[3] + 3)
        if not lesions:
            continue
        key = int(prng.integers(20, 200))
        folder = root / IMAGES / f"{p + 1:06d}_01_01"
        folder.mkdir(parents=True, exist_ok=True)
        noise = 8.0 + 30.0 * difficulty
        for off in KEY_OFFSETS + NORMAL_OFFSETS:
            hu = base.copy()
            if off in KEY_OFFSETS:
                for les in lesions:
                    render_lesion(hu, les, ctype, difficulty, 1.0 if off == 0 else 0.8)
            hu = hu + prng.normal(0, noise, hu.shape).astype(np.float32)
            value = np.clip(np.round(hu + HU_OFFSET), 0, 65535).astype(np.uint16)
            Image.fromarray(value).save(folder / f"{key + off:03d}.png")
        gender, age = ("M", "F")[p % 2], int(prng.integers(25, 85))
        for cy, cx, ry, rx in lesions:
            code = -1 if split == 3 and prng.random() < unlabelled else ctype
            box = (cx - rx, cy - ry, cx + rx, cy + ry)
            rows.append({
                "File_name": f"{p + 1:06d}_01_01_{key:03d}.png", "Patient_index": p + 1,
                "Study_index": 1, "Series_ID": 1, "Key_slice_index": key,
                "Measurement_coordinates": _fmt((cx - rx, cy, cx + rx, cy, cx, cy - ry, cx, cy + ry)),
                "Bounding_boxes": _fmt(box), "Lesion_diameters_Pixel_": _fmt((2 * max(rx, ry), 2 * min(rx, ry))),
                "Normalized_lesion_location": _fmt((cx / size, cy / size, key / 250)),
                "Coarse_lesion_type": code, "Possibly_noisy": 0,
                "Slice_range": f"{key + KEY_OFFSETS[0]}, {key + KEY_OFFSETS[-1]}",
                "Spacing_mm_px_": _fmt((0.8 * 512 / size, 0.8 * 512 / size, 5.0)),
                "Image_size": f"{size}, {size}", "DICOM_windows": "-160, 240",
                "Patient_gender": gender, "Patient_age": age, "Train_Val_Test": split})
    pd.DataFrame(rows, columns=list(DL_INFO_COLUMNS)).to_csv(root / DL_INFO, index=False)
    write_synthetic_json(root, GENERATOR, GENERATOR_VERSION, seed, layout="deeplesion",
                         n_patients=int(n_patients), size=int(size), difficulty=float(difficulty),
                         types=[DEEPLESION_TYPES[t - 1] for t in types],
                         key_offsets=list(KEY_OFFSETS), normal_offsets=list(NORMAL_OFFSETS))
    return root


def _fmt(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.3f}".rstrip("0").rstrip(".") for v in values)


def normal_slices(root: str | Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Lesion-free slices of each key slice's series: files of ``Images_png/<series>/`` whose
    index lies outside every lesion's ``Slice_range`` of that series (the reading for a
    "normal" image on DeepLesion). ``frame`` is the loader's metadata; returns ``case_id,
    image_path, split, patient, group, image_width, image_height``."""
    rows = []
    for series, grp in frame.groupby(frame["file_name"].str.rsplit("_", n=1).str[0]):
        ranges = [r for r in grp["slice_range"]]
        folder = Path(root) / IMAGES / series
        for png in sorted(folder.glob("*.png")):
            idx = int(png.stem)
            if any(lo - 2 <= idx <= hi + 2 for lo, hi in ranges):
                continue
            first = grp.iloc[0]
            rows.append({"case_id": f"{series}_{idx:03d}", "image_path": str(png), "split": first["split"],
                         "patient": first["patient"], "group": first["group"],
                         "image_width": first["image_width"], "image_height": first["image_height"]})
    return pd.DataFrame(rows)


@locked_generation
def ensure_deeplesion(n_patients: int, seed: int = 0, size: int = 512, difficulty: float = 0.5,
                      types: Sequence[int] = (5, 4, 6)) -> Path:
    """A DeepLesion phantom tree written once into ``cache_dir("phantoms")`` and reused."""
    from brainlib.paths import cache_dir

    tkey = "-".join(str(t) for t in types)
    key = (f"deeplesion-n{n_patients}-s{seed}-px{size}-d{difficulty}-t{tkey}-g{GENERATOR_VERSION}"
           f"-m{MARK_VERSION}")
    final = cache_dir("phantoms") / key
    if (final / DL_INFO).is_file():
        return final
    with atomic_dir(final) as tmp:
        write_deeplesion(tmp, n_patients, seed, size, difficulty, types)
    return final
