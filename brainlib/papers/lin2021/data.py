"""Data of the Dscint experiments: scans, augmentation and the two evaluations.

Lin et al. 2021 augment "the original dataset" with parameter transformations and report
results "on the test data in the augmented dataset": augmented copies of one scan can then sit
in training and test alike. `make_split("augmented_test")` reproduces that (augment every scan,
split the images at random); `make_split("leakage_free")` splits by patient first and augments
the training part only (validation and test are original scans). With
``leakage_free_folds = k > 1``, `make_splits` gives k patient-grouped folds instead (each
fold's test part is one fold of patients, its train/validation parts the other patients), so
every scan is tested once. `leak_frame` says, per test image, whether a copy of its scan or
another scan of its patient was trained on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from brainlib.data.bonescan import BoneScanDataset
from brainlib.data.roots import data_root_for
from brainlib.engine import kfold_split
from brainlib.papers.lin2021.settings import Lin2021Settings


@dataclass
class ScanData:
    """The loaded scans and, for phantoms, the ground truth rows (lesion pixels)."""

    dataset: BoneScanDataset
    root: Path
    truth: list[dict] | None


class ImageSet(Dataset):
    """In-memory images with their source scan and patient: items ``{"x", "y", "id"}``."""

    def __init__(self, x: torch.Tensor, y: np.ndarray, ids: list[str], source: list[str],
                 patient: list[str]) -> None:
        self.x, self.y, self.ids, self.source, self.patient = x, np.asarray(y, np.float32), ids, source, patient

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": self.x[i], "y": torch.from_numpy(self.y[i]), "id": self.ids[i]}


@dataclass
class Split:
    """One evaluation (or one fold of it): train / validation / test image sets."""

    evaluation: str
    train: ImageSet
    val: ImageSet
    test: ImageSet
    fold: int = 0


def load_scans(s: Lin2021Settings, data_root: Any, seed: int) -> ScanData:
    """Phantoms (generated once, cached) unless `data_root` names real scans."""
    root = data_root_for(data_root, "scintigraphy")
    truth = None
    if root is None:
        from brainlib.data.synth.bone_scan import ensure_bonescan, load_bonescan_truth

        root = ensure_bonescan(s.phantom_patients, s.phantom_seed, tuple(s.phantom_shape), s.difficulty)
        truth = load_bonescan_truth(root)
    ds = BoneScanDataset(root, size=s.size, max_scans=s.max_scans, seed=seed)
    if len(ds) == 0:
        raise ValueError(f"{root}: no usable bone scan (see skipped.csv)")
    return ScanData(ds, Path(root), truth)


# --------------------------------------------------------------------------- augmentation
def draw_params(rng: np.random.Generator, n: int, s: Lin2021Settings) -> np.ndarray:
    """(n, 6) parameters: angle (rad), scale, shift x, shift y, mirror (0/1), intensity."""
    ops = set(s.augmentations)
    ang = rng.uniform(-1, 1, n) * math.radians(s.rotation_deg) * ("rotation" in ops)
    scale = rng.uniform(*s.scale_range, n) if "scaling" in ops else np.ones(n)
    shift = rng.uniform(-1, 1, (n, 2)) * 2 * s.translate * ("translation" in ops)
    mirror = (rng.random(n) < s.mirror_p) * ("mirroring" in ops)
    inten = rng.uniform(*s.intensity_range, n) if "intensity" in ops else np.ones(n)
    return np.column_stack([ang, scale, shift, mirror, inten]).astype(np.float32)


def augment(x: torch.Tensor, params: np.ndarray) -> torch.Tensor:
    """Apply `draw_params` rows to images (N, C, H, W): affine (bilinear, zero fill), mirror, gain."""
    p = torch.from_numpy(np.asarray(params, np.float32))
    cos, sin, inv = torch.cos(p[:, 0]), torch.sin(p[:, 0]), 1.0 / p[:, 1]
    h, w = x.shape[-2:]
    ar = h / w  # rotate in pixel space: normalised coordinates are anisotropic
    theta = torch.stack([torch.stack([cos * inv, -sin * inv * ar, p[:, 2]], 1),
                         torch.stack([sin * inv / ar, cos * inv, p[:, 3]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = torch.where(p[:, 4].bool()[:, None, None, None], out.flip(-1), out)
    return out * p[:, 5][:, None, None, None]


def _images(ds: BoneScanDataset, rows: np.ndarray, copies: int, rng: np.random.Generator,
            s: Lin2021Settings) -> ImageSet:
    """The scans `rows` (originals) plus `copies` augmented copies of each."""
    x0 = torch.stack([ds[int(i)]["x"] for i in rows]) if len(rows) else torch.zeros((0, 2, *s.size))
    xs, ids, src = [x0], [f"{ds.ids[i]}|orig" for i in rows], [ds.ids[i] for i in rows]
    for k in range(copies):
        xs.append(augment(x0, draw_params(rng, len(rows), s)))
        ids += [f"{ds.ids[i]}|aug{k + 1}" for i in rows]
        src += [ds.ids[i] for i in rows]
    y = np.tile(ds.labels[rows], (copies + 1, 1))
    patients = list(np.tile(np.asarray(ds.groups)[rows], copies + 1))
    return ImageSet(torch.cat(xs), y, ids, src, [str(p) for p in patients])


def _subset(a: ImageSet, idx: np.ndarray) -> ImageSet:
    return ImageSet(a.x[idx], a.y[idx], [a.ids[i] for i in idx], [a.source[i] for i in idx],
                    [a.patient[i] for i in idx])


def _two_way(labels: np.ndarray, fraction: float, seed: int, groups: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held) with `held` about `fraction` of the units, stratified (kfold_split's first fold)."""
    n = max(2, int(round(1.0 / fraction)))
    rest, held = kfold_split(labels, n, seed, groups)[0]
    return rest, held


