"""Data of the yin2024 experiment: 2-D images with a class and lesion instances, drawn from
the CQ500 layout (head CT) and the DeepLesion layout (body CT), preprocessed as the paper
describes (grey-level segmental stretching, crop to the head/body, resize to 256, random crop
to 224 with flips and brightness/contrast in training) and served to the engine as
classification or detection batches.

Class rules (readings, see the settings): CQ500 slices take the class whose lesion covers most
pixels of the slice (phantom sidecar masks), instances are the 8-connected components of each
class's mask; "normal" slices have no lesion pixel. DeepLesion key slices take the coarse type
of their largest lesion, instances are the ellipses inscribed in the RECIST boxes; "normal"
slices are other slices of the same series outside every lesion's slice range.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from scipy import ndimage
from torch.utils.data import Dataset

from brainlib.data import CQ500Dataset
from brainlib.data.classes import (DEEPLESION_TYPES, YIN2024_CQ500_CLASSES, YIN2024_CQ500_MAP,
                                   YIN2024_DEEPLESION_CLASSES)
from brainlib.data.deeplesion import DeepLesionDataset, open_hu
from brainlib.data.roots import data_root_for
from brainlib.data.synth import ensure_deeplesion, ensure_phantoms, load_truth, normal_slices
from brainlib.experiment import Experiment
from brainlib.papers.yin2024.cache import load_image_set, save_image_set
from brainlib.paths import cache_dir

SPLITS: tuple[str, ...] = ("train", "val", "test")
MIN_LESION_PIXELS = 6  # at the native size: smaller components are not instances


def stretch(hu: np.ndarray, points: tuple) -> np.ndarray:
    """Grey-level segmental stretching: piecewise-linear HU -> [0, 1] through ``points``
    ((HU, grey), ...), clipped outside."""
    xs, ys = zip(*points)
    return np.interp(hu, xs, ys).astype(np.float32)


def body_square(hu: np.ndarray, threshold: float = -500.0, margin: float = 0.04) -> tuple[int, int, int]:
    """(row0, col0, side) of the square around the head/body (HU > threshold); whole image if none."""
    fg = hu > threshold
    if not fg.any():
        return 0, 0, min(hu.shape)
    rows, cols = np.flatnonzero(fg.any(1)), np.flatnonzero(fg.any(0))
    side = int(max(rows[-1] - rows[0], cols[-1] - cols[0]) * (1 + 2 * margin)) + 1
    cy, cx = (rows[0] + rows[-1]) // 2, (cols[0] + cols[-1]) // 2
    return int(cy - side // 2), int(cx - side // 2), side


def crop_resize(arr: np.ndarray, square: tuple[int, int, int], size: int, nearest: bool) -> np.ndarray:
    """Crop ``square`` (zero/minimum padded where it leaves the image) and resize to ``size``."""
    r0, c0, side = square
    fill = 0 if nearest else float(arr.min())
    pad = side
    big = np.pad(arr, pad, constant_values=fill)
    crop = big[r0 + pad:r0 + pad + side, c0 + pad:c0 + pad + side]
    if nearest:
        return np.asarray(Image.fromarray(crop.astype(np.uint8)).resize((size, size), Image.NEAREST)) > 0
    return np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))


@dataclass
class ImageSet:
    """Preprocessed images of one dataset with class, patient, split and lesion instances."""

    name: str
    classes: tuple[str, ...]
    images: np.ndarray                     # (N, P, P) float32 in [0, 1]
    label: np.ndarray                      # (N,) class index (0 = normal)
    ids: list[str]
    groups: np.ndarray                     # (N,) patient
    split: np.ndarray                      # (N,) "train" / "val" / "test"
    masks: list[np.ndarray]                # per image (K, P, P) bool
    inst_labels: list[np.ndarray]          # per image (K,) class index 1..C-1
    extra: dict[str, Any] = field(default_factory=dict)

    def part(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def table(self) -> pd.DataFrame:
        rows = [{"dataset": self.name, "split": p, "images": len(self.part(p)),
                 **{c: int((self.label[self.part(p)] == k).sum()) for k, c in enumerate(self.classes)}}
                for p in SPLITS]
        return pd.DataFrame(rows)


def _components(mask: np.ndarray) -> list[np.ndarray]:
    lab, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    return [lab == k for k in range(1, n + 1) if (lab == k).sum() >= MIN_LESION_PIXELS]


def _item(hu: np.ndarray, masks: list[np.ndarray], labels: list[int], points: tuple,
          size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    square = body_square(hu)
    image = np.clip(crop_resize(stretch(hu, points), square, size, nearest=False), 0, 1)
    m = [crop_resize(x, square, size, nearest=True) for x in masks]
    keep = [i for i, x in enumerate(m) if x.any()]
    arr = np.stack([m[i] for i in keep]) if keep else np.zeros((0, size, size), bool)
    return image.astype(np.float32), arr, np.asarray([labels[i] for i in keep], np.int64)


def load_cq500(exp: Experiment) -> tuple[ImageSet, Any]:
    """CQ500-layout slices with classes and instances from the phantom sidecar masks."""
    s = exp.settings
    root = data_root_for(exp.data_root, "cq500")
    if root is None:
        root = ensure_phantoms("cq500", s.phantom_studies, s.phantom_seed, s.phantom_size, s.difficulty)
    ds = CQ500Dataset(root, windows=None, size=None, cache=False, max_studies=s.max_images, seed=exp.seed)
    try:
        truth = load_truth(root)
    except FileNotFoundError as err:
        raise NotImplementedError(f"{root}: per-slice classes and masks come from the phantom sidecar; "
                                  "real CQ500 needs a per-slice box CSV (not implemented yet)") from err
    by_path = truth.slice_labels.set_index("path")
    rng = np.random.default_rng(exp.seed)
    rows: list[tuple] = []
    for i in range(len(ds)):
        paths = ds.metadata.at[i, "paths"]
        vol = ds.volume(i)[:, 0].numpy()
        normals = []
        for z, p in enumerate(paths):
            rel = str(Path(p).resolve().relative_to(Path(root).resolve()))
            sop = by_path.loc[rel, "sop_uid"]
            per = truth.masks(sop)
            comps, labels, area = [], [], np.zeros(len(YIN2024_CQ500_CLASSES))
            for key, cls in YIN2024_CQ500_MAP.items():
                k = YIN2024_CQ500_CLASSES.index(cls)
                for c in _components(per[key]):
                    comps.append(c)
                    labels.append(k)
                    area[k] += c.sum()
            if comps:
                rows.append((ds.ids[i], z, vol[z], comps, labels, int(area.argmax())))
            elif not any(m.any() for m in per.values()) and len(paths) / 3 <= z < 2 * len(paths) / 3:
                normals.append(z)
        for z in rng.permutation(normals)[:s.cq500_normal_per_scan]:
            rows.append((ds.ids[i], int(z), vol[z], [], [], 0))
    return _build("cq500", YIN2024_CQ500_CLASSES, rows, s.stretch_cq500, s, exp.seed, None), ds


def load_deeplesion(exp: Experiment) -> tuple[ImageSet, Any]:
    """DeepLesion-layout key slices of the chosen coarse types plus lesion-free series slices."""
    s = exp.settings
    root = data_root_for(exp.data_root, "deeplesion")
    if root is None:
        root = ensure_deeplesion(s.phantom_patients, s.phantom_seed, s.phantom_size, s.difficulty,
                                 tuple(s.deeplesion_types))
    ds = DeepLesionDataset(root, size=None, max_images=s.max_images, seed=exp.seed)
    names = [DEEPLESION_TYPES[t - 1] for t in s.deeplesion_types]
    if tuple(["normal", *names]) != YIN2024_DEEPLESION_CLASSES:
        raise ValueError(f"deeplesion_types {s.deeplesion_types} do not match {YIN2024_DEEPLESION_CLASSES}")
    rows: list[tuple] = []
    split_of: dict[str, str] = {}
    for i in range(len(ds)):
        types = list(ds.metadata.at[i, "types"])
        if not all(t in s.deeplesion_types for t in types):
            continue
        boxes = ds.boxes(i)
        labels = [list(s.deeplesion_types).index(t) + 1 for t in types]
        largest = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
        rows.append((ds.ids[i], 0, ds.hu(i), list(ds.lesion_masks(i)), labels, labels[largest]))
        split_of[ds.ids[i]] = ds.metadata.at[i, "split"]
    normals = normal_slices(root, ds.metadata)
    if len(normals):
        first = normals.groupby("group").head(1)  # one lesion-free slice per series
        for r in first.itertuples():
            rows.append((r.case_id, 0, open_hu(r.image_path), [], [], 0))
            split_of[r.case_id] = r.split
    return _build("deeplesion", YIN2024_DEEPLESION_CLASSES, rows, s.stretch_deeplesion, s, exp.seed,
                  split_of), ds


def _build(name: str, classes: tuple[str, ...], rows: list[tuple], points: tuple, s: Any, seed: int,
           split_of: dict[str, str] | None) -> ImageSet:
    rng = np.random.default_rng(seed)
    label = np.array([r[5] for r in rows], np.int64)
    keep = np.arange(len(rows))
    if s.images_per_scan:
        keep = per_scan_cap([str(r[0]) for r in rows], label, s.images_per_scan, rng)
    if s.images_per_class:
        keep = np.sort(np.concatenate([rng.permutation(keep[label[keep] == k])[:s.images_per_class]
                                       for k in range(len(classes))]))
    items, ids, groups = [], [], []
    for i in keep:
        study, z, hu, comps, labels, _ = rows[i]
        items.append(_item(hu, comps, labels, points, s.preprocessed_size))
        ids.append(f"{study}" if split_of is not None else f"{study}/z{z:03d}")
        groups.append(study.rsplit("_", 1)[0] if split_of is not None else study)
    groups_arr = np.asarray(groups)
    if split_of is not None:  # DeepLesion: the official split
        split = np.asarray([split_of[rows[i][0]] for i in keep])
    else:
        split = patient_split(groups_arr, label[keep], s.split, seed)
    return ImageSet(name, classes, np.stack([t[0] for t in items]), label[keep], ids, groups_arr, split,
                    [t[1] for t in items], [t[2] for t in items])


def per_scan_cap(scans: list[str], label: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Indices keeping at most ``cap`` images of each class from each scan (seeded draw), so a
    class is not made of the neighbouring slices of a few scans."""
    scans_arr = np.asarray(scans)
    keep = [rng.permutation(np.flatnonzero((scans_arr == sc) & (label == k)))[:cap]
            for sc in np.unique(scans_arr) for k in np.unique(label[scans_arr == sc])]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def patient_split(groups: np.ndarray, label: np.ndarray, fractions: tuple, seed: int) -> np.ndarray:
    """Whole patients to train / val / test, stratified by each patient's most frequent lesion class."""
    rng = np.random.default_rng(seed)
    pats = np.unique(groups)
    key = np.array([np.bincount(label[groups == p][label[groups == p] > 0], minlength=1).argmax()
                    if (label[groups == p] > 0).any() else 0 for p in pats])
    out = np.empty(len(groups), dtype=object)
    for k in np.unique(key):
        ps = rng.permutation(pats[key == k])
        n_test = max(1, int(round(len(ps) * fractions[2]))) if len(ps) >= 3 else 0
        n_val = max(1, int(round(len(ps) * fractions[1]))) if len(ps) >= 3 else 0
        for j, p in enumerate(ps):
            out[groups == p] = "test" if j < n_test else "val" if j < n_test + n_val else "train"
    return out.astype(str)


