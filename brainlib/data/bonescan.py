"""Whole-body bone scintigraphy as `BoneScanDataset` (Lin et al. 2021, Med Phys 48, "Dscint").

Two layouts, both of DICOM NM files (`brainlib.io.nm`):

* folder per class: ``<root>/normal/``, ``metastasis/``, ``arthritis/``, ``thyroid_carcinoma/``
  (any depth below, any file name; ``_phantom_truth`` and hidden entries are ignored; links
  to folders are followed, each real folder once, so a link loop cannot recurse forever);
* a CSV ``path,label[,patient]`` (paths relative to the CSV's folder).

The patient comes from the CSV, else the DICOM ``PatientID``, else the file: ``groups`` are
patients, so folds never split one patient's scans. A two-frame file (anterior + posterior)
is one row; single-view files of one study (``StudyInstanceUID``) are paired into one row; a
study with one view only keeps it and leaves the other channel zero (``metadata.views`` says
which). Items are ``{"x": (2, H, W), "y": one-hot (4,), "id"}``: channel 0 the anterior view,
channel 1 the posterior view mirrored left-right (so both show the patient's left on the same
side), each resampled to the working size by area averaging and divided by its 99th percentile
of non-zero counts, clipped at 3 (counts vary with dose and time; hot lesions stay above 1).
Unreadable files, non-NM files and absurd headers are listed in ``skipped``, never fatal.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from brainlib.data.base import BaseDataset, DatasetError, as_path
from brainlib.data.classes import BONESCAN_CLASSES
from brainlib.data.csvfile import read_csv_bounded
from brainlib.data.names import UnsafeNameError, check_relative
from brainlib.data.synth.marks import is_phantom_manufacturer
from brainlib.io.errors import DicomError, Skipped
from brainlib.io.nm import frame_views, read_nm, read_nm_header

__all__ = ["BoneScanDataset", "normalise_view", "read_scan_csv"]

_IGNORED = ("_phantom_truth",)


def normalise_view(counts: np.ndarray, size: tuple[int, int], clip: float = 3.0) -> torch.Tensor:
    """(H0, W0) counts -> (H, W) float32: area resampling, / 99th percentile of non-zero, clipped."""
    x = torch.from_numpy(np.ascontiguousarray(counts, dtype=np.float32))[None, None]
    x = F.interpolate(x, size=size, mode="area")[0, 0]
    nz = x[x > 0]
    scale = float(torch.quantile(nz, 0.99)) if nz.numel() else 1.0
    return (x / max(scale, 1e-6)).clamp_(0, clip)


def read_scan_csv(csv_path: str | os.PathLike[str], classes: Sequence[str],
                  skipped: list[Skipped] | None = None) -> pd.DataFrame:
    """Rows ``path`` (inside the CSV's folder), ``label``, ``patient`` (None when absent).

    A path that is absolute, holds ``..`` or a NUL byte would leave the CSV's folder: with a
    ``skipped`` list its row is listed there (``MalformedPathError``), without one it raises
    :class:`~brainlib.data.names.UnsafeNameError`. Paths are joined without resolving links.
    """
    p = Path(csv_path)
    df = read_csv_bounded(p, dtype=str, keep_default_na=False)
    if not {"path", "label"} <= set(df.columns):
        raise DatasetError(f"{p}: needs columns path,label[,patient]; has {list(df.columns)}")
    bad = sorted(set(df["label"]) - set(classes))
    if bad:
        raise DatasetError(f"{p}: unknown label(s) {bad}; expected one of {list(classes)}")
    keep = []
    for i, rel in enumerate(df["path"]):
        problem = check_relative(rel)
        if problem and skipped is None:
            raise UnsafeNameError(p, f"line {i + 2}: path {rel[:120]!r}: {problem}")
        if problem:
            skipped.append(Skipped(f"{p} line {i + 2}", "MalformedPathError",
                                   f"path {rel[:120]!r}: {problem}; row not used"))
        keep.append(not problem)
    df = df.iloc[np.flatnonzero(np.array(keep, dtype=bool))].reset_index(drop=True)
    out = pd.DataFrame({"path": [os.path.normpath(p.parent / x) for x in df["path"]],
                        "label": df["label"]})
    out["patient"] = df["patient"].replace("", None) if "patient" in df.columns else None
    return out


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _walk_files(folder: Path, root: Path, others: set[tuple[int, int]]) -> tuple[list[Path], list[Skipped]]:
    """(regular files below `folder`, sorted; what could not be used: entries that are not
    regular files such as broken links, unreadable folders). Hidden and ``_phantom_truth``
    entries are left out.

    Symbolic links to folders are followed (a user may spread a class over disks), but each real
    folder (device, inode) is entered once, so a link loop (a folder linking to its parent)
    ends instead of recursing forever; a link to the root, to one of its ancestors or to another
    class folder (`others`) is not entered (it would walk the whole tree or relabel that class).
    """
    out: list[Path] = []
    errors: list[OSError] = []
    seen: set[tuple[int, int]] = set()
    real_root = Path(os.path.realpath(root))
    for dirpath, dirnames, filenames in os.walk(folder, onerror=errors.append, followlinks=True):
        ident = _identity(dirpath)
        real = Path(os.path.realpath(dirpath))
        if ident is None or ident in seen or ident in others or real_root.is_relative_to(real):
            dirnames[:] = []
            continue
        seen.add(ident)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _IGNORED)
        out += [Path(dirpath) / f for f in filenames if not f.startswith(".")]
    problems = [Skipped(str(f), "NotAFileError", "not a regular file (a broken link?); not read")
                for f in sorted(out) if not f.is_file()]
    problems += [Skipped(str(e.filename), "UnreadableFolderError",
                         f"folder not read ({e.strerror or e}); its files are not used") for e in errors]
    return sorted(f for f in out if f.is_file()), problems


def _folder_rows(root: Path, classes: Sequence[str]) -> tuple[pd.DataFrame, list[Skipped]]:
    """Files of the class folders; a file reached twice (the same device and inode, through a
    link) is used once, under the path that involves no link if there is one (else the first),
    its other paths listed in the skipped list, as are entries that are not regular files."""
    missing = [c for c in classes if not (root / c).is_dir()]
    if len(missing) == len(classes):
        raise DatasetError(f"{root}: no class folder ({', '.join(classes)}) and no CSV given")
    folders = {c: _identity(root / c) for c in classes if c not in missing}
    skipped: list[Skipped] = []
    found: dict[Any, list[tuple[Path, str]]] = {}
    for c in folders:
        others = {v for k, v in folders.items() if k != c and v is not None and v != folders[c]}
        files, problems = _walk_files(root / c, root, others)
        skipped += problems
        for f in files:
            found.setdefault(_identity(f) or str(f), []).append((f, c))
    rows = []
    for paths in found.values():
        direct = [fc for fc in paths if os.path.realpath(fc[0]) == os.path.abspath(fc[0])]
        use = (direct or paths)[0]
        rows.append({"path": str(use[0]), "label": use[1], "patient": None})
        skipped += [Skipped(str(f), "DuplicateFileError", f"the same file as {use[0]} ({use[1]}), "
                            f"reached again through a link (here under {c}); used once")
                    for f, c in paths if (f, c) != use]
    rows.sort(key=lambda r: (list(folders).index(r["label"]), r["path"]))
    return pd.DataFrame(rows, columns=["path", "label", "patient"]), skipped


def _index(files: pd.DataFrame) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Header of every file -> one record per file; failures -> Skipped."""
    records, skipped = [], []
    for f in files.itertuples(index=False):
        try:
            ds = read_nm_header(f.path)
            views = frame_views(ds)
        except DicomError as err:
            skipped.append(Skipped.from_error(err))
            continue
        records.append({"path": f.path, "label": f.label,
                        "patient": f.patient or str(ds.get("PatientID", "") or "") or None,
                        "study": str(ds.get("StudyInstanceUID", "") or "") or f.path,
                        "views": views, "manufacturer": str(ds.get("Manufacturer", "") or "")})
    return records, skipped


def _rows(records: list[dict[str, Any]], root: Path) -> pd.DataFrame:
    """One row per two-view file, or per study of single-view files (paired)."""
    rows, single = [], {}
    for r in records:
        if len(r["views"]) >= 2 or r["views"][0] not in ("anterior", "posterior"):
            rows.append({**r, "paths": (r["path"],)})
        else:
            single.setdefault((r["study"], r["label"]), []).append(r)
    for group in single.values():
        by_view = {g["views"][0]: g for g in group}
        first = group[0]
        paths = tuple(by_view[v]["path"] for v in ("anterior", "posterior") if v in by_view)
        rows.append({**first, "paths": paths, "views": tuple(v for v in ("anterior", "posterior")
                                                             if v in by_view)})
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["case_id", "paths", "label", "patient", "group", "views"])
    rel = [Path(p[0]).relative_to(root).with_suffix("").as_posix() if Path(p[0]).is_relative_to(root)
           else Path(p[0]).stem for p in df["paths"]]
    df["case_id"] = rel
    df["patient"] = [p or c for p, c in zip(df["patient"], df["case_id"])]
    df["group"] = df["patient"]
    return df.sort_values("case_id").reset_index(drop=True)


