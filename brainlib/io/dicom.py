"""DICOM slice -> Hounsfield units, with typed errors.

The modality LUT (RescaleSlope/RescaleIntercept) is applied after casting the stored values
to float, so unsigned data never wrap (pydicom `pixels/processing.py` does the same).
RSNA 2019 ICH quirk (DESIGN.md): files with BitsStored 12, PixelRepresentation 0 and
RescaleIntercept > -100 hold signed data; add 1000, wrap values >= 4096 by subtracting 4096
and use intercept -1000. Compressed transfer syntaxes (JPEG 2000, JPEG lossless, RLE, ...)
are decoded by pydicom's pixel plugins (pylibjpeg / pillow / gdcm, whichever is installed).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from brainlib.io.errors import (
    DicomError,
    ImplausibleImageError,
    MissingPixelDataError,
    NotCTError,
    UnreadableDicomError,
    UnsupportedPhotometricError,
    UnsupportedTransferSyntaxError,
)
from brainlib.io.limits import (
    MAX_FILE_BYTES,
    BoundedReader,
    check_codestreams,
    check_inflated_size,
    check_size,
)
from brainlib.io.window import Window

PathLike = str | os.PathLike[str]

GREYSCALE = ("MONOCHROME1", "MONOCHROME2")
_NATIVE_LE = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
_NO_FILE_META_TAGS = ("Rows", "Columns", "SOPClassUID", "Modality")


def _dcmread(path: PathLike, fh: Any = None, **kwargs: Any) -> Dataset:
    """dcmread mapping every failure to a DicomError. Files without the 128-byte preamble are
    accepted only if a forced read finds image tags in them. `fh` (a
    :class:`~brainlib.io.limits.BoundedReader` of `path`) is read instead of reopening, so
    callers can see where it stopped; otherwise the file is opened bounded (no read asks for
    more bytes than the file holds) and closed again."""
    try:
        size = os.stat(path).st_size
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise UnreadableDicomError(path, f"cannot open file ({getattr(exc, 'strerror', None) or exc})") from exc
    if size == 0:
        raise UnreadableDicomError(path, "empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise ImplausibleImageError(path, f"{size} bytes, above MAX_FILE_BYTES {MAX_FILE_BYTES}")
    own = fh is None
    if own:
        try:
            fh = BoundedReader(path)
        except (OSError, ValueError) as exc:
            raise UnreadableDicomError(path, f"cannot open file ({getattr(exc, 'strerror', None) or exc})") from exc
    try:
        head = fh.read(4096)
        fh.seek(0)
        check_inflated_size(str(path), head, fh)
        return _parse(path, fh, **kwargs)
    finally:
        if own:
            fh.close()


def _parse(path: PathLike, fh: Any, **kwargs: Any) -> Dataset:
    try:
        return pydicom.dcmread(fh, **kwargs)
    except InvalidDicomError:
        pass
    except Exception as exc:  # pydicom raises many types on corrupt headers
        raise UnreadableDicomError(path, f"corrupt DICOM header ({type(exc).__name__}: {exc})") from exc
    try:
        fh.seek(0)
        ds = pydicom.dcmread(fh, force=True, **kwargs)
        if any(tag in ds for tag in _NO_FILE_META_TAGS):
            return ds
    except Exception:
        pass
    raise UnreadableDicomError(path, "not a DICOM file (no 'DICM' prefix and no image tags)")


def header_int(ds: Dataset, key: str, default: int, path: PathLike) -> int:
    """One integer header value; a multi-valued, non-numeric or unparsable one is an
    UnreadableDicomError (bare ``int()`` of a damaged element raised TypeError)."""
    try:
        value = ds.get(key, default)
    except Exception as exc:  # pydicom converts raw values lazily, here
        raise UnreadableDicomError(path, f"{key} cannot be parsed ({type(exc).__name__}: {exc})") from exc
    if value is None or value == "":
        return default
    if isinstance(value, (pydicom.multival.MultiValue, list, tuple)):
        raise UnreadableDicomError(path, f"{key} has {len(value)} values, expected one")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise UnreadableDicomError(path, f"{key} is not an integer ({str(value)[:40]!r})") from exc


def read_header(path: PathLike) -> Dataset:
    """Read the header only (`stop_before_pixels`): cheap indexing of large folders."""
    return _dcmread(path, stop_before_pixels=True)


def _first(value: Any) -> Any:
    """First item of a multi-valued element (DESIGN.md: window tags may be multi-valued)."""
    if isinstance(value, (pydicom.multival.MultiValue, list, tuple)):
        return value[0] if len(value) else None
    return value


def rescale(ds: Dataset, path: PathLike) -> tuple[float, float]:
    """The modality LUT ``(RescaleSlope, RescaleIntercept)``: first values, defaults 1 and 0 when
    absent or empty; a non-numeric or non-finite one is an UnreadableDicomError."""
    try:
        slope = float(_first(ds.get("RescaleSlope", 1.0)) or 1.0)
        intercept = float(_first(ds.get("RescaleIntercept", 0.0)) or 0.0)
    except (TypeError, ValueError) as exc:
        raise UnreadableDicomError(path, f"non-numeric RescaleSlope/RescaleIntercept ({exc})") from exc
    if not (np.isfinite(slope) and np.isfinite(intercept)):
        raise UnreadableDicomError(path, f"RescaleSlope {slope} / RescaleIntercept {intercept} not finite")
    return slope, intercept


def read_window_tags(ds_or_path: Dataset | PathLike) -> Window | None:
    """The file's own display window (first value of WindowCenter/WindowWidth), or None."""
    ds = ds_or_path if isinstance(ds_or_path, Dataset) else read_header(ds_or_path)
    level, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if level is None or width is None:
        return None
    try:
        level, width = float(level), float(width)
    except (TypeError, ValueError):
        return None
    return Window(level, width) if width > 0 else None


