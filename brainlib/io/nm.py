"""DICOM Nuclear Medicine (NM) whole-body scans: counts per frame and the view of each frame.

Clinical whole-body bone scintigraphy (Lin et al. 2021, Med Phys 48, "Dscint") is stored as NM
Image objects, usually one file with two frames (anterior and posterior) of about 256 x 1024
counts, 16-bit; some sites export one view per file. Which view a frame is comes from the NM
detector module: ``FrameIncrementPointer`` names ``DetectorVector`` (0054,0020), whose value per
frame indexes ``DetectorInformationSequence``, whose items carry a ``ViewCodeSequence``
(code meaning "anterior" / "posterior"). Files without that module fall back to a top-level
``ViewCodeSequence``, ``ViewPosition`` or the series description ("WB ANT", "POST").

Every failure raises a :class:`brainlib.io.errors.DicomError` subclass whose message starts
with the path. Sizes are checked from the header *before* pixels are decoded, so a damaged or
hostile header (65535 x 65535 x 10000 frames) is refused without allocating gigabytes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brainlib.io.errors import (DicomError, ImplausibleImageError, MissingPixelDataError,
                                UnreadableDicomError, UnsupportedPhotometricError,
                                UnsupportedTransferSyntaxError)

__all__ = ["NMScan", "NotNMError", "ImplausibleNMError", "MAX_FRAMES", "MAX_SIDE", "VIEWS",
           "frame_views", "read_nm", "read_nm_header"]

#: Largest frame side accepted (whole-body matrices are 256 x 1024; 4096 leaves room).
MAX_SIDE = 4096
#: Most frames accepted (whole-body: 1-4; dynamic studies are not bone scans).
MAX_FRAMES = 16
#: Canonical view names.
VIEWS: tuple[str, ...] = ("anterior", "posterior")
NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"


class NotNMError(DicomError):
    """The file is DICOM but not a nuclear-medicine image (``Modality`` is not NM)."""


class ImplausibleNMError(ImplausibleImageError):
    """The header promises a matrix or frame count no whole-body scan has (refused unread)."""


@dataclass(frozen=True)
class NMScan:
    """One NM file: ``counts`` (F, H, W) float32 and the view of each frame."""

    path: str
    counts: np.ndarray
    views: tuple[str, ...]
    patient_id: str
    study_uid: str
    manufacturer: str


def _view_name(text: Any) -> str | None:
    """'anterior' / 'posterior' from a code meaning or description, None if neither."""
    t = str(text or "").strip().lower()
    if not t:
        return None
    if "post" in t or t in ("pa", "p"):
        return "posterior"
    if "ant" in t or t in ("ap", "a"):
        return "anterior"
    return None


def _item_view(item: Any) -> str | None:
    seq = item.get("ViewCodeSequence", None) if item is not None else None
    if seq:
        return _view_name(seq[0].get("CodeMeaning", "")) or _view_name(seq[0].get("CodeValue", ""))
    return None


def frame_views(ds: Any) -> tuple[str, ...]:
    """The view of every frame of an NM header: 'anterior', 'posterior' or 'frame<i>'.

    Raises UnreadableDicomError (naming the file) when the view tags are damaged.
    """
    try:
        return _frame_views(ds)
    except DicomError:
        raise
    except Exception as err:  # damaged DetectorVector / sequences / lazily converted values
        where = str(getattr(ds, "filename", "") or "<dataset>")
        raise UnreadableDicomError(where, f"damaged view tags ({type(err).__name__}: {err})") from err


def _frame_views(ds: Any) -> tuple[str, ...]:
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if not 1 <= n <= MAX_FRAMES:
        raise ImplausibleNMError(str(getattr(ds, "filename", "") or "<dataset>"),
                                 f"{n} frames, outside 1..{MAX_FRAMES} for a bone scan")
    views: list[str | None] = [None] * n
    info = ds.get("DetectorInformationSequence", None)
    vector = ds.get("DetectorVector", None)
    if info:
        if vector is not None and not isinstance(vector, (list, tuple)) and n == 1:
            vector = [vector]
        if vector is not None and len(list(vector)) == n:
            for i, det in enumerate(vector):
                if 1 <= int(det) <= len(info):
                    views[i] = _item_view(info[int(det) - 1])
        elif len(info) == n:
            views = [_item_view(item) for item in info]
    if n == 1 and views[0] is None:
        views[0] = (_item_view(ds) or _view_name(ds.get("ViewPosition", ""))
                    or _view_name(_description_view(ds)))
    return tuple(v or f"frame{i + 1}" for i, v in enumerate(views))


def _description_view(ds: Any) -> str:
    words = str(ds.get("SeriesDescription", "") or "").replace("_", " ").lower().split()
    for w in words:
        if _view_name(w):
            return w
    return ""


def read_nm_header(path: str | os.PathLike[str]) -> Any:
    """The header (no pixels) of an NM file; typed errors for non-DICOM, non-NM, absurd sizes."""
    from brainlib.io.dicom import _dcmread

    p = str(path)
    ds = _dcmread(p, stop_before_pixels=True)
    try:
        modality = ds.get("Modality", "")
        modality = str(modality or "") if isinstance(modality, str) or not modality else repr(modality)
    except Exception as err:  # pydicom converts damaged raw elements lazily
        raise UnreadableDicomError(p, f"damaged Modality ({type(err).__name__}: {err})") from err
    if modality != "NM":
        raise NotNMError(p, f"Modality is {modality or 'missing'!r}, not 'NM' (nuclear medicine)")
    _check_dimensions(p, ds)
    return ds


def _check_dimensions(path: str, ds: Any) -> None:
    from brainlib.io.dicom import header_int

    rows, cols = header_int(ds, "Rows", 0, path), header_int(ds, "Columns", 0, path)
    frames = header_int(ds, "NumberOfFrames", 1, path)
    if not (1 <= rows <= MAX_SIDE and 1 <= cols <= MAX_SIDE):
        raise ImplausibleNMError(path, f"matrix {rows} x {cols} outside 1..{MAX_SIDE}")
    if not 1 <= frames <= MAX_FRAMES:
        raise ImplausibleNMError(path, f"{frames} frames, outside 1..{MAX_FRAMES} for a bone scan")


def read_nm(path: str | os.PathLike[str]) -> NMScan:
    """Counts of every frame, (F, H, W) float32 after RescaleSlope/Intercept, and the views.

    Raises:
        UnreadableDicomError, NotNMError, ImplausibleNMError: see :func:`read_nm_header`.
        MissingPixelDataError: no Pixel Data, or fewer bytes than the header promises.
        UnsupportedPhotometricError: not single-sample MONOCHROME1/2.
        UnsupportedTransferSyntaxError: compressed data no installed decoder reads.
    """
    from brainlib.io.dicom import _dcmread

    p = str(path)
    read_nm_header(p)
    ds = _dcmread(p)
    try:
        return _scan(p, ds)
    except DicomError:
        raise
    except MemoryError:
        raise  # never hidden: the header checks must prevent it
    except Exception as err:  # pydicom converts damaged raw elements lazily, anywhere below
        raise UnreadableDicomError(p, f"damaged header element ({type(err).__name__}: {err})") from err


def _scan(p: str, ds: Any) -> NMScan:
    from brainlib.io.dicom import header_int, rescale, transfer_syntax
    from brainlib.io.limits import check_codestreams

    _check_dimensions(p, ds)  # again: the full read may differ from the header-only one
    if "PixelData" not in ds:
        raise MissingPixelDataError(p, "no Pixel Data element")
    photometric = ds.get("PhotometricInterpretation", "MONOCHROME2")
    samples = header_int(ds, "SamplesPerPixel", 1, p)
    if samples != 1 or not isinstance(photometric, str) or not photometric.startswith("MONOCHROME"):
        raise UnsupportedPhotometricError(p, f"{str(photometric)[:40]} with {samples} "
                                             "samples per pixel; counts must be greyscale")
    rows, cols = header_int(ds, "Rows", 0, p), header_int(ds, "Columns", 0, p)
    frames, bits = header_int(ds, "NumberOfFrames", 1, p), header_int(ds, "BitsAllocated", 16, p)
    if bits not in (8, 16, 32):
        raise UnreadableDicomError(p, f"BitsAllocated {bits} is not 8, 16 or 32")
    ts = transfer_syntax(ds, p)
    data = ds.PixelData
    if not isinstance(data, (bytes, bytearray)):
        raise MissingPixelDataError(p, f"Pixel Data is not a byte string ({type(data).__name__})")
    expected = frames * rows * cols * (bits // 8)
    if not ts.is_compressed and len(data) < expected:
        raise MissingPixelDataError(p, f"Pixel Data has {len(data)} bytes, the header "
                                       f"promises {expected} (truncated)")
    if ts.is_compressed:
        check_codestreams(p, data, str(ts), rows, cols, frames, samples)
    counts = _decode(p, ds, frames, rows, cols)
    slope, intercept = rescale(ds, p)
    counts = counts.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return NMScan(p, counts, frame_views(ds), str(ds.get("PatientID", "") or ""),
                  str(ds.get("StudyInstanceUID", "") or ""), str(ds.get("Manufacturer", "") or ""))


def _decode(path: str, ds: Any, frames: int, rows: int, cols: int) -> np.ndarray:
    try:
        arr = ds.pixel_array
    except (NotImplementedError, RuntimeError) as err:
        raise UnsupportedTransferSyntaxError(
            path, f"cannot decode transfer syntax {ds.file_meta.get('TransferSyntaxUID')} ({err})") from err
    except (ValueError, EOFError) as err:
        raise MissingPixelDataError(path, f"pixel data unreadable ({err})") from err
    arr = np.asarray(arr)
    if arr.size != frames * rows * cols:
        raise MissingPixelDataError(path, f"decoded {arr.size} values, the header promises "
                                          f"{frames} x {rows} x {cols}")
    return arr.reshape(frames, rows, cols)


def is_nm_file(path: str | os.PathLike[str]) -> bool:
    """Cheap filter for folder scans: a readable NM header."""
    try:
        read_nm_header(Path(path))
    except DicomError:
        return False
    return True