@dataclass
class _Source:
    """What the run's data source needs from a loader (kept with the cached image set)."""

    root: str
    synthetic: bool
    skipped: list


_KEY_FIELDS = ("max_images", "images_per_class", "images_per_scan", "cq500_normal_per_scan", "deeplesion_types", "split",
               "preprocessed_size", "stretch_cq500", "stretch_deeplesion", "phantom_studies",
               "phantom_patients", "phantom_size", "difficulty", "phantom_seed")


def _cache_file(exp: Experiment, name: str) -> Path:
    s = exp.settings
    root = data_root_for(exp.data_root, name)
    stamp = ""
    if root is not None:
        index = Path(root) / ("DL_info.csv" if name == "deeplesion" else "reads.csv")
        stamp = f"{Path(root).resolve()}:{index.stat().st_mtime_ns if index.exists() else 0}"
    text = repr((name, stamp, exp.seed, [getattr(s, f) for f in _KEY_FIELDS], MIN_LESION_PIXELS, 1))
    return cache_dir("yin2024") / f"{name}-{hashlib.sha1(text.encode()).hexdigest()[:16]}.npz"


def load_set(exp: Experiment, name: str) -> tuple[ImageSet, _Source]:
    """One dataset's image set, built once per (data, settings, seed) and reused from the cache
    (the header scan of a CQ500 tree is the slow part). The cache is an ``.npz`` read without
    pickle (:mod:`brainlib.papers.yin2024.cache`); an unreadable or foreign file there is
    reported with a warning and rebuilt, never unpickled."""
    path = _cache_file(exp, name)
    if path.is_file():
        try:
            fields, (root, synthetic, skipped) = load_image_set(path)
            return ImageSet(**fields), _Source(root, synthetic, skipped)
        except ValueError as err:
            warnings.warn(f"{err}; rebuilding it", RuntimeWarning, stacklevel=2)
    data, ds = (load_cq500 if name == "cq500" else load_deeplesion)(exp)
    source = _Source(str(ds.root), bool(ds.synthetic), list(ds.skipped))
    save_image_set(path, data, source.root, source.synthetic, source.skipped)
    return data, source