class BoneScanDataset(BaseDataset):
    """Whole-body bone scans, one row per scan (both views), four classes.

    Args:
        root: folder-per-class root, or a folder holding ``csv``.
        csv: a scan CSV (``path,label[,patient]``); relative to `root` if not absolute.
        size: working (height, width), or an int height with width = height // 2.
        max_scans: keep at most this many scans, whole patients drawn with `seed`.
        transform: applied to ``x``.
    """

    classes = BONESCAN_CLASSES

    def __init__(self, root: str | os.PathLike[str], *, csv: str | os.PathLike[str] | None = None,
                 size: int | tuple[int, int] = (256, 128), max_scans: int | None = None,
                 seed: int = 0, transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        root = as_path(root)
        if csv is not None or root.is_file():
            csv_path = Path(csv) if csv is not None else root
            csv_path = csv_path if csv_path.is_absolute() else root / csv_path
            csv_skipped: list[Skipped] = []
            files, root = read_scan_csv(csv_path, self.classes, csv_skipped), csv_path.parent
        else:
            files, csv_skipped = _folder_rows(root, self.classes)
        records, skipped = _index(files)
        skipped = csv_skipped + skipped
        rows = _limit(_rows(records, root), max_scans, seed)
        self.size = (int(size), int(size) // 2) if isinstance(size, int) else tuple(map(int, size))
        pixels, keep = [], []
        for i, paths in enumerate(rows["paths"]):
            try:
                pixels.append(self._read_views(paths))
                keep.append(i)
            except DicomError as err:
                skipped.append(Skipped.from_error(err))
        rows = rows.iloc[keep].reset_index(drop=True)
        self._x = torch.stack(pixels) if pixels else torch.zeros((0, 2, *self.size))
        labels = np.zeros((len(rows), len(self.classes)), np.float32)
        labels[np.arange(len(rows)), [self.classes.index(c) for c in rows.get("label", [])]] = 1
        marked = [r["path"] for r in records if is_phantom_manufacturer(r["manufacturer"])]
        super().__init__(labels=labels, metadata=rows.drop(columns=["path"], errors="ignore"),
                         skipped=skipped, windows=None, size=None, transform=transform, root=root,
                         marked_files=marked)
        self._row = np.arange(len(rows))

    def _read_views(self, paths: Sequence[str]) -> torch.Tensor:
        """(2, H, W): anterior, mirrored posterior (zeros for a missing view)."""
        out = torch.zeros((2, *self.size))
        for path in paths:
            scan = read_nm(path)
            for j, (frame, view) in enumerate(zip(scan.counts, scan.views)):
                k = {"anterior": 0, "posterior": 1}.get(view, j if j < 2 else None)
                if k is not None:  # unnamed frames: first anterior, second posterior
                    x = normalise_view(frame, self.size)
                    out[k] = torch.flip(x, dims=[1]) if k == 1 else x
        return out

    @property
    def targets(self) -> np.ndarray:
        """Class index per row."""
        return self.labels.argmax(1)

    def load_x(self, index: int) -> torch.Tensor:
        return self._x[self._row[index]].clone()

    def _subset_extra(self, new: BaseDataset, idx: np.ndarray) -> None:
        new._row = self._row[idx]  # type: ignore[attr-defined]


def _limit(rows: pd.DataFrame, max_scans: int | None, seed: int) -> pd.DataFrame:
    """At most `max_scans` rows, whole patients in a seeded order (input order kept)."""
    if not max_scans or len(rows) <= max_scans:
        return rows
    patients = rows["patient"].drop_duplicates().to_numpy()
    keep: list[str] = []
    count = 0
    sizes = rows["patient"].value_counts()
    for p in patients[np.random.default_rng(seed).permutation(len(patients))]:
        if count + sizes[p] <= max_scans:
            keep.append(p)
            count += int(sizes[p])
    return rows[rows["patient"].isin(keep)].reset_index(drop=True)