def transfer_syntax(ds: Dataset, path: PathLike | None = None) -> UID:
    """The file's transfer syntax UID; implicit VR little endian when the meta lacks one.

    Raises UnsupportedTransferSyntaxError when the meta holds something that is not a known
    transfer syntax (a damaged UID made pydicom raise a bare ValueError later).
    """
    where = path if path is not None else (getattr(ds, "filename", None) or "<dataset>")
    meta = getattr(ds, "file_meta", None)
    try:
        uid = meta.get("TransferSyntaxUID") if meta is not None else None
    except Exception as exc:
        raise UnsupportedTransferSyntaxError(where, f"TransferSyntaxUID cannot be parsed ({exc})") from exc
    if not uid:
        return ImplicitVRLittleEndian
    if not isinstance(uid, str):
        raise UnsupportedTransferSyntaxError(where, f"TransferSyntaxUID is {str(uid)[:80]!r}, not one UID")
    uid = UID(uid)
    if not uid.is_transfer_syntax:
        raise UnsupportedTransferSyntaxError(where, f"TransferSyntaxUID {str(uid)[:64]!r} is not a "
                                                    "transfer syntax pydicom knows")
    return uid


def check_decodable(ds: Dataset, path: PathLike) -> None:
    """Raise UnsupportedTransferSyntaxError unless an installed plugin decodes this syntax."""
    from pydicom.pixels import get_decoder

    ts = transfer_syntax(ds)
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise UnsupportedTransferSyntaxError(
            path, f"transfer syntax {ts.name} ({ts}) has no pixel decoder in pydicom"
        ) from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "all plugins disabled"
        raise UnsupportedTransferSyntaxError(
            path, f"no installed decoder for transfer syntax {ts.name} ({ts}); missing: {missing}"
        )


def check_image(ds: Dataset, path: PathLike, require_ct: bool = True) -> None:
    """Header checks shared by read_hu and scan_folder: CT, greyscale, decodable."""
    if require_ct:
        modality = ds.get("Modality")
        if modality != "CT":
            raise NotCTError(path, f"Modality is {modality!r}, not 'CT' (values would not be HU)")
    photometric = ds.get("PhotometricInterpretation")
    samples = header_int(ds, "SamplesPerPixel", 1, path)
    if not isinstance(photometric, str) or photometric not in GREYSCALE or samples != 1:
        raise UnsupportedPhotometricError(
            path,
            f"PhotometricInterpretation {photometric!r} with {samples} sample(s) per pixel; "
            "only single-sample MONOCHROME1/MONOCHROME2 is supported",
        )
    if "Rows" not in ds or "Columns" not in ds:
        raise MissingPixelDataError(path, "no Rows/Columns in the header")
    rows, cols = header_int(ds, "Rows", 0, path), header_int(ds, "Columns", 0, path)
    frames = header_int(ds, "NumberOfFrames", 1, path)
    check_size(str(path), rows, cols, frames, bytes_per_pixel=4.0)
    if frames != 1:
        raise DicomError(path, f"multi-frame image ({frames} frames); brainlib reads 2-D slices")
    if transfer_syntax(ds, path).is_compressed:
        check_decodable(ds, path)


def needs_rsna12_fix(ds: Dataset) -> bool:
    """RSNA quirk: 12-bit unsigned storage with an intercept > -100 holds signed values."""
    try:
        return (
            int(ds.get("BitsStored", 0)) == 12
            and int(ds.get("PixelRepresentation", 1)) == 0
            and float(_first(ds.get("RescaleIntercept", -1024))) > -100
        )
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class StoredSlice:
    """Stored pixel values with their (linear) modality LUT: HU = raw * slope + intercept.

    `raw` already has the RSNA 12-bit fix applied (then `intercept` is -1000). Kept separate
    from HU so the cache can resize in the integer domain before the linear LUT.
    """

    raw: np.ndarray
    slope: float
    intercept: float
    header: Dataset

    def hu(self) -> np.ndarray:
        """Float32 HU: stored values times slope plus intercept."""
        out = self.raw.astype(np.float32)
        if self.slope != 1.0:
            out *= np.float32(self.slope)
        out += np.float32(self.intercept)
        return out


