"""RSNA 2019 Intracranial Hemorrhage Detection, read exactly as published.

Layout: ``stage_2_train.csv`` (header ``ID,Label``, six rows per image
``ID_<sop>_<subtype>``, some duplicated) and ``stage_2_train/ID_<sop>.dcm``. The CSV has no
study grouping, so studies and series come from the DICOM headers (Study/Series UID,
ordered by position along the slice normal). Used by He et al. 2024 (slice view, six labels)
and Wang et al. DrCT (series view, key-slice evaluation from per-slice labels).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from brainlib.data.base import (
    BaseDataset, DatasetError, as_path, phantom_paths, resolve_windows, sample_studies, scan_cached,
)
from brainlib.data.classes import RSNA_CLASSES
from brainlib.data.csvfile import read_csv_bounded
from brainlib.data.names import UnsafeNameError, name_problem
from brainlib.data.pixels import PixelStore

CSV_NAME = "stage_2_train.csv"
IMAGE_DIR = "stage_2_train"
#: Image ids: published as ``ID_`` + 9 hex digits; any ASCII letters and digits are accepted
#: (nothing that can navigate a file system). An id that does not match is never made a path.
IMAGE_ID = re.compile(r"ID_[0-9A-Za-z]{1,64}", re.ASCII)


def read_rsna_csv(path: str | Path, skipped: list[Any] | None = None) -> pd.DataFrame:
    """Parse ``stage_2_train.csv`` into one row per image id, columns ``RSNA_CLASSES``.

    Splits each ID on its last underscore; exact duplicate rows are dropped; a duplicated
    (image, subtype) with different labels is a :class:`DatasetError`. Missing subtypes are NaN.
    An image id not matching :data:`IMAGE_ID` (``ID_x/../../y``, a NUL byte, ...) is
    malformed: with a ``skipped`` list its rows are listed there (``MalformedIdError``) and
    left out; without one the first is an :class:`~brainlib.data.names.UnsafeNameError`.
    """
    import brainlib.io as bio

    path = Path(path)
    raw = read_csv_bounded(path, dtype={"ID": str}, keep_default_na=False, na_values=[""])
    if list(raw.columns) != ["ID", "Label"]:
        raise DatasetError(f"{path}: header is {list(raw.columns)}, expected ['ID', 'Label']")
    if raw["ID"].isna().any():
        raise DatasetError(f"{path}: empty ID on data line {int(raw['ID'].isna().idxmax()) + 2}")
    parts = raw["ID"].str.rpartition("_")
    malformed = [(i, problem) for i, image in enumerate(parts[0])
                 if (problem := name_problem(image, IMAGE_ID)) and image != ""]
    if malformed:
        if skipped is None:
            i, problem = malformed[0]
            raise UnsafeNameError(path, f"line {i + 2}: image id of {raw['ID'].iat[i]!r} {problem}")
        skipped.extend(bio.Skipped(f"{path} line {i + 2}", "MalformedIdError",
                                   f"image id of {raw['ID'].iat[i]!r} {problem}; row not used")
                       for i, problem in malformed)
        keep = np.ones(len(raw), bool)
        keep[[i for i, _ in malformed]] = False
        raw, parts = raw[keep].reset_index(drop=True), parts[keep].reset_index(drop=True)
    df = pd.DataFrame({"image": parts[0], "subtype": parts[2], "Label": raw["Label"]})
    bad = ~df["subtype"].isin(RSNA_CLASSES) | (df["image"] == "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(f"{path}: ID {raw['ID'].iat[i]!r} (line {i + 2}) does not end in one of "
                           f"{list(RSNA_CLASSES)}")
    label = pd.to_numeric(df["Label"], errors="coerce")
    bad = ~label.isin([0, 1])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(f"{path}: ID {raw['ID'].iat[i]!r} has label {raw['Label'].iat[i]!r}, "
                           "expected 0 or 1")
    df["Label"] = label.astype(np.float32)
    df = df.drop_duplicates()
    conflict = df.duplicated(subset=["image", "subtype"], keep=False)
    if conflict.any():
        first = df[conflict].iloc[0]
        raise DatasetError(f"{path}: conflicting duplicate labels for ID "
                           f"{first['image']}_{first['subtype']}")
    wide = df.pivot(index="image", columns="subtype", values="Label")
    wide = wide.reindex(columns=list(RSNA_CLASSES)).astype(np.float32)
    wide.columns.name = None
    return wide.sort_index()


def _series_max(slice_labels: np.ndarray) -> np.ndarray:
    """Series label = max over slices per class; NaN only if every slice is NaN."""
    pos = np.any(slice_labels == 1, axis=0)
    neg = np.any(slice_labels == 0, axis=0)
    return np.where(pos, 1.0, np.where(neg, 0.0, np.nan)).astype(np.float32)


class RSNADataset(BaseDataset):
    """RSNA ICH in a slice view (one image per item) or a series view (one sequence per item).

    Args:
        root: folder holding ``stage_2_train.csv`` and ``stage_2_train/``.
        view: ``"slice"`` (x = (C,S,S), labels per image) or ``"series"`` (x = (Z,C,S,S),
            labels = max over slices, per-slice labels in ``metadata['slice_labels']``).
        windows: tuple of :class:`brainlib.io.Window` stacked as channels; None = HU (1 channel).
        size: working size S in pixels (None keeps the native size).
        max_studies: keep this many whole studies, chosen deterministically with ``seed``.
        cache: pixels through :mod:`brainlib.data.cache` (preprocessed once) or read on access.
        seq_len: series view only, resample every sequence to this many slices.
        workers: processes for header scanning and cache building.
        transform: applied to each item's ``x``.
        progress: show the cache-building progress bar.

    Images listed in the CSV but missing on disk, unreadable files and files without labels
    are listed in ``skipped`` with the reason; nothing is dropped silently. ``synthetic``
    tells brainlib phantoms (DICOM ``Manufacturer`` "brainlib phantom") from real data.
    """

    classes = RSNA_CLASSES

    def __init__(
        self,
        root: str | Path,
        view: Literal["slice", "series"] = "slice",
        *,
        windows: Sequence[Any] | None | str = "default",
        size: int | None = 256,
        max_studies: int | None = None,
        seed: int = 0,
        cache: bool = True,
        seq_len: int | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        workers: int = 0,
        progress: bool = True,
    ) -> None:
        import brainlib.io as bio

        if view not in ("slice", "series"):
            raise ValueError(f"view must be 'slice' or 'series', not {view!r}")
        self.root = as_path(root)
        self.view = view
        csv_path = self.root / CSV_NAME
        image_dir = self.root / IMAGE_DIR
        if not csv_path.is_file():
            raise DatasetError(f"{csv_path}: label CSV not found (is {self.root} an RSNA root?)")
        if not image_dir.is_dir():
            raise DatasetError(f"{image_dir}: image folder not found")
        skipped: list[Any] = []
        table = read_rsna_csv(csv_path, skipped)
        store = PixelStore(resolve_windows(windows), size, cache=cache, progress=progress)

        # Headers of every DICOM on disk (one scan; unreadable files come back as Skipped).
        index, scan_skipped = scan_cached(image_dir, "*.dcm", workers, use_cache=cache)
        skipped.extend(scan_skipped)
        index = index.copy()
        index["image"] = [Path(p).stem for p in index["path"]]
        on_disk = set(index["image"]) | {Path(s.path).stem for s in scan_skipped}
        for image in table.index[~table.index.isin(list(on_disk))]:
            skipped.append(bio.Skipped(str(image_dir / f"{image}.dcm"), "FileNotFoundError",
                                       f"listed in {CSV_NAME} but not on disk"))
        unlabelled = ~index["image"].isin(table.index)
        for p in index.loc[unlabelled, "path"]:
            skipped.append(bio.Skipped(str(p), "MissingLabels", f"no rows in {CSV_NAME}"))
        index = index[~unlabelled]

        if max_studies is not None:
            studies = np.array(sorted(index["study_uid"].astype(str).unique()))
            keep = set(studies[sample_studies(len(studies), max_studies, seed)])
            index = index[index["study_uid"].astype(str).isin(keep)]

        # Decode every kept file once into the cache; pixel failures join `skipped`.
        pixel_fail = store.prepare([str(p) for p in index["path"]], workers=workers)
        skipped.extend(pixel_fail)
        failed = {str(s.path) for s in pixel_fail}
        index = index[~index["path"].astype(str).isin(failed)].reset_index(drop=True)

        series_list = bio.assemble_series(index) if len(index) else []
        if view == "slice":
            labels, metadata = self._slice_rows(index, series_list, table)
        else:
            labels, metadata = self._series_rows(index, series_list, table)
        super().__init__(labels=labels, metadata=metadata, skipped=skipped,
                         sequence=(view == "series"), transform=transform, seq_len=seq_len,
                         pixel_store=store, root=self.root, marked_files=phantom_paths(index))

    @staticmethod
    def _slice_rows(index: pd.DataFrame, series_list: list[Any],
                    table: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """One row per image, ordered by study, series, position."""
        cols = ["case_id", "paths", "study_uid", "series_uid", "slice_index", "n_slices",
                "position", "instance_number", "group"]
        if not series_list:
            return np.zeros((0, len(RSNA_CLASSES)), np.float32), pd.DataFrame(columns=cols)
        paths = [str(p) for s in series_list for p in s.paths]
        meta = pd.DataFrame({
            "paths": [(p,) for p in paths],
            "study_uid": [str(s.study_uid) for s in series_list for _ in s.paths],
            "series_uid": [str(s.series_uid) for s in series_list for _ in s.paths],
            "slice_index": [k for s in series_list for k in range(len(s.paths))],
            "n_slices": [len(s.paths) for s in series_list for _ in s.paths],
            "position": [float(v) for s in series_list for v in s.positions],
        })
        by_path = index.assign(path=index["path"].astype(str)).set_index("path")
        meta["case_id"] = by_path.loc[paths, "image"].to_numpy()
        meta["instance_number"] = by_path.loc[paths, "instance_number"].to_numpy()
        meta["group"] = meta["study_uid"]
        meta = meta[cols]
        labels = table.loc[meta["case_id"]].to_numpy(np.float32)
        return labels, meta

    @staticmethod
    def _series_rows(index: pd.DataFrame, series_list: list[Any],
                     table: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """One row per series; per-slice labels kept for key-slice evaluation."""
        image_of = dict(zip(index["path"].astype(str), index["image"]))
        rows, labels = [], []
        for s in series_list:
            images = [image_of[str(p)] for p in s.paths]
            sl = table.loc[images].to_numpy(np.float32)
            labels.append(_series_max(sl))
            rows.append({
                "case_id": str(s.series_uid), "paths": tuple(str(p) for p in s.paths),
                "study_uid": str(s.study_uid), "series_uid": str(s.series_uid),
                "n_slices": len(s.paths), "slice_ids": tuple(images), "slice_labels": sl,
                "positions": tuple(float(v) for v in s.positions), "spacing": s.spacing,
                "warnings": tuple(s.warnings), "group": str(s.study_uid),
            })
        meta = pd.DataFrame(rows, columns=["case_id", "paths", "study_uid", "series_uid",
                                           "n_slices", "slice_ids", "slice_labels", "positions",
                                           "spacing", "warnings", "group"])
        lab = np.stack(labels) if labels else np.zeros((0, len(RSNA_CLASSES)), np.float32)
        return lab, meta
