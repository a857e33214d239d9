"""CQ500 (Chilamkurthy et al. 2018, qure.ai), read exactly as published.

Layout: ``reads.csv`` (44-column header, three radiologists' reads per patient) and one
folder per patient ``CQ500CT<N> CQ500CT<N>/Unknown Study/CT <description>/CT*.dcm``,
sometimes under batch folders, with several series per patient (plain, thin, bone, contrast).
Labels are the reader majority (as in Wang et al. DrCT2 and Yin et al. 2024); every reader's
labels stay available. One series per patient is chosen deliberately and the choice is
recorded: axial, not bone, not contrast-enhanced, complete, then the thinnest.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from brainlib.data.base import (
    BaseDataset, DatasetError, as_path, phantom_paths, resolve_windows, sample_studies, scan_cached,
)
from brainlib.data.classes import CQ500_CLASSES, CQ500_HEADER, CQ500_READERS
from brainlib.data.csvfile import check_csv, csv_header, read_csv_bounded
from brainlib.data.pixels import PixelStore

READS_NAME = "reads.csv"
_PATIENT_DIR = re.compile(r"^CQ500CT([0-9]{1,9}) CQ500CT([0-9]{1,9})$", re.ASCII)
_NAME = re.compile(r"^CQ500-CT-([0-9]{1,9})$", re.ASCII)
_BONE = re.compile(r"bone", re.I)
_CONTRAST = re.compile(r"contrast|\bpost\b|\bc\+|\+c\b|\bcect\b|\bcontr", re.I)
_NON_CONTRAST = re.compile(r"\bpre[\s_-]*contrast|\bnon[\s_-]*contrast|without contrast|\bplain\b",
                           re.I)
_NOT_AXIAL = re.compile(r"scout|locali[sz]er|topogram|\bmip\b|coronal|sagittal|\bcor\b|\bsag\b",
                        re.I)


def read_reads_csv(path: str | Path, skipped: list[Any] | None = None) -> pd.DataFrame:
    """Parse ``reads.csv`` after checking its header is CQ500's verbatim 44 columns.

    A patient ``name`` not like ``CQ500-CT-<N>`` is malformed: with a ``skipped`` list its row
    is listed there (``MalformedIdError``) and left out; without one it is a DatasetError.
    """
    import brainlib.io as bio

    path = Path(path)
    check_csv(path)
    header = csv_header(path)
    if tuple(header) != CQ500_HEADER:
        diffs = [f"column {i + 1}: {got!r} instead of {want!r}"
                 for i, (got, want) in enumerate(zip(header, CQ500_HEADER)) if got != want]
        if len(header) != len(CQ500_HEADER):
            diffs.insert(0, f"{len(header)} columns instead of {len(CQ500_HEADER)}")
        raise DatasetError(f"{path}: header does not match CQ500 reads.csv ({'; '.join(diffs[:3])})")
    df = read_csv_bounded(path, dtype={"name": str, "Category": str}, encoding="utf-8-sig",
                          keep_default_na=False, na_values=[""])
    df.columns = list(CQ500_HEADER)
    names = df["name"].astype(str)
    badname = ~names.str.fullmatch(_NAME.pattern) | df["name"].isna()
    if badname.any() and skipped is not None:
        skipped.extend(bio.Skipped(f"{path} line {i + 2}", "MalformedIdError",
                                   f"patient name {str(df['name'].iat[i])[:80]!r} is not like 'CQ500-CT-<N>'; row not used")
                       for i in np.flatnonzero(badname.to_numpy()))
        df = df[~badname.to_numpy()].reset_index(drop=True)
    reads = df.columns[2:]
    values = df[reads].apply(pd.to_numeric, errors="coerce")
    bad = ~(values.isin([0, 1]) | values.isna())
    if bad.to_numpy().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise DatasetError(f"{path}: {df['name'].iat[r]} has {df[reads[c]].iat[r]!r} in "
                           f"{reads[c]}, expected 0 or 1")
    df[reads] = values.astype(np.float32)
    badname = ~df["name"].astype(str).str.fullmatch(_NAME.pattern)
    if badname.any():
        raise DatasetError(f"{path}: patient name {df['name'][badname].iat[0]!r} is not "
                           "like 'CQ500-CT-<N>'")
    if df["name"].duplicated().any():
        raise DatasetError(f"{path}: patient {df['name'][df['name'].duplicated()].iat[0]!r} "
                           "appears twice")
    return df


def majority(reader_labels: np.ndarray) -> np.ndarray:
    """Majority over readers (axis 1) of 1/0/NaN votes; NaN when no strict majority."""
    ones = np.nansum(reader_labels == 1, axis=1)
    zeros = np.nansum(reader_labels == 0, axis=1)
    voted = ones + zeros
    return np.where(ones * 2 > voted, 1.0,
                    np.where(zeros * 2 > voted, 0.0, np.nan)).astype(np.float32)


def find_patient_dirs(root: Path) -> tuple[dict[int, Path], list[Path]]:
    """``{N: folder}`` for every ``CQ500CT<N> CQ500CT<N>`` below ``root`` (batch folders allowed).

    Does not descend into patient folders. Returns duplicates (same N twice) separately.
    Batch folders that are symbolic links (a user spreading the set over disks) are followed,
    each real folder once, so a link loop cannot recurse forever.
    """
    found: dict[int, Path] = {}
    duplicates: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, _ in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        keep = []
        for d in dirnames:
            m = _PATIENT_DIR.match(d)
            if m and m.group(1) == m.group(2):
                n = int(m.group(1))
                if n in found:
                    duplicates.append(Path(dirpath) / d)
                else:
                    found[n] = Path(dirpath) / d
            elif not d.startswith("_") and not d.startswith("."):
                keep.append(d)
        dirnames[:] = keep
    return found, duplicates


@dataclass
class SeriesVerdict:
    """Why a candidate series was accepted or rejected."""

    series: Any
    folder: str
    description: str
    thickness: float
    usable: bool
    reason: str

    def summary(self) -> str:
        """One line for ``metadata.candidates`` and skipped reasons: series, verdict, reason."""
        state = "usable" if self.usable else "rejected"
        return f"{self.folder or self.description} [{self.thickness:g} mm, {len(self.series.paths)} slices]: {state} ({self.reason})"


def judge_series(series: Any, index: pd.DataFrame, unreadable: set[str],
                 bad_pixels: set[str], min_slices: int = 3,
                 min_thickness: float = 0.0) -> SeriesVerdict:
    """Classify one series: plain non-contrast axial and complete, or why not."""
    paths = [str(p) for p in series.paths]
    folder = Path(paths[0]).parent
    rows = index[index["path"].astype(str).isin(paths)]
    desc = str(series.description or "")
    text = f"{folder.name} {desc}"
    thickness = float("nan")
    if "slice_thickness" in rows:
        t = pd.to_numeric(rows["slice_thickness"], errors="coerce").dropna()
        if len(t):
            thickness = float(t.median())
    pos = np.sort(np.asarray(series.positions, dtype=np.float64))
    steps = np.diff(pos)
    if not np.isfinite(thickness) and len(steps):
        thickness = float(np.median(np.abs(steps)))
    kernel = " ".join(sorted({str(k) for k in rows.get("convolution_kernel", []) if k}))
    agent = " ".join(sorted({str(a) for a in rows.get("contrast_agent", [])
                             if a and str(a).strip().lower() not in ("none", "no", "0", "nan")}))
    image_type = " ".join(sorted({str(t) for t in rows.get("image_type", []) if t}))
    inconsistent = [w for w in series.warnings if "Rows/Columns" in w or "Orientation" in w]
    verdict = SeriesVerdict(series, folder.name, desc, thickness, False, "")
    if _BONE.search(text) or _BONE.search(kernel):
        verdict.reason = "bone series" + (f" (kernel {kernel})" if _BONE.search(kernel) else "")
    elif agent:
        verdict.reason = f"contrast-enhanced (ContrastBolusAgent {agent!r})"
    elif _CONTRAST.search(text) and not _NON_CONTRAST.search(text):
        verdict.reason = "contrast-enhanced"
    elif _NOT_AXIAL.search(text) or _NOT_AXIAL.search(image_type):
        verdict.reason = "not an axial series"
    elif inconsistent:
        verdict.reason = "inconsistent: " + "; ".join(inconsistent)
    elif len(paths) < min_slices:
        verdict.reason = f"only {len(paths)} slices"
    elif any(str(p).startswith(str(folder) + os.sep) for p in unreadable):
        n = sum(str(p).startswith(str(folder) + os.sep) for p in unreadable)
        verdict.reason = f"incomplete: {n} unreadable file(s)"
    elif bad_pixels & set(paths):
        verdict.reason = f"incomplete: {len(bad_pixels & set(paths))} slice(s) with bad pixel data"
    elif len(steps) and np.any(np.abs(steps) < 1e-3):
        verdict.reason = "incomplete: duplicated positions"
    elif len(steps) and np.any(np.abs(steps) > 1.5 * np.median(np.abs(steps))):
        gap = np.abs(steps) / np.median(np.abs(steps))
        missing = int(np.sum(np.round(gap[gap > 1.5]) - 1))
        verdict.reason = f"incomplete: {max(missing, 1)} missing position(s)"
    elif thickness < min_thickness:
        verdict.reason = f"thinner than min_thickness={min_thickness:g} mm"
    else:
        verdict.usable = True
        verdict.reason = "plain non-contrast axial, complete"
    return verdict


def choose_series(verdicts: list[SeriesVerdict]) -> SeriesVerdict | None:
    """Thinnest usable series; ties broken by more slices, then folder name."""
    usable = [v for v in verdicts if v.usable]
    if not usable:
        return None
    return min(usable, key=lambda v: (v.thickness if np.isfinite(v.thickness) else np.inf,
                                      -len(v.series.paths), v.folder, str(v.series.series_uid)))


class CQ500Dataset(BaseDataset):
    """CQ500 patients as sequences ``(Z, C, S, S)`` of the chosen series, reader-majority labels.

    Args:
        root: folder holding ``reads.csv`` and the patient folders (maybe in batch folders).
        windows: tuple of :class:`brainlib.io.Window` stacked as channels; None = HU.
        size: working size S (None keeps the native size).
        max_studies: keep this many patients, chosen deterministically with ``seed``.
        min_thickness: skip series thinner than this (mm) when choosing (the thinnest
            complete series can be 0.625 mm, ~250 slices; raise this to save memory).
        cache: pixels through :mod:`brainlib.data.cache` (preprocessed once) or read on access.
        seq_len: resample every sequence to this many evenly spaced slices.
        transform: applied to each item's ``x`` (Z, C, S, S).
        workers: processes for header scanning and cache building.
        progress: show the cache-building progress bar.

    Attributes beyond the base: ``reader_labels`` (N, 3, C) float32 per reader
    (``CQ500_READERS``), metadata ``agreement`` (fraction of classes where all readers agree),
    ``series_description``, ``series_dir``, ``slice_thickness``, ``n_slices``,
    ``choice_reason`` and ``candidates`` (every series and its verdict). ``synthetic``
    tells brainlib phantoms (DICOM ``Manufacturer`` "brainlib phantom") from real data,
    judged on the chosen series' files.
    """

    classes = CQ500_CLASSES
    readers = CQ500_READERS

    def __init__(
        self,
        root: str | Path,
        *,
        windows: Sequence[Any] | None | str = "default",
        size: int | None = 256,
        max_studies: int | None = None,
        seed: int = 0,
        min_thickness: float = 0.0,
        cache: bool = True,
        seq_len: int | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        workers: int = 0,
        progress: bool = True,
    ) -> None:
        import brainlib.io as bio

        self.root = as_path(root)
        reads_path = self.root / READS_NAME
        if not reads_path.is_file():
            raise DatasetError(f"{reads_path}: reads.csv not found (is {self.root} a CQ500 root?)")
        skipped: list[Any] = []
        reads = read_reads_csv(reads_path, skipped)
        store = PixelStore(resolve_windows(windows), size, cache=cache, progress=progress)

        dirs, duplicates = find_patient_dirs(self.root)
        for d in duplicates:
            skipped.append(bio.Skipped(str(d), "DuplicatePatientFolder",
                                       "a second folder for the same patient; the first is used"))
        numbers = reads["name"].str.extract(_NAME.pattern)[0].astype(int)
        known = set(numbers)
        for n in sorted(set(dirs) - known):
            skipped.append(bio.Skipped(str(dirs[n]), "MissingLabels", f"no row in {READS_NAME}"))
        has_dir = numbers.isin(list(dirs)).to_numpy()
        for name in reads.loc[~has_dir, "name"]:
            n = int(_NAME.match(name).group(1))
            skipped.append(bio.Skipped(str(self.root / f"CQ500CT{n} CQ500CT{n}"),
                                       "FileNotFoundError", f"{name} is in {READS_NAME} but has no folder"))
        order = np.argsort(numbers.to_numpy()[has_dir], kind="stable")  # by patient number
        reads = reads[has_dir].iloc[order].reset_index(drop=True)
        numbers = numbers[has_dir].iloc[order].reset_index(drop=True)
        if max_studies is not None:
            keep = sample_studies(len(reads), max_studies, seed)
            reads, numbers = reads.iloc[keep].reset_index(drop=True), numbers.iloc[keep].reset_index(drop=True)

        # Headers of every series of every kept patient, then a deliberate choice per patient.
        scans: list[tuple[pd.DataFrame, list[Any], set[str]]] = []
        for n in numbers:
            index, scan_skipped = scan_cached(dirs[int(n)], "**/*.dcm", workers, use_cache=cache)
            skipped.extend(scan_skipped)
            series = bio.assemble_series(index) if len(index) else []
            scans.append((index, series, {str(s.path) for s in scan_skipped}))
        bad_pixels: set[str] = set()
        prepared: set[str] = set()
        while True:
            verdicts = [[judge_series(s, idx, unread, bad_pixels, min_thickness=min_thickness)
                         for s in series] for idx, series, unread in scans]
            chosen = [choose_series(v) for v in verdicts]
            todo = [str(p) for c in chosen if c is not None for p in c.series.paths
                    if str(p) not in prepared]
            if not todo:
                break
            fails = store.prepare(todo, workers=workers)
            prepared.update(todo)
            skipped.extend(fails)
            new_bad = {str(s.path) for s in fails}
            if not new_bad:
                break
            bad_pixels |= new_bad

        rows, keep_rows = [], []
        for i, (name, cand, vs) in enumerate(zip(reads["name"], chosen, verdicts)):
            if cand is None:
                why = "; ".join(v.summary() for v in vs) or "no DICOM series found"
                skipped.append(bio.Skipped(str(dirs[int(numbers[i])]), "NoUsableSeries",
                                           f"{name}: {why}"))
                continue
            keep_rows.append(i)
            s = cand.series
            rows.append({
                "case_id": name, "paths": tuple(str(p) for p in s.paths),
                "category": reads["Category"].iat[i], "study_uid": str(s.study_uid),
                "series_uid": str(s.series_uid), "series_description": cand.description,
                "series_dir": str(Path(str(s.paths[0])).parent), "slice_thickness": cand.thickness,
                "n_slices": len(s.paths), "positions": tuple(float(p) for p in s.positions),
                "spacing": s.spacing, "warnings": tuple(s.warnings),
                "choice_reason": f"{cand.reason}; thinnest of {sum(v.usable for v in vs)} usable",
                "candidates": tuple(v.summary() for v in vs), "slice_labels": None,
                "group": name,
            })
        reads = reads.iloc[keep_rows].reset_index(drop=True)
        reader = np.stack([reads[[f"{r}:{c}" for c in CQ500_CLASSES]].to_numpy(np.float32)
                           for r in CQ500_READERS], axis=1) if len(reads) else \
            np.zeros((0, len(CQ500_READERS), len(CQ500_CLASSES)), np.float32)
        labels = majority(reader)
        meta = pd.DataFrame(rows, columns=[
            "case_id", "paths", "category", "study_uid", "series_uid", "series_description",
            "series_dir", "slice_thickness", "n_slices", "positions", "spacing", "warnings",
            "choice_reason", "candidates", "slice_labels", "group"])
        meta["agreement"] = (np.all(reader == reader[:, :1], axis=1).mean(axis=1)
                             if len(reader) else np.zeros(0))
        self.reader_labels = reader
        self.reads = reads
        marked = frozenset().union(*(phantom_paths(idx) for idx, _, _ in scans))
        super().__init__(labels=labels, metadata=meta, skipped=skipped, sequence=True,
                         transform=transform, seq_len=seq_len, pixel_store=store,
                         root=self.root, marked_files=marked)

    def _subset_extra(self, new: BaseDataset, idx: np.ndarray) -> None:
        new.reader_labels = self.reader_labels[idx]  # type: ignore[attr-defined]
        new.reads = self.reads.iloc[idx].reset_index(drop=True)  # type: ignore[attr-defined]

    def reader_frame(self, reader: str) -> pd.DataFrame:
        """One reader's labels (``"R1"``, ``"R2"`` or ``"R3"``) indexed by case id."""
        k = list(self.readers).index(reader)
        return pd.DataFrame(self.reader_labels[:, k], columns=list(self.classes),
                            index=pd.Index(self.ids, name="case_id"))

    def reader_agreement(self) -> pd.DataFrame:
        """Per class: fraction of unanimous patients and mean pairwise Cohen's kappa."""
        from itertools import combinations

        from sklearn.metrics import cohen_kappa_score

        out = []
        for c, name in enumerate(self.classes):
            votes = self.reader_labels[:, :, c]
            ok = ~np.isnan(votes).any(axis=1)
            v = votes[ok]
            unanimous = float(np.mean(np.all(v == v[:, :1], axis=1))) if len(v) else np.nan
            kappas = []
            for a, b in combinations(range(v.shape[1]), 2):
                if len(v) and len(np.unique(np.r_[v[:, a], v[:, b]])) > 1:
                    kappas.append(cohen_kappa_score(v[:, a], v[:, b]))
            out.append({"class": name, "unanimous": unanimous,
                        "kappa": float(np.mean(kappas)) if kappas else np.nan, "n": int(ok.sum())})
        return pd.DataFrame(out).set_index("class")
