"""DeepLesion (Yan et al. 2018, J Med Imaging 5(3):036501), one of the two datasets Yin et al.
(2024, Sci Rep) name, read in its published layout::

    <root>/
      DL_info.csv                       one row per lesion (the official 18 columns)
      Images_png/000001_01_01/109.png   16-bit PNG slices, HU = value - 32768
      SYNTHETIC.json                    only in brainlib phantom trees (the phantom mark)

``File_name`` ``000001_01_01_109.png`` names ``Images_png/000001_01_01/109.png``: patient,
study, series, key-slice index. A key slice holding several lesions has one CSV row per lesion;
this dataset has **one row per key slice** with all its lesions (boxes, coarse types, RECIST
diameters). ``Bounding_boxes`` are ``"x1, y1, x2, y2"`` in pixels of the stored image;
``Coarse_lesion_type`` 1-8 (:data:`brainlib.data.classes.DEEPLESION_TYPES`), -1 unlabelled
(the test split); ``Train_Val_Test`` 1 train, 2 validation, 3 test (the official split,
``split=`` selects it, :attr:`DeepLesionDataset.split` gives it per row).

Labels (N x 8): 1 where a lesion of that type is on the slice, 0 for the other types, NaN for
every type when one of the slice's lesions is unlabelled (-1): the slice's full type set is then
unknown. Nothing is dropped silently: unreadable or missing PNGs, 8-bit images, images above
``max_pixels`` (refused from the header before decoding: a decompression bomb never
allocates) and malformed CSV rows are listed in ``skipped`` with a typed error naming the file.

Items: ``{"x": (C, S, S), "y": (8,), "id", "boxes": (K, 4) at the working size, "types": (K,)}``;
``x`` is HU (C = 1) or windows stacked as channels, resized to S (bilinear, aspect not kept).
:meth:`DeepLesionDataset.lesion_masks` gives per-lesion masks (ellipse inscribed in the box, or
the box itself): DeepLesion has RECIST marks, not outlines.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from PIL import Image

from brainlib.data.base import BaseDataset, DataFileError, DatasetError, as_path
from brainlib.data.classes import DEEPLESION_TYPES
from brainlib.data.csvfile import read_csv_bounded
from brainlib.io import Skipped
from brainlib.io.limits import BoundedReader  # read(n) never allocates past the file's end

#: DL_info.csv columns, verbatim, in file order.
DL_INFO_COLUMNS: tuple[str, ...] = (
    "File_name", "Patient_index", "Study_index", "Series_ID", "Key_slice_index",
    "Measurement_coordinates", "Bounding_boxes", "Lesion_diameters_Pixel_",
    "Normalized_lesion_location", "Coarse_lesion_type", "Possibly_noisy", "Slice_range",
    "Spacing_mm_px_", "Image_size", "DICOM_windows", "Patient_gender", "Patient_age",
    "Train_Val_Test")
DL_INFO = "DL_info.csv"
IMAGES = "Images_png"
HU_OFFSET = 32768
SPLIT_CODES: dict[int, str] = {1: "train", 2: "val", 3: "test"}
DEFAULT_MAX_PIXELS = 16_000_000
_FILE = re.compile(r"^(?P<series>[0-9]{1,9}_[0-9]{1,9}_[0-9]{1,9})_(?P<slice>[0-9]{1,9})\.png$", re.ASCII)


class DeepLesionError(DataFileError):
    """A DeepLesion file that cannot be used; ``path`` and ``reason``, message starts with the path."""


class UnreadableImageError(DeepLesionError):
    """Missing, truncated or not a PNG."""


class NotSixteenBitError(DeepLesionError):
    """A PNG that is not 16-bit grey: HU = value - 32768 would be wrong."""


class ImageTooLargeError(DeepLesionError):
    """Width x height above ``max_pixels`` (refused before decoding)."""


class MalformedRowError(DeepLesionError):
    """A DL_info.csv row whose fields cannot be parsed (the path names the CSV and the row)."""


def image_path(root: str | Path, file_name: str) -> Path:
    """``Images_png/<series>/<slice>.png`` for a ``File_name`` like ``000001_01_01_109.png``."""
    m = _FILE.match(file_name)
    if m is None:
        raise ValueError(f"File_name {file_name!r} is not '<PPPPPP>_<SS>_<ss>_<NNN>.png'")
    return Path(root) / IMAGES / m["series"] / f"{int(m['slice']):03d}.png"


def parse_numbers(text: Any, n: int | None = None) -> tuple[float, ...]:
    """``"1.5, 2, 3"`` -> (1.5, 2.0, 3.0); checks the count when ``n`` is given."""
    values = tuple(float(v) for v in str(text).replace(";", ",").split(",") if v.strip())
    if not all(np.isfinite(values)):
        raise ValueError(f"non-finite number in {str(text)[:80]!r}")
    if n is not None and len(values) != n:
        raise ValueError(f"expected {n} numbers, got {len(values)} in {text!r}")
    return values


def read_dl_info(path: str | Path) -> pd.DataFrame:
    """DL_info.csv as a DataFrame; raises DatasetError naming the file if columns are missing."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no {DL_INFO} (expected at the DeepLesion root)")
    frame = read_csv_bounded(path, dtype={"File_name": str}, skipinitialspace=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in DL_INFO_COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {missing}; expected {list(DL_INFO_COLUMNS)}")
    return frame


def open_hu(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A DeepLesion PNG as float32 HU (value - 32768).

    Raises:
        ImageTooLargeError, NotSixteenBitError, UnreadableImageError (all name the file).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with BoundedReader(path) as fh, Image.open(fh) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageTooLargeError(path, f"{w} x {h} pixels exceeds max_pixels {max_pixels} "
                                             "(refused before decoding)")
                if im.format != "PNG":
                    raise UnreadableImageError(path, f"not a PNG (format {im.format})")
                if im.mode not in ("I;16", "I;16B", "I;16L", "I"):
                    raise NotSixteenBitError(path, f"PIL mode {im.mode}, expected 16-bit grey "
                                             "(HU = value - 32768)")
                arr = np.asarray(im, dtype=np.int32)
    except DeepLesionError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageTooLargeError(path, f"decompression bomb ({err})") from err
    except FileNotFoundError as err:
        raise UnreadableImageError(path, "file not found") from err
    except (OSError, ValueError, SyntaxError) as err:
        raise UnreadableImageError(path, f"unreadable PNG ({type(err).__name__}: {err})") from err
    return (arr - HU_OFFSET).astype(np.float32)


def index_key_slices(root: Path, info: pd.DataFrame, csv_path: Path) -> tuple[pd.DataFrame, list[Skipped]]:
    """Group DL_info rows by key slice; malformed rows go to ``skipped`` (named by CSV row)."""
    lesions: dict[str, list[dict[str, Any]]] = {}
    meta: dict[str, dict[str, Any]] = {}
    skipped: list[Skipped] = []
    for i, r in enumerate(info.itertuples(index=False)):
        where = f"{csv_path} row {i + 2}"
        try:
            fname = str(r.File_name).strip()
            path = image_path(root, fname)
            box = parse_numbers(r.Bounding_boxes, 4)
            if not (box[2] > box[0] and box[3] > box[1]):
                raise ValueError(f"empty box {box}")
            size = parse_numbers(r.Image_size, 2)
            ctype = int(r.Coarse_lesion_type)
            if ctype != -1 and not 1 <= ctype <= len(DEEPLESION_TYPES):
                raise ValueError(f"Coarse_lesion_type {ctype} not in 1-8 or -1")
            split = SPLIT_CODES[int(r.Train_Val_Test)]
            lesion = {"box": box, "type": ctype, "diameters": parse_numbers(r.Lesion_diameters_Pixel_),
                      "recist": parse_numbers(r.Measurement_coordinates), "noisy": int(r.Possibly_noisy)}
            spacing = parse_numbers(r.Spacing_mm_px_)
            window = parse_numbers(r.DICOM_windows, 2)
            slice_range = parse_numbers(r.Slice_range, 2)
            case = fname[:-4]
            row_meta = {
                "case_id": case, "file_name": fname, "image_path": str(path),
                "patient": int(r.Patient_index), "study": int(r.Study_index), "series": int(r.Series_ID),
                "key_slice": int(r.Key_slice_index), "split": split, "image_width": int(size[0]),
                "image_height": int(size[1]), "spacing": spacing, "window": window,
                "slice_range": tuple(int(v) for v in slice_range), "gender": str(r.Patient_gender),
                "age": r.Patient_age}
            if not (0 < row_meta["image_width"] <= 65535 and 0 < row_meta["image_height"] <= 65535):
                raise ValueError(f"Image_size {size} outside 1..65535")
        except (ValueError, KeyError, TypeError, OverflowError) as err:
            skipped.append(Skipped(where, "MalformedRowError", str(err)[:300]))
            continue
        lesions.setdefault(case, []).append(lesion)
        meta.setdefault(case, row_meta)
    rows = []
    for case, m in meta.items():
        ls = lesions[case]
        rows.append({**m, "boxes": tuple(l["box"] for l in ls), "types": tuple(l["type"] for l in ls),
                     "diameters": tuple(l["diameters"] for l in ls), "recist": tuple(l["recist"] for l in ls),
                     "noisy": tuple(l["noisy"] for l in ls), "n_lesions": len(ls),
                     "group": f"{m['patient']:06d}"})
    cols = ["case_id", "file_name", "image_path", "patient", "study", "series", "key_slice", "split"]
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=cols + ["boxes", "types", "group"])
    return frame.sort_values(["patient", "study", "series", "key_slice"]).reset_index(drop=True), skipped


def _sample_patients(frame: pd.DataFrame, max_images: int, seed: int) -> pd.DataFrame:
    """Whole patients in a seeded order until ``max_images`` key slices (at least one patient)."""
    patients = frame["patient"].unique()
    keep: list[int] = []
    for p in patients[np.random.default_rng(seed).permutation(len(patients))]:
        rows = np.flatnonzero(frame["patient"].to_numpy() == p)
        if keep and len(keep) + len(rows) > max_images:
            continue
        keep.extend(rows.tolist())
        if len(keep) >= max_images:
            break
    return frame.iloc[np.sort(keep)].reset_index(drop=True)


def type_labels(types: Sequence[Sequence[int]]) -> np.ndarray:
    """(N, 8) labels from each slice's lesion types (NaN row when any type is -1)."""
    out = np.zeros((len(types), len(DEEPLESION_TYPES)), np.float32)
    for i, ts in enumerate(types):
        if any(t == -1 for t in ts):
            out[i] = np.nan
        else:
            out[i, [t - 1 for t in ts]] = 1.0
    return out


class DeepLesionDataset(BaseDataset):
    """DeepLesion key slices with their lesions.

    Args:
        root: the folder holding ``DL_info.csv`` and ``Images_png/``.
        split: ``"train"``, ``"val"``, ``"test"`` (the official ``Train_Val_Test``) or None (all).
        windows: ``(level, width)`` pairs stacked as channels (None: HU, one channel).
        size: working size S; None keeps the native size (boxes unscaled).
        max_images, seed: a deterministic sample of whole patients capped at ``max_images`` key slices.
        max_pixels: largest accepted width x height.
        check_files: open every PNG header now, so missing / 8-bit / oversized files land in
            ``skipped`` at construction (pixels are decoded on first use).
        transform: applied to ``x``.
    """

    classes = DEEPLESION_TYPES

    def __init__(self, root: str | Path, *, split: Literal["train", "val", "test"] | None = None,
                 windows: Sequence[tuple[float, float]] | None = None, size: int | None = 256,
                 max_images: int | None = None, seed: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS,
                 check_files: bool = True, transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        root = as_path(root)
        if split not in (None, *SPLIT_CODES.values()):
            raise ValueError(f"split must be one of {tuple(SPLIT_CODES.values())} or None, got {split!r}")
        csv_path = root / DL_INFO
        frame, skipped = index_key_slices(root, read_dl_info(csv_path), csv_path)
        if split is not None:
            frame = frame[frame["split"] == split].reset_index(drop=True)
        if max_images is not None and max_images < len(frame):
            frame = _sample_patients(frame, int(max_images), seed)
        self.max_pixels, self.window_list = int(max_pixels), tuple(windows) if windows else None
        if check_files and len(frame):
            frame, bad = self._check(frame)
            skipped += bad
        frame["paths"] = [(p,) for p in frame["image_path"]]
        self._cache: dict[str, np.ndarray] = {}
        super().__init__(labels=type_labels(list(frame["types"])), metadata=frame, skipped=skipped,
                         windows=None, size=size, transform=transform, root=root)
        self.size = size

    def _check(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Skipped]]:
        keep, bad = [], []
        for i, path in enumerate(frame["image_path"]):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    with BoundedReader(path) as fh, Image.open(fh) as im:
                        w, h = im.size
                        mode, fmt = im.mode, im.format
                if w * h > self.max_pixels:
                    raise ImageTooLargeError(path, f"{w} x {h} pixels exceeds max_pixels {self.max_pixels} "
                                             "(refused before decoding)")
                if fmt != "PNG":
                    raise UnreadableImageError(path, f"not a PNG (format {fmt})")
                if mode not in ("I;16", "I;16B", "I;16L", "I"):
                    raise NotSixteenBitError(path, f"PIL mode {mode}, expected 16-bit grey")
            except DeepLesionError as err:
                bad.append(Skipped(err.path, type(err).__name__, err.reason))
                continue
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
                bad.append(Skipped(str(path), "ImageTooLargeError", f"decompression bomb ({err})"))
                continue
            except FileNotFoundError:
                bad.append(Skipped(str(path), "UnreadableImageError", "file not found"))
                continue
            except (OSError, ValueError, SyntaxError) as err:
                bad.append(Skipped(str(path), "UnreadableImageError", f"unreadable PNG ({err})"))
                continue
            keep.append(i)
        return frame.iloc[keep].reset_index(drop=True), bad

    # ------------------------------------------------------------------ accessors
    @property
    def split(self) -> np.ndarray:
        """Official split of each row (``train``/``val``/``test``)."""
        return self.metadata["split"].to_numpy()

    def _scale(self, index: int) -> tuple[float, float]:
        row = self.metadata.iloc[int(index)]
        if self.size is None:
            return 1.0, 1.0
        return self.size / float(row["image_width"]), self.size / float(row["image_height"])

    def hu(self, index: int) -> np.ndarray:
        """Row ``index`` in HU at the working size, float32 (S, S)."""
        case = str(self.metadata.at[int(index), "case_id"])
        hit = self._cache.get(case)
        if hit is None:
            hu = open_hu(self.metadata.at[int(index), "image_path"], self.max_pixels)
            if self.size is not None and hu.shape != (self.size, self.size):
                hu = np.asarray(Image.fromarray(hu, mode="F").resize((self.size, self.size), Image.BILINEAR))
            hit = hu.astype(np.float32)
            if self.size is not None:
                self._cache[case] = hit
        return hit

    def boxes(self, index: int) -> np.ndarray:
        """Lesion boxes ``x1, y1, x2, y2`` at the working size, (K, 4) float32."""
        sx, sy = self._scale(index)
        b = np.asarray(self.metadata.at[int(index), "boxes"], np.float32).reshape(-1, 4)
        return b * np.array([sx, sy, sx, sy], np.float32)

    def lesion_masks(self, index: int, shape: Literal["ellipse", "box"] = "ellipse") -> np.ndarray:
        """(K, S, S) bool: per lesion, the ellipse inscribed in its box (or the box)."""
        side_y, side_x = self.hu(index).shape
        yy, xx = np.mgrid[0:side_y, 0:side_x] + 0.5
        out = []
        for x1, y1, x2, y2 in self.boxes(index):
            if shape == "box":
                out.append((xx >= x1) & (xx <= x2) & (yy >= y1) & (yy <= y2))
            else:
                cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, max((x2 - x1) / 2, 0.5), max((y2 - y1) / 2, 0.5)
                out.append(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1)
        return np.stack(out) if out else np.zeros((0, side_y, side_x), bool)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index) % len(self)
        hu = torch.from_numpy(self.hu(index).copy())
        if self.window_list:
            x = torch.stack([((hu - (lvl - wid / 2)) / wid).clamp(0, 1) for lvl, wid in self.window_list])
        else:
            x = hu[None]
        if self.transform is not None:
            x = self.transform(x)
        return {"x": x, "y": torch.from_numpy(self.labels[index].copy()), "id": self.ids[index],
                "boxes": torch.from_numpy(self.boxes(index)),
                "types": torch.tensor(self.metadata.at[index, "types"], dtype=torch.int64)}
