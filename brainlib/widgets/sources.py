"""Where the viewers' pictures come from: a HU array, one DICOM file, or a series folder.

One place says what a folder holds when no CT series can be read from it (counts of files by
kind), and which files were dropped (another modality, unreadable) when a series was read:
`WindowExplorer` and `brainlib.explore` both go through `find_series`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from brainlib.io import Series, Skipped, assemble_series, read_hu, scan_folder

__all__ = ["NoCTSeriesError", "LoadedVolume", "find_series", "load_volume", "load_source", "read_volume",
           "describe_skipped", "survey_folder"]

NO_SERIES = "no readable CT series in this folder"
#: Skipped-list error class -> what a student reads.
_KINDS = {
    "NotCTError": "of another modality",
    "UnreadableDicomError": "unreadable or not DICOM",
    "MissingPixelDataError": "without (complete) pixel data",
    "UnsupportedTransferSyntaxError": "in an encoding no installed decoder reads",
    "UnsupportedPhotometricError": "in colour or palette (not greyscale)",
}
Scan = Callable[[Path], "tuple[pd.DataFrame, list[Skipped]]"]


class NoCTSeriesError(ValueError):
    """A folder holds no CT series brainlib can read; the message says what it does hold."""

    def __init__(self, folder: Path, survey: str, skipped: list[Skipped]) -> None:
        self.folder, self.survey, self.skipped = Path(folder), survey, list(skipped)
        super().__init__(f"{folder}: {NO_SERIES}. Found {survey}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _looks_like_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def describe_skipped(skipped: list[Skipped], examples: int = 3) -> str:
    """One line per kind of dropped file, naming the first files: '1 .dcm file of another
    modality: MR_small.dcm (Modality is 'MR', ...)'. Empty string for an empty list."""
    by_kind: dict[str, list[Skipped]] = {}
    for s in skipped:
        by_kind.setdefault(s.error, []).append(s)
    parts = []
    for error, items in by_kind.items():
        names = "; ".join(f"{Path(s.path).name} ({s.reason})" for s in items[:examples])
        more = f"; and {len(items) - examples} more" if len(items) > examples else ""
        parts.append(f"{_plural(len(items), 'file')} {_KINDS.get(error, error)}: {names}{more}")
    return "; ".join(parts)


def survey_folder(folder: Path, n_slices: int, skipped: list[Skipped], pattern: str = "**/*.dcm") -> str:
    """What a folder holds, counted by kind of file (for an error a student can act on)."""
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    if not files:
        return "an empty folder (no files in it or below it)"
    scanned = {Path(p) for p in Path(folder).glob(pattern) if p.is_file()}
    others = [p for p in files if p not in scanned]
    parts = [f"{_plural(len(files), 'file')}: {_plural(n_slices, 'readable CT slice')}"]
    if skipped:
        parts.append(f"{len(skipped)} dropped ({describe_skipped(skipped)})")
    if others:
        exts = Counter(p.suffix.lower() or "(no extension)" for p in others)
        listing = ", ".join(f"{n} {ext}" for ext, n in exts.most_common())
        dicom_like = sum(_looks_like_dicom(p) for p in others[:200])
        note = (f"; {dicom_like} of them look like DICOM but are not named {pattern.split('/')[-1]}"
                if dicom_like else "")
        parts.append(f"{_plural(len(others), 'other file')} not read ({listing}){note}")
    return "; ".join(parts)


def find_series(folder: str | Path, scan: Scan | None = None) -> tuple[list[Series], list[Skipped]]:
    """Every CT series under `folder` (ordered along the slice normal) and the dropped files.

    `scan` indexes the folder (default `brainlib.io.scan_folder`; `brainlib.explore` passes
    the cached scan). Raises `NoCTSeriesError` saying what the folder holds when no series
    can be read.
    """
    folder = Path(folder)
    index, skipped = (scan or scan_folder)(folder)
    series = assemble_series(index) if len(index) else []
    if not series:
        raise NoCTSeriesError(folder, survey_folder(folder, len(index), skipped), skipped)
    return series, list(skipped)


@dataclass
class LoadedVolume:
    """A HU volume (Z, H, W) float32, what it came from, and the files dropped on the way."""

    volume: np.ndarray
    description: str
    skipped: list[Skipped] = field(default_factory=list)


def read_volume(series: Series) -> np.ndarray:
    """The series' slices in HU, stacked in their position order."""
    return np.stack([read_hu(p) for p in series.paths]).astype(np.float32)


def _array(source: Any) -> np.ndarray:
    try:
        import torch

        if isinstance(source, torch.Tensor):
            source = source.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if not isinstance(source, np.ndarray):
        raise TypeError(f"source must be a HU array, a DICOM file or a series folder, "
                        f"got {type(source).__name__}")
    if source.ndim == 2:
        source = source[None]
    if source.ndim != 3 or min(source.shape) == 0:
        raise ValueError(f"source array must be 2-D (H, W) or 3-D (Z, H, W), got shape {source.shape}")
    if not np.issubdtype(source.dtype, np.number):
        raise TypeError(f"source array must be numeric HU, got dtype {source.dtype}")
    return source.astype(np.float32, copy=False)


def load_volume(source: Any) -> LoadedVolume:
    """A `LoadedVolume` from a 2-D/3-D array, a DICOM file or a folder holding one series.

    A folder with several series is refused with their names, so the student can pick one.
    """
    if not isinstance(source, (str, Path)):
        vol = _array(source)
        return LoadedVolume(vol, f"array of {vol.shape[0]} slice(s), {vol.shape[1]} x {vol.shape[2]}")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such DICOM file or folder")
    if path.is_file():
        return LoadedVolume(read_hu(path)[None], f"DICOM file {path}")
    series, skipped = find_series(path)
    if len(series) > 1:
        names = ", ".join(f"{s.description or s.series_uid} ({len(s.paths)} slices)" for s in series)
        raise ValueError(f"{path}: holds {len(series)} series ({names}); pass one series folder")
    vol = read_volume(series[0])
    return LoadedVolume(vol, f"series {series[0].description or series[0].series_uid} from {path} "
                             f"({len(vol)} slices)", skipped)


def load_source(source: Any) -> np.ndarray:
    """A HU volume (Z, H, W) float32 from a 2-D/3-D array, a DICOM file or a series folder."""
    return load_volume(source).volume
