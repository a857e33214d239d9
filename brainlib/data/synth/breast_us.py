"""Synthetic breast-ultrasound phantoms written in the BUSI layout (Al-Dhabyani et al. 2020),
the data of Pandiyaraju et al. (2024, arXiv 2407.02844).

One B-mode-like image per case: skin, subcutaneous fat, glandular tissue and chest wall as
wavy layers of different echogenicity; fully developed speckle (Rayleigh-distributed envelope,
blurred by an anisotropic point-spread function); depth attenuation partly undone by a
time-gain-compensation curve; log compression. Lesions follow the BI-RADS descriptors the
classes are known for: benign oval, circumscribed, wider than tall, often posterior
enhancement; malignant irregular or spiculated, taller than wide, posterior shadowing; normal
images have none. Masks are annotation-style (the lesion outline slightly dilated); a few
benign cases have a second lesion in ``_mask_1.png``. As in BUSI, a few exact and near
duplicates are included; the pairs are listed in ``_phantom_truth/duplicates.csv`` (which the
loader of the real layout never reads), and ``SYNTHETIC.json`` marks the tree.

``difficulty`` (0 easy .. 1 hard) sets lesion conspicuity (contrast to the surrounding
tissue) and speckle strength; nothing else.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from brainlib._atomic import atomic_dir
from brainlib.data.classes import BUSI_CLASSES
from brainlib.data.synth.marks import MARK_VERSION, write_synthetic_json
from brainlib.data.synth import locked_generation  # lock per phantom set

GENERATOR = "brainlib.data.synth.breast_us"
GENERATOR_VERSION = "1"
#: BUSI's class proportions (437 benign, 210 malignant, 133 normal of 780).
BUSI_PROPORTIONS: tuple[float, ...] = (437 / 780, 210 / 780, 133 / 780)
TRUTH_DIR = "_phantom_truth"


def _layers(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Echogenicity of the tissue layers, (h, w) in [0, 1]."""
    yy = np.arange(h)[:, None] / h
    xx = np.arange(w)[None, :] / w

    def boundary(mean: float, amp: float) -> np.ndarray:
        phase, freq = rng.uniform(0, 2 * np.pi, 2), rng.uniform(1, 3, 2)
        return mean + amp * (np.sin(2 * np.pi * freq[0] * xx + phase[0])
                             + 0.5 * np.sin(2 * np.pi * freq[1] * xx + phase[1]))

    skin, fat = boundary(0.04, 0.005), boundary(rng.uniform(0.18, 0.3), 0.03)
    gland = boundary(rng.uniform(0.62, 0.75), 0.04)
    echo = np.where(yy < skin, 0.9, np.where(yy < fat, 0.3, np.where(yy < gland, 0.62, 0.38)))
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), (h / 40, w / 15))
    texture /= max(np.abs(texture).max(), 1e-6)
    echo = echo + 0.18 * texture * ((yy >= fat) & (yy < gland))
    muscle = (yy >= gland) & (np.sin(yy * h / 3.0 + 0.3 * texture * 10) > 0.6)
    return np.clip(echo + 0.15 * muscle, 0.02, 1.0)


def _lesion_mask(rng: np.random.Generator, h: int, w: int, cls: str,
                 centre: tuple[float, float], scale: float) -> np.ndarray:
    """Boolean lesion mask: benign oval wider than tall, malignant irregular taller than wide."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx = centre
    theta = np.arctan2(yy - cy, xx - cx)
    if cls == "benign":
        ry, rx = scale * rng.uniform(0.45, 0.7), scale * rng.uniform(0.9, 1.25)
        radius = 1 + 0.04 * np.sin(2 * theta + rng.uniform(0, 6))
    else:
        ry, rx = scale * rng.uniform(0.85, 1.15), scale * rng.uniform(0.55, 0.8)
        radius = 1 + sum(rng.uniform(0.05, 0.14) * np.sin(k * theta + rng.uniform(0, 6))
                         for k in (3, 5, 7))
        spikes = rng.integers(5, 10)
        radius = radius + 0.25 * np.maximum(0, np.cos(spikes * theta + rng.uniform(0, 6))) ** 8
    r = np.hypot((yy - cy) / ry, (xx - cx) / rx)
    return r <= radius


def _speckle(rng: np.random.Generator, echo: np.ndarray, strength: float) -> np.ndarray:
    """Rayleigh envelope speckle on `echo`, blurred by an anisotropic PSF."""
    h, w = echo.shape
    rayleigh = rng.rayleigh(scale=1.0, size=(h, w)) / np.sqrt(np.pi / 2)  # mean 1
    speckled = echo * (1 + strength * (rayleigh - 1))
    return ndimage.gaussian_filter(np.clip(speckled, 0, None), (0.6, 1.3))


def _attenuate(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Depth attenuation exp(-a y) partly compensated by a smooth TGC curve."""
    h = img.shape[0]
    depth = np.arange(h)[:, None] / h
    alpha = rng.uniform(1.5, 2.5)
    tgc = np.exp(alpha * depth * rng.uniform(0.7, 0.95))
    return img * np.exp(-alpha * depth) * tgc


