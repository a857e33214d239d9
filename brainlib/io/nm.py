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

from brainlib.io.errors import (DicomError, MissingPixelDataError, UnreadableDicomError,
                                UnsupportedPhotometricError, UnsupportedTransferSyntaxError)

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


class ImplausibleNMError(DicomError):
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
    """The view of every frame of an NM header: 'anterior', 'posterior' or 'frame<i>'."""
    n = int(ds.get("NumberOfFrames", 1) or 1)
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
    import pydicom
    from pydicom.errors import InvalidDicomError

    p = str(path)
    try:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
    except InvalidDicomError as err:
        raise UnreadableDicomError(p, f"not a DICOM file ({err})") from err
    except (OSError, ValueError, EOFError, KeyError, TypeError) as err:
        raise UnreadableDicomError(p, f"unreadable header ({type(err).__name__}: {err})") from err
    modality = str(ds.get("Modality", "") or "")
    if modality != "NM":
        raise NotNMError(p, f"Modality is {modality or 'missing'!r}, not 'NM' (nuclear medicine)")
    _check_dimensions(p, ds)
    return ds


def _check_dimensions(path: str, ds: Any) -> None:
    try:
        rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError) as err:
        raise UnreadableDicomError(path, f"Rows/Columns/NumberOfFrames not integers ({err})") from err
    if not (1 <= rows <= MAX_SIDE and 1 <= cols <= MAX_SIDE):
        raise ImplausibleNMError(path, f"matrix {rows} x {cols} outside 1..{MAX_SIDE}")
    if not 1 <= frames <= MAX_FRAMES:
        raise ImplausibleNMError(path, f"{frames} frames, outside 1..{MAX_FRAMES} for a bone scan")


def _expected_bytes(ds: Any) -> int:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return frames * int(ds.Rows) * int(ds.Columns) * (int(ds.get("BitsAllocated", 16)) // 8)


def read_nm(path: str | os.PathLike[str]) -> NMScan:
    """Counts of every frame, (F, H, W) float32 after RescaleSlope/Intercept, and the views.

    Raises:
        UnreadableDicomError, NotNMError, ImplausibleNMError: see :func:`read_nm_header`.
        MissingPixelDataError: no Pixel Data, or fewer bytes than the header promises.
        UnsupportedPhotometricError: not single-sample MONOCHROME1/2.
        UnsupportedTransferSyntaxError: compressed data no installed decoder reads.
    """
    import pydicom

    p = str(path)
    read_nm_header(p)
    try:
        ds = pydicom.dcmread(p)
    except Exception as err:  # noqa: BLE001 - any parser failure is "unreadable" for this file
        raise UnreadableDicomError(p, f"unreadable ({type(err).__name__}: {err})") from err
    if "PixelData" not in ds:
        raise MissingPixelDataError(p, "no Pixel Data element")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if int(ds.get("SamplesPerPixel", 1)) != 1 or not photometric.startswith("MONOCHROME"):
        raise UnsupportedPhotometricError(p, f"{photometric} with {ds.get('SamplesPerPixel')} "
                                             "samples per pixel; counts must be greyscale")
    if not ds.file_meta.TransferSyntaxUID.is_compressed and len(ds.PixelData) < _expected_bytes(ds):
        raise MissingPixelDataError(p, f"Pixel Data has {len(ds.PixelData)} bytes, the header "
                                       f"promises {_expected_bytes(ds)} (truncated)")
    counts = _decode(p, ds)
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    counts = counts.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return NMScan(p, counts, frame_views(ds), str(ds.get("PatientID", "") or ""),
                  str(ds.get("StudyInstanceUID", "") or ""), str(ds.get("Manufacturer", "") or ""))


def _decode(path: str, ds: Any) -> np.ndarray:
    try:
        arr = ds.pixel_array
    except (NotImplementedError, RuntimeError) as err:
        raise UnsupportedTransferSyntaxError(
            path, f"cannot decode transfer syntax {ds.file_meta.TransferSyntaxUID} ({err})") from err
    except (ValueError, EOFError) as err:
        raise MissingPixelDataError(path, f"pixel data unreadable ({err})") from err
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return np.asarray(arr).reshape(frames, int(ds.Rows), int(ds.Columns))


def is_nm_file(path: str | os.PathLike[str]) -> bool:
    """Cheap filter for folder scans: a readable NM header."""
    try:
        read_nm_header(Path(path))
    except DicomError:
        return False
    return True
