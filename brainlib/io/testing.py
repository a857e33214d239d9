"""Write real CT Image Storage DICOM slices from HU arrays.

Used by tests and by the phantom writers (RSNA / CQ500 layouts), so the same readers that
read the published datasets read our fixtures. Three pixel encodings cover the quirks the
readers must honour (see DESIGN.md, RSNA facts):

- ``"int16"`` (default): signed 16-bit, RescaleIntercept -1024, slope 1.
- ``"uint16"``: unsigned 16-bit with intercept -1024, so a reader that applies the intercept
  before casting wraps around.
- ``"rsna12"``: the RSNA 12-bit style: BitsStored 12, PixelRepresentation 0, intercept 0
  (> -100), stored value = HU mod 4096; `brainlib.io.read_hu` must apply the 12-bit fix.
  Representable HU are [-1000, 3095] (values are clipped into it).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    PYDICOM_IMPLEMENTATION_UID,
    RLELossless,
    generate_uid,
)

from brainlib._atomic import atomic_path

STYLES = ("int16", "uint16", "rsna12")
_COMPRESSION = {"rle": RLELossless, "jpeg2000": JPEG2000Lossless}


def uid_from(*parts: object) -> str:
    """A valid DICOM UID derived deterministically from `parts` (same parts, same UID)."""
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def _encode(hu: np.ndarray, style: str, intercept: float | None) -> tuple[np.ndarray, dict]:
    hu = np.rint(np.asarray(hu, dtype=np.float64))
    if style == "int16":
        icpt = -1024.0 if intercept is None else float(intercept)
        stored = np.clip(hu - icpt, -32768, 32767).astype(np.int16)
        return stored, dict(BitsStored=16, HighBit=15, PixelRepresentation=1, RescaleIntercept=icpt)
    if style == "uint16":
        icpt = -1024.0 if intercept is None else float(intercept)
        stored = np.clip(hu - icpt, 0, 65535).astype(np.uint16)
        return stored, dict(BitsStored=16, HighBit=15, PixelRepresentation=0, RescaleIntercept=icpt)
    if style == "rsna12":
        icpt = 0.0 if intercept is None else float(intercept)
        if icpt <= -100:
            raise ValueError("the rsna12 style needs RescaleIntercept > -100 (that is the quirk)")
        stored = np.mod(np.clip(hu, -1000, 3095), 4096).astype(np.uint16)
        return stored, dict(BitsStored=12, HighBit=11, PixelRepresentation=0, RescaleIntercept=icpt)
    raise ValueError(f"unknown style {style!r}; choose from {STYLES}")


def write_ct_slice(
    path: str | os.PathLike[str],
    hu: np.ndarray,
    *,
    style: str = "int16",
    intercept: float | None = None,
    patient_id: str = "PHANTOM-0",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    series_number: int = 1,
    instance_number: int = 1,
    series_description: str = "",
    position: Sequence[float] | None = None,
    orientation: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    pixel_spacing: Sequence[float] = (0.5, 0.5),
    slice_thickness: float = 5.0,
    windows: Sequence[tuple[float, float]] | None = ((40.0, 80.0),),
    compress: str | None = None,
    modality: str = "CT",
    extra: dict | None = None,
) -> Path:
    """Write one 2-D HU slice as a CT Image Storage file (atomically) and return its path.

    `position` defaults to ``(0, 0, (instance_number - 1) * slice_thickness)`` along the
    normal of `orientation`-free axial slices. UIDs default to deterministic values derived
    from patient, series number and instance number. `windows` are (level, width) pairs;
    more than one gives multi-valued WindowCenter/WindowWidth. `compress` is ``"rle"`` or
    ``"jpeg2000"`` (lossless). `extra` sets further attributes by keyword (e.g. KVP).
    """
    hu = np.asarray(hu)
    if hu.ndim != 2:
        raise ValueError(f"hu must be 2-D, got shape {hu.shape}")
    stored, pix = _encode(hu, style, intercept)
    study_uid = study_uid or uid_from("study", patient_id)
    series_uid = series_uid or uid_from("series", study_uid, series_number)
    sop_uid = sop_uid or uid_from("sop", series_uid, instance_number)
    if position is None:
        position = (0.0, 0.0, (instance_number - 1) * float(slice_thickness))

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Modality = modality
    ds.PatientID = patient_id
    ds.PatientName = patient_id
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = uid_from("frame", study_uid)
    ds.StudyID = "1"
    ds.SeriesNumber = int(series_number)
    ds.InstanceNumber = int(instance_number)
    ds.SeriesDescription = series_description
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(v) for v in pixel_spacing]
    ds.SliceThickness = float(slice_thickness)
    ds.SliceLocation = float(position[2])
    ds.Rows, ds.Columns = (int(n) for n in stored.shape)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    for key, value in pix.items():
        setattr(ds, key, value)
    ds.RescaleSlope = 1.0
    ds.RescaleType = "HU"
    if windows:
        levels = [float(w[0]) for w in windows]
        widths = [float(w[1]) for w in windows]
        ds.WindowCenter = levels if len(levels) > 1 else levels[0]
        ds.WindowWidth = widths if len(widths) > 1 else widths[0]
    for key, value in (extra or {}).items():
        setattr(ds, key, value)
    ds.PixelData = stored.tobytes()
    if compress is not None:
        try:
            ds.compress(_COMPRESSION[compress])
        except KeyError:
            raise ValueError(f"unknown compression {compress!r}; choose from {sorted(_COMPRESSION)}") from None

    with atomic_path(path, fsync=False) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return Path(path)


def read_raw(path: str | os.PathLike[str]) -> pydicom.Dataset:
    """Convenience for tests: the full dataset as pydicom reads it."""
    return pydicom.dcmread(path)