def make_split(data: ScanData, evaluation: str, s: Lin2021Settings, seed: int) -> Split:
    """The images of one evaluation (see the module docstring); deterministic per seed."""
    ds = data.dataset
    rng = np.random.default_rng([seed, 17])
    if evaluation == "augmented_test":
        every = _images(ds, np.arange(len(ds)), s.n_augment, rng, s)
        rest, test = _two_way(every.y, s.test_fraction, seed)
        tr, va = _two_way(every.y[rest], s.val_fraction / (1 - s.test_fraction), seed + 1)
        return Split(evaluation, _subset(every, rest[tr]), _subset(every, rest[va]), _subset(every, test))
    if evaluation != "leakage_free":
        raise ValueError(f"unknown evaluation {evaluation!r}")
    groups = np.asarray(ds.groups)
    rest, test = _two_way(ds.labels, s.test_fraction, seed, groups)
    return _patient_split(ds, rest, test, s, seed, rng)


def _patient_split(ds: BoneScanDataset, rest: np.ndarray, test: np.ndarray, s: Lin2021Settings,
                   seed: int, rng: np.random.Generator, fold: int = 0) -> Split:
    """Validation patients drawn from `rest`; training scans augmented, the others original."""
    groups = np.asarray(ds.groups)
    tr, va = _two_way(ds.labels[rest], s.val_fraction / (1 - s.test_fraction), seed + 1, groups[rest])
    return Split("leakage_free", _images(ds, rest[tr], s.n_augment, rng, s),
                 _images(ds, rest[va], 0, rng, s), _images(ds, test, 0, rng, s), fold)


def make_splits(data: ScanData, evaluation: str, s: Lin2021Settings, seed: int) -> list[Split]:
    """The splits of one evaluation: one, or `leakage_free_folds` patient-grouped folds."""
    if evaluation != "leakage_free" or s.leakage_free_folds <= 1:
        return [make_split(data, evaluation, s, seed)]
    ds = data.dataset
    rng = np.random.default_rng([seed, 17])
    folds = kfold_split(ds.labels, s.leakage_free_folds, seed, np.asarray(ds.groups))
    return [_patient_split(ds, rest, test, s, seed, rng, k) for k, (rest, test) in enumerate(folds)]


def leak_frame(split: Split | list[Split]) -> pd.DataFrame:
    """Per test image: its scan and patient, and whether either has an image in training
    (of its own fold, for cross-validation)."""
    if isinstance(split, list):
        return pd.concat([leak_frame(sp) for sp in split], ignore_index=True)
    scans, patients = set(split.train.source), set(split.train.patient)
    return pd.DataFrame({"case_id": split.test.ids, "source": split.test.source,
                         "patient": split.test.patient, "fold": split.fold,
                         "scan_in_train": [s in scans for s in split.test.source],
                         "patient_in_train": [p in patients for p in split.test.patient]})


def data_table(data: ScanData, splits: dict[str, list[Split]]) -> pd.DataFrame:
    """Scans and patients per class, and images per part of each evaluation (with k folds:
    train and validation summed over the folds, so each image counts k - 1 times there; the
    test parts hold every scan once)."""
    ds = data.dataset
    rows = []
    for k, c in enumerate(ds.classes):
        mask = ds.labels[:, k] == 1
        row: dict[str, Any] = {"class": c, "scans": int(mask.sum()),
                               "patients": int(pd.Series(np.asarray(ds.groups)[mask]).nunique())}
        for name, folds in splits.items():
            tag = f"{name} ({len(folds)} folds)" if len(folds) > 1 else name
            for part in ("train", "val", "test"):
                row[f"{tag} {part}"] = int(sum(getattr(sp, part).y[:, k].sum() for sp in folds))
        rows.append(row)
    total = pd.DataFrame(rows).drop(columns="class").sum().to_dict()
    total["patients"] = int(pd.Series(ds.groups).nunique())
    return pd.concat([pd.DataFrame(rows), pd.DataFrame([{"class": "all", **total}])], ignore_index=True)
