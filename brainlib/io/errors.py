"""Typed errors for DICOM reading.

Every message starts with the offending path and then gives the reason, so a skipped-file
list or a traceback says at once which file failed and why. Folder readers catch
`DicomError` (and only it) to collect failures into a skipped list.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from brainlib._atomic import atomic_path


class DicomError(Exception):
    """Root of brainlib's DICOM errors; `path` and `reason` are kept as attributes."""

    def __init__(self, path: str | PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnreadableDicomError(DicomError):
    """The file is empty, not DICOM, or its header cannot be parsed."""


class MissingPixelDataError(DicomError):
    """The file has no Pixel Data element, or it is shorter than its header promises."""


class UnsupportedTransferSyntaxError(DicomError):
    """The pixel data are encoded in a transfer syntax no installed decoder can read."""


class UnsupportedPhotometricError(DicomError):
    """The image is not single-sample greyscale (MONOCHROME1/2), e.g. RGB or palette."""


class NotCTError(DicomError):
    """The file is not a CT image, so its values are not Hounsfield units."""


class MalformedIdError(DicomError):
    """A UID in the header that is not an id (path separators, NUL, ``..``): ids become case
    ids and file names downstream, so such a file is skipped, never followed."""


class ImplausibleImageError(DicomError):
    """The header (or a compressed frame) promises a size beyond brainlib's limits
    (:mod:`brainlib.io.limits`): refused before anything is allocated."""


__all__ = [
    "DicomError",
    "UnreadableDicomError",
    "MissingPixelDataError",
    "UnsupportedTransferSyntaxError",
    "UnsupportedPhotometricError",
    "NotCTError",
    "ImplausibleImageError",
    "MalformedIdError",
    "Skipped",
    "write_skipped",
]


@dataclass(frozen=True)
class Skipped:
    """One input a folder reader could not use: its path, the error class name and the reason."""

    path: str
    error: str
    reason: str

    @classmethod
    def from_error(cls, exc: DicomError) -> "Skipped":
        """The skipped-list entry for a caught :class:`DicomError`."""
        return cls(path=exc.path, error=type(exc).__name__, reason=exc.reason)


def write_skipped(skipped: Iterable[Skipped], csv_path: str | PathLike[str]) -> Path:
    """Write the skipped list as CSV (`path,error,reason`), atomically; an empty list still
    writes the header so a run's outputs always show that nothing was dropped. Cells that
    could start a spreadsheet formula (a file named ``=cmd().dcm``) are neutralised."""
    from brainlib.report.tables import neutralise_cell  # lazy: the report is not an io dependency

    with atomic_path(csv_path, fsync=False) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "error", "reason"])
            for item in skipped:
                writer.writerow([neutralise_cell(str(v)) for v in (item.path, item.error, item.reason)])
    return Path(csv_path)