def load(exp: Experiment) -> dict[str, ImageSet]:
    """Every dataset of the run (settings.dataset), recorded as the run's data source."""
    sets, loaded = {}, {}
    for name in exp.settings.datasets:
        with exp.timed(f"data_{name}"):
            sets[name], loaded[name] = load_set(exp, name)
        exp.skipped(loaded[name].skipped)
    exp.use_datasets(loaded, images={k: len(v.label) for k, v in sets.items()})
    return sets


# --------------------------------------------------------------------------- engine views
def _augment(img: torch.Tensor, masks: torch.Tensor, size: int, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (train) or centre crop to ``size``, flips, brightness/contrast (image only)."""
    p = img.shape[-1]
    if train:
        r0, c0 = (int(torch.randint(0, p - size + 1, (2,))[k]) for k in range(2))
    else:
        r0 = c0 = (p - size) // 2
    img, masks = img[..., r0:r0 + size, c0:c0 + size], masks[..., r0:r0 + size, c0:c0 + size]
    if train:
        if torch.rand(()) < 0.5:
            img, masks = img.flip(-1), masks.flip(-1)
        if torch.rand(()) < 0.5:
            img, masks = img.flip(-2), masks.flip(-2)
        gain, bias = 1 + 0.2 * (torch.rand(()) - 0.5), 0.1 * (torch.rand(()) - 0.5)
        img = ((img - img.mean()) * gain + img.mean() + bias).clamp(0, 1)
    return img, masks


class ClassView(Dataset):
    """Items ``{"x": (3, S, S), "y": one-hot, "id"}`` of one split."""

    def __init__(self, data: ImageSet, split: str, size: int, train: bool) -> None:
        self.data, self.idx, self.size, self.train = data, data.part(split), size, train

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = int(self.idx[i])
        img, _ = _augment(torch.from_numpy(self.data.images[j]), torch.zeros(0, *self.data.images[j].shape),
                          self.size, self.train)
        y = torch.zeros(len(self.data.classes))
        y[self.data.label[j]] = 1
        return {"x": img[None].repeat(3, 1, 1), "y": y, "id": self.data.ids[j]}


class DetectionView(ClassView):
    """Items with ``targets``: boxes (K, 4) from the (cropped, flipped) masks, labels, masks."""

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = int(self.idx[i])
        img, masks = _augment(torch.from_numpy(self.data.images[j]),
                              torch.from_numpy(self.data.masks[j]).to(torch.uint8), self.size, self.train)
        keep = masks.flatten(1).any(1).bool() if len(masks) else torch.zeros(0, dtype=torch.bool)
        masks = masks[keep]
        labels = torch.from_numpy(self.data.inst_labels[j])[keep]
        boxes = torch.zeros(len(masks), 4)
        for k, m in enumerate(masks):
            rows, cols = torch.where(m.any(1))[0], torch.where(m.any(0))[0]
            boxes[k] = torch.tensor([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=torch.float32)
        y = torch.zeros(len(self.data.classes))
        y[self.data.label[j]] = 1
        return {"x": img[None].repeat(3, 1, 1), "y": y, "id": self.data.ids[j],
                "targets": {"boxes": boxes, "labels": labels, "masks": masks}}


def collate_detection(batch: list[dict[str, Any]]) -> dict[str, Any]:
    return {"x": torch.stack([b["x"] for b in batch]), "y": torch.stack([b["y"] for b in batch]),
            "id": [b["id"] for b in batch], "targets": [b["targets"] for b in batch]}
