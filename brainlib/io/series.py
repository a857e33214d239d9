"""Header-only folder indexing and series assembly.

`scan_folder` reads headers only (`stop_before_pixels`) and keeps one small row per file,
never a pydicom Dataset, so memory grows with the index, not with the images. Files that
cannot be used are returned in a skipped list (nothing is dropped silently). The row keeps
`Manufacturer` (column `manufacturer`): brainlib's phantom files carry "brainlib phantom"
there and the loaders report such trees as synthetic (`brainlib.data.synth.marks`).
`assemble_series` groups rows by Study/Series UID and orders slices by their position along
the slice normal (ImageOrientationPatient row x column direction, dotted with
ImagePositionPatient); file names never give the order (CQ500). Duplicate or missing
positions become warnings on the `Series`, not crashes.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydicom.dataset import Dataset

from brainlib.io.dicom import (
    PathLike,
    _dcmread,
    _first,
    check_image,
    header_int,
    needs_rsna12_fix,
    read_window_tags,
    transfer_syntax,
)
from brainlib.io.errors import (DicomError, MalformedIdError, MissingPixelDataError, Skipped,
                                UnreadableDicomError)
from brainlib.io.limits import BoundedReader

#: What a Study/Series/SOP Instance UID may look like: DICOM UIDs (digits and dots) and the
#: anonymised ids of RSNA (``ID_<hex>``); never a path separator, NUL, space or a leading dot.
UID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)
_UID_TAGS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")

INDEX_COLUMNS = [
    "path", "study_uid", "series_uid", "sop_uid", "instance_number", "position",
    "series_description", "rows", "columns", "pixel_spacing", "slice_thickness", "modality",
    "patient_id", "series_number", "image_position", "image_orientation", "window_level",
    "window_width", "rescale_slope", "rescale_intercept", "bits_stored",
    "pixel_representation", "rsna12_fix", "transfer_syntax", "convolution_kernel",
    "contrast_agent", "image_type", "manufacturer", "file_size", "mtime_ns",
]


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(math.isfinite(v) for v in out) else None


def slice_normal_position(orientation: Sequence[float] | None, position: Sequence[float] | None) -> float:
    """Position (mm) along the slice normal; NaN when either tag is missing or malformed."""
    if orientation is None or position is None:
        return math.nan
    normal = np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))
    if not np.linalg.norm(normal) > 0:
        return math.nan
    return float(np.dot(normal / np.linalg.norm(normal), np.asarray(position)))


def _check_pixel_extent(fh: Any, ds: Dataset, path: PathLike, size: int) -> None:
    """After a stop_before_pixels read the file sits at the Pixel Data tag: verify it is
    there and, for native data, that the file holds all the bytes its length promises."""
    ts = transfer_syntax(ds, path)
    if ts.is_deflated:  # the body is zlib-compressed: file offsets mean nothing; read_hu checks
        return
    head = fh.read(12)
    if len(head) < 8:
        raise MissingPixelDataError(path, "no Pixel Data element")
    endian = ">" if ts.is_little_endian is False else "<"
    group, elem = struct.unpack(endian + "HH", head[:4])
    if (group, elem) != (0x7FE0, 0x0010):
        raise MissingPixelDataError(path, f"no Pixel Data element (next tag is ({group:04X},{elem:04X}))")
    if ts.is_implicit_VR:
        (length,), hdr = struct.unpack(endian + "I", head[4:8]), 8
    else:
        if len(head) < 12:
            raise MissingPixelDataError(path, "truncated Pixel Data element header")
        (length,), hdr = struct.unpack(endian + "I", head[8:12]), 12
    if length == 0xFFFFFFFF:  # encapsulated (compressed): the decoder validates it
        return
    available = size - (fh.tell() - len(head)) - hdr
    rows, cols = header_int(ds, "Rows", 0, path), header_int(ds, "Columns", 0, path)
    frames = header_int(ds, "NumberOfFrames", 1, path)
    expected = rows * cols * frames * header_int(ds, "BitsAllocated", 16, path) // 8
    if available < min(length, expected) or length < expected:
        raise MissingPixelDataError(
            path, f"truncated pixel data ({min(available, length)} of {expected} bytes)"
        )


def index_file(path: PathLike, require_ct: bool = True) -> dict[str, Any]:
    """One index row from the header of `path` (raises a DicomError if unusable)."""
    try:
        st = os.stat(path)
        fh = BoundedReader(path)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise UnreadableDicomError(path, f"cannot open file ({getattr(exc, 'strerror', None) or exc})") from exc
    with fh:
        ds = _dcmread(path, fh=fh, stop_before_pixels=True)
        try:
            check_image(ds, path, require_ct=require_ct)
            _check_pixel_extent(fh, ds, path, st.st_size)
            return _row(ds, path, st)
        except DicomError:
            raise
        except MemoryError:
            raise
        except Exception as exc:  # pydicom converts damaged raw elements lazily
            raise UnreadableDicomError(path, f"damaged header element ({type(exc).__name__}: {exc})") from exc


def _check_uids(ds: Dataset, path: PathLike) -> None:
    for tag in _UID_TAGS:
        value = ds.get(tag, "")
        if value in (None, ""):
            continue
        if not isinstance(value, str) or UID_PATTERN.fullmatch(value) is None:
            raise MalformedIdError(path, f"{tag} {str(value)[:80]!r} is not a UID (ids become case "
                                         "ids and file names: the file is skipped)")


def _row(ds: Dataset, path: PathLike, st: os.stat_result) -> dict[str, Any]:
    _check_uids(ds, path)
    orientation = _floats(ds.get("ImageOrientationPatient"), 6)
    position = _floats(ds.get("ImagePositionPatient"), 3)
    spacing = _floats(ds.get("PixelSpacing"), 2)
    win = read_window_tags(ds)

    def num(key: str, default: float = math.nan) -> float:
        try:
            v = _first(ds.get(key))
            return float(v) if v not in (None, "") else default
        except (TypeError, ValueError):
            return default

    inst = num("InstanceNumber")
    return {
        "path": str(path),
        "study_uid": str(ds.get("StudyInstanceUID", "")),
        "series_uid": str(ds.get("SeriesInstanceUID", "")),
        "sop_uid": str(ds.get("SOPInstanceUID", "")),
        "instance_number": int(inst) if math.isfinite(inst) else -1,
        "position": slice_normal_position(orientation, position),
        "series_description": str(ds.get("SeriesDescription", "")),
        "rows": header_int(ds, "Rows", 0, path),
        "columns": header_int(ds, "Columns", 0, path),
        "pixel_spacing": spacing,
        "slice_thickness": num("SliceThickness"),
        "modality": str(ds.get("Modality", "")),
        "patient_id": str(ds.get("PatientID", "")),
        "series_number": num("SeriesNumber"),
        "image_position": position,
        "image_orientation": orientation,
        "window_level": win.level if win else math.nan,
        "window_width": win.width if win else math.nan,
        "rescale_slope": num("RescaleSlope", 1.0),
        "rescale_intercept": num("RescaleIntercept", 0.0),
        "bits_stored": int(num("BitsStored", 0)),
        "pixel_representation": int(num("PixelRepresentation", 0)),
        "rsna12_fix": needs_rsna12_fix(ds),
        "transfer_syntax": str(transfer_syntax(ds, path)),
        "convolution_kernel": str(_first(ds.get("ConvolutionKernel", "")) or ""),
        "contrast_agent": str(ds.get("ContrastBolusAgent", "")),
        "image_type": "\\".join(str(v) for v in (ds.get("ImageType") or [])),
        "manufacturer": str(ds.get("Manufacturer", "") or "").strip(),
        "file_size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
    }


def _index_or_skip(args: tuple[str, bool]) -> dict[str, Any] | Skipped:
    try:
        return index_file(*args)
    except DicomError as exc:
        return Skipped.from_error(exc)


def scan_folder(
    root: PathLike, pattern: str = "**/*.dcm", workers: int = 0, require_ct: bool = True
) -> tuple[pd.DataFrame, list[Skipped]]:
    """Index every file matching `pattern` under `root` from headers only.

    Returns `(index, skipped)`: one row per usable file (columns `INDEX_COLUMNS`, sorted by
    path) and a `Skipped` entry for every file that is not a usable CT slice.
    `workers > 0` reads headers in that many processes.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory")
    paths = sorted(str(p) for p in root.glob(pattern) if p.is_file())
    jobs = [(p, require_ct) for p in paths]
    rows: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    if workers > 0 and len(jobs) > 1:
        with mp.get_context().Pool(workers) as pool:
            results: Iterable = pool.imap(_index_or_skip, jobs, chunksize=max(1, len(jobs) // (8 * workers)))
            for r in results:
                (skipped if isinstance(r, Skipped) else rows).append(r)
    else:
        for job in jobs:
            r = _index_or_skip(job)
            (skipped if isinstance(r, Skipped) else rows).append(r)
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    return index, skipped


@dataclass
class Series:
    """One ordered series. `spacing` is (slice, row, column) in mm; `positions` are along
    the slice normal (NaN when the files carry no position)."""

    study_uid: str
    series_uid: str
    description: str
    paths: list[str]
    positions: list[float]
    spacing: tuple[float, float, float]
    warnings: list[str] = field(default_factory=list)
    patient_id: str = ""
    sop_uids: list[str] = field(default_factory=list)
    instance_numbers: list[int] = field(default_factory=list)
    series_number: float = math.nan
    rows: int = 0
    columns: int = 0

    def __len__(self) -> int:
        return len(self.paths)


def _order_and_check(g: pd.DataFrame) -> tuple[pd.DataFrame, float, list[str]]:
    warnings: list[str] = []
    pos = g["position"].to_numpy(dtype=float)
    if np.isfinite(pos).all():
        g = g.sort_values(["position", "instance_number", "path"], kind="stable")
    else:
        n_missing = int((~np.isfinite(pos)).sum())
        warnings.append(
            f"{n_missing} of {len(g)} slices lack ImagePositionPatient/ImageOrientationPatient; "
            "ordered by InstanceNumber"
        )
        g = g.sort_values(["instance_number", "path"], kind="stable")
    orients = {o for o in g["image_orientation"] if o is not None}
    if len({tuple(round(v, 3) for v in o) for o in orients}) > 1:
        warnings.append("ImageOrientationPatient differs between slices")
    if g[["rows", "columns"]].drop_duplicates().shape[0] > 1:
        warnings.append("slices have different Rows/Columns")
    pos = g["position"].to_numpy(dtype=float)
    diffs = np.diff(pos[np.isfinite(pos)])
    dz = math.nan
    if diffs.size:
        dup = int((np.abs(diffs) < 1e-3).sum())
        if dup:
            warnings.append(f"{dup} duplicated slice position(s)")
        steps = diffs[np.abs(diffs) >= 1e-3]
        if steps.size:
            dz = float(np.median(steps))
            gaps = steps[steps > 1.5 * dz]
            if gaps.size:
                n_missing = int(sum(round(s / dz) - 1 for s in gaps))
                warnings.append(
                    f"{gaps.size} gap(s) in slice positions (largest {gaps.max():.3g} mm vs "
                    f"spacing {dz:.3g} mm): about {n_missing} missing slice(s)"
                )
            irregular = steps[(steps <= 1.5 * dz) & (np.abs(steps - dz) > 0.1 * dz)]
            if irregular.size:
                warnings.append(f"{irregular.size} irregular slice spacing(s) around {dz:.3g} mm")
    if not math.isfinite(dz):
        st = g["slice_thickness"].to_numpy(dtype=float)
        dz = float(np.nanmedian(st)) if np.isfinite(st).any() else math.nan
    return g, dz, warnings


def assemble_series(index: pd.DataFrame) -> list[Series]:
    """Group an index from `scan_folder` into ordered `Series` (sorted by study, series)."""
    out: list[Series] = []
    if index.empty:
        return out
    for (study, series), g in index.groupby(["study_uid", "series_uid"], sort=True):
        g, dz, warnings = _order_and_check(g)
        first = g.iloc[0]
        ps = first["pixel_spacing"] or (math.nan, math.nan)
        out.append(
            Series(
                study_uid=str(study),
                series_uid=str(series),
                description=str(first["series_description"]),
                paths=g["path"].tolist(),
                positions=g["position"].astype(float).tolist(),
                spacing=(dz, float(ps[0]), float(ps[1])),
                warnings=warnings,
                patient_id=str(first["patient_id"]),
                sop_uids=g["sop_uid"].tolist(),
                instance_numbers=[int(v) for v in g["instance_number"]],
                series_number=float(first["series_number"]),
                rows=int(first["rows"]),
                columns=int(first["columns"]),
            )
        )
    return out
