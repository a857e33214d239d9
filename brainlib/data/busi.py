"""BUSI: Breast Ultrasound Images (Al-Dhabyani et al. 2020), the data of Pandiyaraju et al.
(2024, arXiv 2407.02844), read in its published layout::

    Dataset_BUSI_with_GT/
      benign/     benign (12).png, benign (12)_mask.png, benign (12)_mask_1.png, ...
      malignant/  malignant (3).png, malignant (3)_mask.png, ...
      normal/     normal (7).png, normal (7)_mask.png          (masks are empty)

Images are RGB or grey PNGs of varying size; extra lesions come as ``_mask_1``, ``_mask_2``
and are merged (logical OR) into one mask. Files that do not fit are never dropped silently:
odd names, masks without an image, images without a mask, unreadable PNGs and images above
``max_pixels`` (refused from the header, before any pixel is decoded: a decompression bomb
never allocates) are listed in :attr:`BUSIDataset.skipped` with a typed error.

Items are ``{"x": (C, S, S) float in [0, 1], "mask": (1, S, S) float 0/1, "y": (3,) one-hot,
"id": "benign (12)"}``: images are converted to grey (PIL "L") and repeated to ``channels``,
resized to ``size`` x ``size`` (bilinear; masks nearest), aspect ratio not kept.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from brainlib.data.base import BaseDataset, DataFileError, DatasetError, as_path, sample_studies
from brainlib.data.classes import BUSI_CLASSES
from brainlib.data.synth.marks import read_synthetic_json
from brainlib.io import Skipped
from brainlib.io.limits import BoundedReader  # read(n) never allocates past the file's end

#: Folder holding the class folders in the published archive.
BUSI_FOLDER = "Dataset_BUSI_with_GT"
#: Largest image accepted (width x height), checked from the PNG header before decoding.
DEFAULT_MAX_PIXELS = 40_000_000
_NAME = re.compile(r"^(?P<cls>[a-z]+) \((?P<num>[0-9]{1,9})\)(?P<mask>_mask(?:_(?P<extra>[0-9]{1,9}))?)?\.png$",
                   re.IGNORECASE | re.ASCII)


class BUSIImageError(DataFileError):
    """A BUSI PNG that cannot be used; ``path`` and ``reason``, the message starts with the path."""


class UnreadableImageError(BUSIImageError):
    """Not a PNG PIL can decode (truncated, empty, another format)."""


class ImageTooLargeError(BUSIImageError):
    """Width x height above ``max_pixels`` (a decompression bomb is refused before decoding)."""


def find_busi_folder(root: str | Path) -> Path:
    """The folder holding ``benign/``, ``malignant/``, ``normal/``: ``root`` itself or
    ``root/Dataset_BUSI_with_GT``. Raises DatasetError naming what was looked for."""
    root = as_path(root)
    for cand in (root, root / BUSI_FOLDER):
        if any((cand / c).is_dir() for c in BUSI_CLASSES):
            return cand
    raise DatasetError(f"{root}: no BUSI class folder ({', '.join(BUSI_CLASSES)}) in it or in "
                       f"{root / BUSI_FOLDER}")


def open_png(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A PNG as a 2-D uint8 grey array (PIL "L"; 16-bit and palette images converted).

    Raises:
        ImageTooLargeError: width x height > ``max_pixels`` (read from the header only).
        UnreadableImageError: not decodable.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with BoundedReader(path) as fh, Image.open(fh) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageTooLargeError(path, f"{w} x {h} pixels exceeds max_pixels "
                                             f"{max_pixels} (refused before decoding)")
                if im.format != "PNG":
                    raise UnreadableImageError(path, f"not a PNG (format {im.format})")
                if im.mode in ("I;16", "I;16B", "I"):
                    arr = np.asarray(im, dtype=np.float64)
                    top = max(float(arr.max()), 1.0)
                    return np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
                return np.asarray(im.convert("L"), dtype=np.uint8)
    except BUSIImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageTooLargeError(path, f"decompression bomb ({err})") from err
    except (OSError, ValueError, SyntaxError) as err:
        raise UnreadableImageError(path, f"unreadable PNG ({type(err).__name__}: {err})") from err


def _resize(arr: np.ndarray, size: int | None, nearest: bool) -> np.ndarray:
    if size is None or arr.shape == (size, size):
        return arr
    resample = Image.NEAREST if nearest else Image.BILINEAR
    return np.asarray(Image.fromarray(arr).resize((size, size), resample))


def index_busi(folder: Path) -> tuple[pd.DataFrame, list[Skipped]]:
    """One row per image (``case_id, label, image_path, mask_paths``) and the skipped files."""
    rows: dict[str, dict[str, Any]] = {}
    masks: dict[str, list[tuple[int, Path]]] = {}
    skipped: list[Skipped] = []
    for cls in BUSI_CLASSES:
        sub = folder / cls
        if not sub.is_dir():
            continue
        for path in sorted(p for p in sub.iterdir() if p.is_file()):
            m = _NAME.match(path.name)
            if m is None or m["cls"].lower() != cls:
                skipped.append(Skipped(str(path), "OddNameError",
                                       f"name does not follow '{cls} (N).png' / '{cls} (N)_mask[_k].png'"))
                continue
            case = f"{cls} ({int(m['num'])})"
            if m["mask"]:
                masks.setdefault(case, []).append((int(m["extra"] or 0), path))
            elif case in rows:  # 'benign (012).png' beside 'benign (12).png': never overwrite
                skipped.append(Skipped(str(path), "DuplicateCaseError",
                                       f"a second image for case '{case}' ({rows[case]['image_path']} is used)"))
            else:
                rows[case] = {"case_id": case, "label": cls, "number": int(m["num"]),
                              "image_path": str(path)}
    for case, found in masks.items():
        if case not in rows:
            skipped.extend(Skipped(str(p), "OrphanMaskError", f"mask without an image '{case}.png'")
                           for _, p in found)
    keep = []
    for case, row in rows.items():
        found = sorted(masks.get(case, []))
        if not found:
            skipped.append(Skipped(row["image_path"], "MissingMaskError",
                                   f"no mask '{case}_mask.png' beside the image"))
            continue
        row["mask_paths"] = tuple(str(p) for _, p in found)
        keep.append(row)
    frame = pd.DataFrame(keep, columns=["case_id", "label", "number", "image_path", "mask_paths"])
    order = {c: i for i, c in enumerate(BUSI_CLASSES)}
    frame = frame.sort_values(by=["label", "number"], key=lambda s: s.map(order) if s.name == "label" else s)
    return frame.reset_index(drop=True), skipped


class BUSIDataset(BaseDataset):
    """The BUSI folder layout as a dataset of (image, merged mask, class).

    Args:
        root: ``Dataset_BUSI_with_GT`` or the folder containing it.
        size: working size S (square); None keeps each image's native size (batch size 1).
        channels: the grey image repeated to this many channels (3 for ImageNet encoders).
        max_images, seed: a deterministic stratified-by-order sample of the images.
        max_pixels: largest accepted width x height (see :func:`open_png`).
        check_pixels: decode every image and mask at construction, so unreadable or
            mismatched files land in ``skipped`` now rather than in the middle of training.
        transform: applied to ``x``.

    Attributes (beyond :class:`BaseDataset`): ``folder`` (the class folders' parent);
    ``metadata`` columns ``case_id, label, number, image_path, mask_paths, paths, width,
    height, mode, n_masks, lesion_fraction`` (the last five filled by ``check_pixels``).
    """

    classes = BUSI_CLASSES

    def __init__(self, root: str | Path, *, size: int | None = 256, channels: int = 3,
                 max_images: int | None = None, seed: int = 0,
                 max_pixels: int = DEFAULT_MAX_PIXELS, check_pixels: bool = True,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.root = as_path(root)
        self.folder = find_busi_folder(self.root)
        self.size, self.channels, self.max_pixels = size, int(channels), int(max_pixels)
        frame, skipped = index_busi(self.folder)
        if max_images is not None and max_images < len(frame):
            frame = frame.iloc[sample_studies(len(frame), int(max_images), seed)]
        frame = frame.reset_index(drop=True)
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if check_pixels:
            frame, bad = self._check(frame)
            skipped += bad
        frame["paths"] = [(r.image_path, *r.mask_paths) for r in frame.itertuples()]
        labels = np.eye(len(BUSI_CLASSES), dtype=np.float32)[
            frame["label"].map(BUSI_CLASSES.index).to_numpy(dtype=int)] if len(frame) else \
            np.zeros((0, len(BUSI_CLASSES)), np.float32)
        super().__init__(labels=labels, metadata=frame, skipped=skipped, windows=None, size=size,
                         transform=transform, root=self.root)

    # ------------------------------------------------------------------ mark
    @property
    def synthetic(self) -> bool:
        """True if ``SYNTHETIC.json`` marks ``root`` or the class folders' parent (phantoms)."""
        try:
            return any(read_synthetic_json(p) is not None for p in {self.root, self.folder})
        except ValueError as err:
            raise DatasetError(str(err)) from err

    # ------------------------------------------------------------------ pixels
    def _read(self, image_path: str, mask_paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        image = open_png(image_path, self.max_pixels)
        mask = np.zeros(image.shape, dtype=bool)
        for mp in mask_paths:
            m = open_png(mp, self.max_pixels)
            if m.shape != image.shape:
                raise BUSIImageError(mp, f"mask is {m.shape[1]} x {m.shape[0]}, image "
                                     f"{image.shape[1]} x {image.shape[0]}")
            mask |= m > 127
        return image, mask

    def _check(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Skipped]]:
        keep, extra, bad = [], [], []
        for i, r in enumerate(frame.itertuples()):
            try:
                image, mask = self._read(r.image_path, r.mask_paths)
                with BoundedReader(r.image_path) as fh, Image.open(fh) as im:
                    mode = im.mode
            except BUSIImageError as err:
                bad.append(Skipped(err.path, type(err).__name__, err.reason))
                continue
            except (OSError, ValueError) as err:  # changed on disk since open_png read it
                bad.append(Skipped(r.image_path, "UnreadableImageError", f"{type(err).__name__}: {err}"))
                continue
            keep.append(i)
            extra.append({"height": image.shape[0], "width": image.shape[1], "mode": mode,
                          "n_masks": len(r.mask_paths), "lesion_fraction": float(mask.mean())})
            self._store(r.case_id, image, mask)
        out = frame.iloc[keep].reset_index(drop=True)
        return pd.concat([out, pd.DataFrame(extra, index=out.index)], axis=1), bad

    def _store(self, case: str, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pair = (_resize(image, self.size, nearest=False),
                _resize(mask.astype(np.uint8) * 255, self.size, nearest=True) > 127)
        if self.size is not None:
            self._cache[case] = pair
        return pair

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ``index`` at the working size: grey image (uint8, S x S) and mask (bool)."""
        row = self.metadata.iloc[int(index)]
        hit = self._cache.get(row["case_id"])
        if hit is not None:
            return hit
        return self._store(row["case_id"], *self._read(row["image_path"], row["mask_paths"]))

    def masks(self) -> np.ndarray:
        """Every row's mask at the working size, ``(N, S, S)`` bool."""
        return np.stack([self.arrays(i)[1] for i in range(len(self))]) if len(self) else \
            np.zeros((0, self.size or 0, self.size or 0), bool)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index) % len(self)
        image, mask = self.arrays(index)
        x = torch.from_numpy(image.astype(np.float32) / 255.0)[None].repeat(self.channels, 1, 1)
        if self.transform is not None:
            x = self.transform(x)
        return {"x": x, "mask": torch.from_numpy(mask.astype(np.float32))[None],
                "y": torch.from_numpy(self.labels[index].copy()),
                "id": str(self.metadata.at[index, "case_id"])}

    @property
    def class_index(self) -> np.ndarray:
        """Class of each row as an index into :attr:`classes`."""
        return self.labels.argmax(1) if len(self) else np.zeros(0, int)