def make_breast_image(seed: int, cls: str, height: int = 256, width: int | None = None,
                      difficulty: float = 0.5, n_lesions: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    """One phantom: uint8 (height, width) image and one bool mask per lesion (none if normal).

    Deterministic per seed.
    """
    if cls not in BUSI_CLASSES:
        raise ValueError(f"cls must be one of {BUSI_CLASSES}, got {cls!r}")
    rng = np.random.default_rng(seed)
    h, w = int(height), int(width or round(height * 1.25))
    echo = _layers(rng, h, w)
    masks: list[np.ndarray] = []
    contrast = 0.1 + 0.55 * float(difficulty)  # lesion echo relative to its surroundings
    for k in range(0 if cls == "normal" else n_lesions):
        scale = min(h, w) * rng.uniform(0.1, 0.17) * (0.7 if k else 1.0)
        centre = (h * rng.uniform(0.35, 0.6), w * rng.uniform(0.25, 0.75))
        m = _lesion_mask(rng, h, w, cls, centre, scale)
        soft = ndimage.gaussian_filter(m.astype(float), 1.0 if cls == "benign" else 0.6)
        echo = echo * (1 - soft * (1 - contrast * (0.9 if cls == "benign" else 0.6)))
        cols = m.any(0)
        below = (np.arange(h)[:, None] > np.argmax(m, 0)[None, :] + m.sum(0)[None, :]) & cols[None, :]
        tail = ndimage.gaussian_filter(below.astype(float), (2, 3))
        gain = 0.35 if cls == "benign" and rng.random() < 0.7 else (-0.45 if cls == "malignant" else 0)
        echo = echo * (1 + gain * tail * (1 - 0.5 * difficulty))
        masks.append(m)
    img = _attenuate(rng, _speckle(rng, np.clip(echo, 0.01, None), 0.55 + 0.4 * difficulty))
    img = np.log1p(8 * img) / np.log1p(8 * np.percentile(img, 99.5))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8), masks


def annotation_mask(mask: np.ndarray, seed: int) -> np.ndarray:
    """An annotator's outline: the lesion dilated by 1-2 pixels and smoothed (uint8 0/255)."""
    rng = np.random.default_rng(seed)
    grown = ndimage.binary_dilation(mask, iterations=int(rng.integers(1, 3)))
    smooth = ndimage.gaussian_filter(grown.astype(float), 1.0) > 0.5
    return (smooth * 255).astype(np.uint8)


def _class_counts(n: int) -> list[int]:
    counts = [int(round(n * p)) for p in BUSI_PROPORTIONS]
    counts[0] += n - sum(counts)
    return counts


def _save_png(path: Path, arr: np.ndarray, rgb: bool) -> None:
    im = Image.fromarray(arr)
    (im.convert("RGB") if rgb else im).save(path, format="PNG", optimize=False, compress_level=1)