def _pixels(ds: Dataset, path: PathLike) -> np.ndarray:
    if "PixelData" not in ds:
        kind = "Float Pixel Data" if ("FloatPixelData" in ds or "DoubleFloatPixelData" in ds) else "Pixel Data"
        raise MissingPixelDataError(path, f"no {kind} element" if kind == "Pixel Data" else f"{kind} is not supported")
    rows, cols = header_int(ds, "Rows", 0, path), header_int(ds, "Columns", 0, path)
    ts = transfer_syntax(ds, path)
    bits = header_int(ds, "BitsAllocated", 0, path)
    signed = header_int(ds, "PixelRepresentation", 0, path) == 1
    data = ds.PixelData
    if not isinstance(data, (bytes, bytearray)):
        raise MissingPixelDataError(path, f"Pixel Data is not a byte string ({type(data).__name__})")
    if not ts.is_compressed:
        if bits not in (1, 8, 16, 32, 64):
            raise UnreadableDicomError(path, f"BitsAllocated {bits} is not 1, 8, 16, 32 or 64")
        need = (rows * cols + 7) // 8 if bits == 1 else rows * cols * bits // 8
        if len(data) < need:
            raise MissingPixelDataError(path, f"truncated pixel data ({len(data)} of {need} bytes)")
    else:
        check_codestreams(str(path), data, str(ts), rows, cols, 1, 1)
    if ts in _NATIVE_LE and bits == 16 and (not signed or header_int(ds, "BitsStored", 16, path) == 16):
        # Fast path for the common native layout (about 0.5 ms/slice cheaper than
        # pixel_array's generic machinery); tests check it equals pixel_array.
        return np.frombuffer(data, dtype="<i2" if signed else "<u2", count=rows * cols).reshape(rows, cols)
    if ts.is_compressed:
        check_decodable(ds, path)
    try:
        arr = ds.pixel_array
    except ValueError as exc:  # pydicom: length mismatch -> truncated / inconsistent header
        raise MissingPixelDataError(path, f"truncated or inconsistent pixel data ({exc})") from exc
    except NotImplementedError as exc:
        raise UnsupportedTransferSyntaxError(path, f"cannot decode {ts.name}: {exc}") from exc
    except RuntimeError as exc:
        if ts.is_compressed and "missing dependencies" in str(exc):
            raise UnsupportedTransferSyntaxError(path, f"no installed decoder for {ts.name}: {exc}") from exc
        raise MissingPixelDataError(path, f"pixel data could not be decoded (corrupt or truncated {ts.name}): {exc}") from exc
    except Exception as exc:
        raise MissingPixelDataError(path, f"pixel data could not be decoded ({type(exc).__name__}: {exc})") from exc
    if arr.ndim != 2:
        raise DicomError(path, f"expected a 2-D image, got pixel array of shape {arr.shape}")
    return arr


def read_stored(path: PathLike, require_ct: bool = True) -> StoredSlice:
    """Read and validate one slice; return stored values (12-bit fix applied) and its LUT."""
    ds = _dcmread(path)
    try:
        return _stored(ds, path, require_ct)
    except DicomError:
        raise
    except MemoryError:
        raise  # never hidden: the limits in brainlib.io.limits must prevent it
    except Exception as exc:  # pydicom converts damaged raw elements lazily, anywhere above
        raise UnreadableDicomError(path, f"damaged header element ({type(exc).__name__}: {exc})") from exc


def _stored(ds: Dataset, path: PathLike, require_ct: bool) -> StoredSlice:
    check_image(ds, path, require_ct=require_ct)
    raw = _pixels(ds, path)
    slope, intercept = rescale(ds, path)
    if needs_rsna12_fix(ds):
        fixed = raw.astype(np.int32) + 1000
        fixed[fixed >= 4096] -= 4096
        raw, intercept = fixed, -1000.0
    return StoredSlice(raw=raw, slope=slope, intercept=intercept, header=ds)


def read_hu(path: PathLike, require_ct: bool = True) -> np.ndarray:
    """Read one DICOM slice as float32 Hounsfield units, shape (Rows, Columns).

    Raises a `DicomError` subclass naming the file and the reason on any bad input.
    `require_ct=False` applies the same modality LUT to non-CT images (not HU then).
    """
    return read_stored(path, require_ct=require_ct).hu()
