"""Data of the pandiyaraju2024 experiment: the BUSI layout (phantoms or a real root), a
stratified train / validation / test split, the views the two networks train on, the
classifier's masked-crop input and the near-duplicate leakage audit."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from PIL import Image
from scipy import ndimage
from torch.utils.data import Dataset

from brainlib.data import leakage
from brainlib.data.busi import BUSIDataset
from brainlib.data.classes import BUSI_CLASSES
from brainlib.data.roots import data_root_for
from brainlib.data.synth.breast_us import TRUTH_DIR, ensure_busi, load_duplicates
from brainlib.experiment import Experiment

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass
class BusiData:
    """The dataset at the working size, its split (index arrays) and the leakage audit."""

    dataset: BUSIDataset
    parts: dict[str, np.ndarray]
    audit: leakage.LeakageAudit | None = None
    known_duplicates: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.dataset.classes)

    def subset(self, part: str) -> BUSIDataset:
        return self.dataset.subset(self.parts[part])

    def ids(self, part: str) -> list[str]:
        return [self.dataset.ids[i] for i in self.parts[part]]

    def split_of(self) -> list[str]:
        """Split name of every row."""
        out = [""] * len(self.dataset)
        for part, idx in self.parts.items():
            for i in idx:
                out[int(i)] = part
        return out

    def table(self) -> pd.DataFrame:
        """Images per class in each split."""
        cls = self.dataset.class_index
        rows = [{"split": part, "images": len(idx),
                 **{c: int((cls[idx] == k).sum()) for k, c in enumerate(self.classes)}}
                for part, idx in self.parts.items()]
        return pd.DataFrame(rows)


def stratified_split(classes: np.ndarray, fractions: tuple[float, ...], seed: int) -> dict[str, np.ndarray]:
    """Per class, shuffle (seeded) and cut by ``fractions``; every part gets >= 1 of a class
    with >= 3 images."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {p: [] for p in SPLITS}
    for k in np.unique(classes):
        idx = rng.permutation(np.flatnonzero(classes == k))
        n = len(idx)
        n_val = max(1, int(round(n * fractions[1]))) if n >= 3 else 0
        n_test = max(1, int(round(n * fractions[2]))) if n >= 3 else 0
        parts["test"] += idx[:n_test].tolist()
        parts["val"] += idx[n_test:n_test + n_val].tolist()
        parts["train"] += idx[n_test + n_val:].tolist()
    return {p: np.sort(np.asarray(v, dtype=np.int64)) for p, v in parts.items()}


def load_data(exp: Experiment) -> BusiData:
    """The BUSI tree of ``exp.data_root`` (or the cached phantoms), split and audited.

    Records the data source from the tree's phantom mark and the loader's skipped files.
    """
    s = exp.settings
    root = data_root_for(exp.data_root, "busi")
    if root is None:
        root = ensure_busi(s.phantom_images, s.phantom_seed, s.phantom_size, s.difficulty)
    ds = BUSIDataset(root, size=s.image_size, max_images=s.max_images, seed=exp.seed)
    exp.use_dataset(ds, "busi", images=len(ds))
    exp.skipped(ds.skipped)
    if len(ds) < 9:
        raise ValueError(f"{root}: only {len(ds)} usable BUSI images (see skipped.csv)")
    data = BusiData(ds, stratified_split(ds.class_index, s.split, exp.seed))
    if (root / TRUTH_DIR / "duplicates.csv").is_file():
        data.known_duplicates = load_duplicates(root)
    data.audit = audit_leakage(data, s.leak_threshold, s.leak_min_correlation)
    return data


def audit_leakage(data: BusiData, threshold: int, min_correlation: float) -> leakage.LeakageAudit:
    """Fingerprint every image at the working size and find near duplicates."""
    ds = data.dataset
    prints = leakage.fingerprints(ds.arrays(i)[0] for i in range(len(ds)))
    labels = [ds.classes[k] for k in ds.class_index]
    return leakage.audit(prints, ds.ids, labels, data.split_of(), threshold, min_correlation)


class SegmentationView(Dataset):
    """Items ``{"x", "y": mask (1, S, S), "label": class index, "id"}`` for the engine."""

    def __init__(self, dataset: BUSIDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.dataset[i]
        return {"x": item["x"], "y": item["mask"], "label": int(item["y"].argmax()), "id": item["id"]}


def masked_crop(image: np.ndarray, mask: np.ndarray, size: int, margin: float,
                crop: bool = True) -> np.ndarray:
    """The classifier's input: ``image`` (uint8 S x S) times ``mask`` dilated by 2 px, cropped to a
    square of side (1 + margin) x the mask's larger side around it (``crop=False``: the whole
    frame) and resized to ``size``; an empty mask gives a blank (zero) input. float32 [0, 1]."""
    if not mask.any():
        return np.zeros((size, size), np.float32)
    grown = ndimage.binary_dilation(mask, iterations=2)
    masked = (image.astype(np.float32) / 255.0) * grown
    if crop:
        rows, cols = np.flatnonzero(grown.any(1)), np.flatnonzero(grown.any(0))
        cy, cx = (rows[0] + rows[-1]) / 2, (cols[0] + cols[-1]) / 2
        half = max(rows[-1] - rows[0], cols[-1] - cols[0], 8) * (1 + margin) / 2
        y0, x0 = int(round(cy - half)), int(round(cx - half))
        side = int(round(2 * half))
        pad = side + 2
        padded = np.pad(masked, pad)
        masked = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
    return np.asarray(Image.fromarray(masked).resize((size, size), Image.BILINEAR), dtype=np.float32)


def whole_image(image: np.ndarray, size: int) -> np.ndarray:
    """The whole frame at the classifier's size, float32 [0, 1]."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR),
                      dtype=np.float32) / 255.0


class ClassifierView(Dataset):
    """Items ``{"x": (C, size, size), "y": one-hot, "id"}`` built once from a mask source.

    ``masks``: ``"truth"`` (ground-truth masks), a mapping case id -> bool mask at the working
    size (predicted masks), or None (the whole image, no mask).
    """

    def __init__(self, dataset: BUSIDataset, masks: str | Mapping[str, np.ndarray] | None,
                 size: int, margin: float, crop: bool = True, channels: int = 3) -> None:
        xs = []
        for i in range(len(dataset)):
            image, truth = dataset.arrays(i)
            if masks is None:
                xs.append(whole_image(image, size))
            else:
                m = truth if isinstance(masks, str) else masks[dataset.ids[i]]
                xs.append(masked_crop(image, m, size, margin, crop))
        x = torch.from_numpy(np.stack(xs)) if xs else torch.zeros(0, size, size)
        self.x = x[:, None].repeat(1, channels, 1, 1)
        self.y = torch.from_numpy(dataset.labels.copy())
        self.ids = dataset.ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": self.x[i], "y": self.y[i], "id": self.ids[i]}


def class_names(index: np.ndarray) -> list[str]:
    return [BUSI_CLASSES[int(k)] for k in index]