def _near_copy(rng: np.random.Generator, image: np.ndarray, mask: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """A near duplicate: a few pixels cropped off and resized back, brightness jittered."""
    h, w = image.shape
    dy, dx = int(rng.integers(2, max(3, h // 40))), int(rng.integers(2, max(3, w // 40)))

    def crop(a: np.ndarray, nearest: bool) -> np.ndarray:
        im = Image.fromarray(a[dy:, : w - dx])
        return np.asarray(im.resize((w, h), Image.NEAREST if nearest else Image.BILINEAR))

    out = np.clip(crop(image, False).astype(float) * rng.uniform(0.9, 1.1), 0, 255).astype(np.uint8)
    return out, [crop(m.astype(np.uint8) * 255, True) > 127 for m in mask]


def write_busi(root: str | Path, n_images: int = 780, seed: int = 0, size: int = 256,
               difficulty: float = 0.5, duplicate_fraction: float = 0.03) -> Path:
    """Write ``root/Dataset_BUSI_with_GT/{benign,malignant,normal}/`` phantoms; return ``root``.

    ``size`` is the nominal image height; heights vary +-15 % and widths are 1.1-1.4 times
    the height (BUSI's images vary in size). About one image in five is saved grey, the rest
    RGB. ``duplicate_fraction`` of the images are copies of earlier ones (half exact, half
    near), within their class; listed in ``_phantom_truth/duplicates.csv``.
    """
    root = Path(root)
    folder = root / "Dataset_BUSI_with_GT"
    rng = np.random.default_rng(seed)
    made: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}
    dup_rows, case_rows = [], []
    for cls, count in zip(BUSI_CLASSES, _class_counts(int(n_images))):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        n_dup = int(round(count * duplicate_fraction))
        for i in range(1, count + 1):
            case = f"{cls} ({i})"
            case_seed = int(rng.integers(0, 2**31 - 1))
            if i > count - n_dup and i > 2:
                source = f"{cls} ({int(rng.integers(1, count - n_dup + 1))})"
                kind = "exact" if (count - i) % 2 == 0 else "near"
                image, masks = made[source]
                if kind == "near":
                    image, masks = _near_copy(np.random.default_rng(case_seed), image, masks)
                dup_rows.append({"case_a": source, "case_b": case, "kind": kind})
            else:
                h = int(size * rng.uniform(0.85, 1.15))
                lesions = 2 if cls == "benign" and rng.random() < 0.06 else 1
                image, masks = make_breast_image(case_seed, cls, h, int(h * rng.uniform(1.1, 1.4)),
                                                 difficulty, lesions)
            made[case] = (image, masks)
            _save_png(folder / cls / f"{case}.png", image, rgb=rng.random() > 0.2)
            outlines = [annotation_mask(m, case_seed + k) for k, m in enumerate(masks)] or \
                [np.zeros(image.shape, np.uint8)]
            for k, m in enumerate(outlines):
                suffix = "_mask" if k == 0 else f"_mask_{k}"
                _save_png(folder / cls / f"{case}{suffix}.png", m, rgb=False)
            case_rows.append({"case_id": case, "label": cls, "lesions": len(masks),
                              "seed": case_seed})
    truth = root / TRUTH_DIR
    truth.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(dup_rows, columns=["case_a", "case_b", "kind"]).to_csv(truth / "duplicates.csv", index=False)
    pd.DataFrame(case_rows).to_csv(truth / "cases.csv", index=False)
    details: dict[str, Any] = {"layout": "busi", "n_images": int(n_images), "size": int(size),
                               "difficulty": float(difficulty), "duplicates": len(dup_rows)}
    write_synthetic_json(root, GENERATOR, GENERATOR_VERSION, seed, **details)
    write_synthetic_json(folder, GENERATOR, GENERATOR_VERSION, seed, **details)
    (truth / "COMPLETE").write_text(json.dumps({"version": GENERATOR_VERSION}))
    return root


def load_duplicates(root: str | Path) -> pd.DataFrame:
    """The duplicate pairs a phantom tree was written with (``case_a, case_b, kind``)."""
    return pd.read_csv(Path(root) / TRUTH_DIR / "duplicates.csv")


@locked_generation
def ensure_busi(n_images: int, seed: int = 0, size: int = 256, difficulty: float = 0.5) -> Path:
    """A BUSI phantom tree written once into ``cache_dir("phantoms")`` and reused."""
    from brainlib.paths import cache_dir

    key = f"busi-n{n_images}-s{seed}-px{size}-d{difficulty}-g{GENERATOR_VERSION}-m{MARK_VERSION}"
    final = cache_dir("phantoms") / key
    if (final / TRUTH_DIR / "COMPLETE").is_file():
        return final
    with atomic_dir(final) as tmp:
        write_busi(tmp, n_images, seed, size, difficulty)
    return final
