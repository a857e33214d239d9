"""Data of He et al. 2024: RSNA 2019 ICH slices in HU at the working size, the test split
(1 % of slices stratified by subtype, Sec. 3) and the ground-truth boxes of the test slices.

The RSNA layout is read by `brainlib.data.RSNADataset`, from the embedded phantoms (the
default) or from `data_root`; the files' phantom mark decides whether the run is a phantom
run (`Experiment.use_dataset`), wherever the tree lies.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from brainlib.data import RSNADataset
from brainlib.data.rsna import IMAGE_DIR
from brainlib.data.classes import RSNA_SHORT, RSNA_SUBTYPES
from brainlib.data.roots import data_root_for
from brainlib.data.synth import ensure_phantoms, load_truth
from brainlib.data.synth.truth import TRUTH_DIR
from brainlib.engine import kfold_split
from brainlib.experiment import Experiment
from brainlib.io import read_header
from brainlib.localize import BOX_COLUMNS, load_box_csv, mask_boxes
from brainlib.papers.he2024.cache_space import check_cache_space
from brainlib.paths import cache_dir


@dataclass
class He2024Data:
    """The HU slice dataset at the working size and its train / validation / test split."""

    root: Path
    dataset: Any
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    truth: Any = None             # brainlib.data.synth PhantomTruth (phantom trees only)
    boxes: pd.DataFrame | None = None  # ground-truth boxes of test slices at working size

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.dataset.classes)

    @property
    def test_ids(self) -> list[str]:
        return [self.dataset.ids[i] for i in self.test]

    def subset(self, part: str):
        return self.dataset.subset(getattr(self, part))

    def split_table(self) -> pd.DataFrame:
        """Slices, studies and positives per class in each part."""
        rows = []
        meta = self.dataset.metadata
        for part in ("train", "val", "test"):
            idx = getattr(self, part)
            lab = self.dataset.labels[idx]
            row = {"part": part, "slices": len(idx),
                   "studies": int(meta.iloc[idx]["study_uid"].nunique())}
            row.update({RSNA_SHORT[c]: int(np.nansum(lab[:, i]))
                        for i, c in enumerate(self.classes)})
            rows.append(row)
        return pd.DataFrame(rows)


def _dataset_root(exp: Experiment) -> Path:
    """`data_root`'s RSNA folder, else the embedded phantoms (written once, then reused)."""
    if exp.data_root:
        return Path(data_root_for(exp.data_root, "rsna"))
    return Path(ensure_phantoms("rsna", **exp.settings.phantom(exp.seed)))


def prepare_data(exp: Experiment, workers: int = 0, cache: bool = True) -> He2024Data:
    """RSNA layout (phantoms unless `data_root`) -> HU cache -> stratified split.

    The test split is stratified by subtype (iterative multi-label stratification,
    `brainlib.engine.kfold_split`), grouped by study when `split_unit == "study"`; the
    validation split is carved from the rest the same way. The data source of the run is
    set from the files' phantom mark; skipped files go to the run's skipped.csv.
    `cache=True` first checks that the HU cache fits on its disk (`CacheSpaceError`);
    `cache=False` reads every DICOM on each access instead.
    """
    s = exp.settings
    with exp.timed("data"):
        root = _dataset_root(exp)
        if cache:
            check_cache_space(root / IMAGE_DIR, cache_dir("slices"), s.image_size, s.max_studies)
        ds = RSNADataset(root, view="slice", windows=None, size=s.image_size,
                         max_studies=s.max_studies, seed=exp.seed, cache=cache, workers=workers)
        exp.skipped(ds.skipped)
        if len(ds) == 0:
            raise ValueError(f"{root}: no usable RSNA slice (see skipped.csv)")
        exp.use_dataset(ds, "rsna")
        truth = load_truth(root) if exp.synthetic and (root / TRUTH_DIR).is_dir() else None
        if truth is not None:
            apply_label_rule(exp, ds, truth)
        train, val, test = split(ds, s.test_fraction, s.val_fraction, s.split_unit, exp.seed)
        if s.train_negatives is not None:
            n_all = len(train)
            train = informative_slices(ds.labels, train, s.train_negatives, exp.seed)
            exp.note(f"Training slices: {len(train)} of the training split's {n_all} (every "
                     f"slice with a certain lesion, {s.train_negatives:g} lesion-free slices "
                     f"per such slice drawn at random; setting train_negatives)")
        data = He2024Data(root, ds, train, val, test, truth)
        data.boxes = ground_truth_boxes(exp, data)
    return data


def informative_slices(labels: np.ndarray, rows: np.ndarray, negatives_per_positive: float,
                       seed: int) -> np.ndarray:
    """`rows` cut to every slice with a certain lesion (some label 1) plus about
    `negatives_per_positive` lesion-free slices (every label a certain 0) per such slice, drawn
    without replacement with `seed`; slices whose only lesions are uncertain (NaN) are left
    out (they carry nothing but zeros of other classes). Sorted dataset rows.

    Why: most slices of a phantom (or real) head are lesion-free, so a CPU-sized budget spent
    on all of them sees each lesion few times; the AUC does not depend on the class prior.
    """
    if negatives_per_positive < 0:
        raise ValueError(f"negatives_per_positive must be >= 0, got {negatives_per_positive}")
    rows = np.asarray(rows)
    lab = np.asarray(labels)[rows]
    positive = np.nansum(lab, axis=1) > 0
    negative = ~positive & ~np.isnan(lab).any(axis=1)
    neg_rows = rows[negative]
    n_neg = min(len(neg_rows), int(round(negatives_per_positive * positive.sum())))
    picked = np.random.default_rng(seed).choice(neg_rows, size=n_neg, replace=False)
    return np.sort(np.concatenate([rows[positive], picked])).astype(rows.dtype)


def phantom_data(exp: Experiment, difficulty: float, workers: int = 0) -> He2024Data:
    """The run's phantom set (same size, studies, seed and label rule) at another
    `difficulty`, split the same way; for the difficulty sweep. The run's data source, notes
    and readings are left alone (no boxes: the sweep does not localise)."""
    s = exp.settings
    root = Path(ensure_phantoms("rsna", **{**s.phantom(exp.seed), "difficulty": float(difficulty)}))
    ds = RSNADataset(root, view="slice", windows=None, size=s.image_size,
                     max_studies=s.max_studies, seed=exp.seed, cache=True, workers=workers)
    truth = load_truth(root)
    if truth.label_size == s.image_size:
        ds.labels = truth_labels(ds, truth)
    train, val, test = split(ds, s.test_fraction, s.val_fraction, s.split_unit, exp.seed)
    if s.train_negatives is not None:
        train = informative_slices(ds.labels, train, s.train_negatives, exp.seed)
    return He2024Data(root, ds, train, val, test, truth)


def truth_labels(ds: Any, truth: Any) -> np.ndarray:
    """`ds.labels` with the (slice, class) labels the truth sidecar calls uncertain as NaN."""
    certain = truth.certain_labels(list(ds.classes))
    ids = list(ds.ids)
    missing = set(ids) - set(certain.index)
    if missing:
        raise ValueError(f"{truth.root}: truth sidecar lacks {len(missing)} images, e.g. "
                         f"{sorted(missing)[:3]}")
    rule = certain.loc[ids].to_numpy(np.float32)
    return np.where(np.isnan(rule), np.nan, ds.labels).astype(np.float32)


def apply_label_rule(exp: Experiment, ds: Any, truth: Any) -> int:
    """Set slices whose lesion is too small to see at the working size to NaN (unknown) in
    `ds.labels`, from the phantom tree's truth sidecar (`PhantomTruth.certain_labels`); the
    dataset's CSV keeps its 0/1 labels. Returns the number of (slice, class) labels masked.

    The rule must be the one for this run's working size: a tree whose rule was made for
    another size (or that has none) keeps its CSV labels, and the run says so in a note.
    """
    size = exp.settings.image_size
    if truth.label_size != size:
        exp.note(f"Phantom tree without a label rule at {size} px (has "
                 f"{truth.label_size}): slice labels are the CSV's native-size labels.")
        return 0
    labels = truth_labels(ds, truth)
    n = int((np.isnan(labels) & ~np.isnan(ds.labels)).sum())
    ds.labels = labels
    exp.read("slice labels", truth.params.get("label_rule"),
             f"{n} (slice, class) labels of {len(ds)} slices uncertain (NaN): lesions too "
             f"small to see at the working size; the RSNA CSV keeps 0/1")
    return n


def split(ds: Any, test_fraction: float, val_fraction: float, unit: str, seed: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) dataset rows: a test fold of about `test_fraction`, then a
    validation fold of about `val_fraction` of the rest (whole studies when unit="study")."""
    groups = ds.groups if unit == "study" else None
    n_test = max(2, int(round(1.0 / test_fraction)))
    rest, test = _most_complete_fold(kfold_split(ds.labels, n_test, seed, groups), ds.labels)
    sub_groups = None if groups is None else np.asarray(groups)[rest]
    units = len(rest) if sub_groups is None else len(set(sub_groups))
    n_val = max(2, min(units, int(round(1.0 / val_fraction))))
    tr, va = kfold_split(ds.labels[rest], n_val, seed + 1, sub_groups)[0]
    return rest[tr], rest[va], test


def _most_complete_fold(folds: list, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fold whose test part has positives for the most classes (first one on ties).

    With whole studies as units and few studies, some fold can lack a subtype entirely;
    testing on it would leave that class without an AUC.
    """
    def n_classes(test: np.ndarray) -> int:
        return int(np.sum(np.nansum(labels[test], axis=0) > 0))

    return max(folds, key=lambda f: n_classes(f[1]))


def ground_truth_boxes(exp: Experiment, data: He2024Data) -> pd.DataFrame | None:
    """Boxes of the test slices at the working size, from the phantom masks (one box per
    connected component, found at the native size so no labelled lesion is lost by the
    resize) or from the box CSV of a real data set; None (with a note) without either."""
    ids = data.test_ids
    if data.truth is not None:
        native = _mask_boxes(data.truth, ids)
    elif exp.settings.box_csv:
        native = load_box_csv(exp.settings.box_csv)
        native = native[native["image_id"].isin(set(ids))].copy()
        dims = _native_sizes(data, native["image_id"].unique())
        native["rows"] = native["image_id"].map(lambda i: dims[i][0])
        native["columns"] = native["image_id"].map(lambda i: dims[i][1])
    else:
        exp.note("No ground-truth boxes (real data without box_csv): localisation skipped.")
        return None
    return scale_boxes(native, exp.settings.image_size)


def _mask_boxes(truth: Any, ids: Sequence[str]) -> pd.DataFrame:
    """Native-size boxes of every lesion component in the phantom masks of `ids`."""
    rows = []
    for case_id in ids:
        masks = truth.masks(case_id)  # accepts the RSNA image id
        for cls in RSNA_SUBTYPES:
            m = masks.get(cls)
            if m is not None and np.any(m):
                rows += [(case_id, cls, *box, m.shape[0], m.shape[1]) for box in mask_boxes(m)]
    return pd.DataFrame(rows, columns=list(BOX_COLUMNS) + ["rows", "columns"])


def scale_boxes(boxes: pd.DataFrame, size: int) -> pd.DataFrame:
    """Boxes from native pixels (``rows``, ``columns`` per image) to a size x size image;
    the box grows to whole pixels (floor of the start, ceiling of the end)."""
    out = boxes.copy()
    fx, fy = size / out["columns"].astype(float), size / out["rows"].astype(float)
    out["x0"] = np.floor(out["x0"] * fx).astype(int)
    out["y0"] = np.floor(out["y0"] * fy).astype(int)
    out["x1"] = np.maximum(np.ceil(out["x1"] * fx).astype(int), out["x0"] + 1)
    out["y1"] = np.maximum(np.ceil(out["y1"] * fy).astype(int), out["y0"] + 1)
    return out[list(BOX_COLUMNS)].reset_index(drop=True)


def _native_sizes(data: He2024Data, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    meta = data.dataset.metadata.set_index("case_id")
    out = {}
    for i in ids:
        h = read_header(meta.at[i, "paths"][0])
        out[i] = (int(h.Rows), int(h.Columns))
    return out


def label_proportions(data: He2024Data) -> pd.DataFrame:
    """Percentage of slices positive for each class in the training and test sets (Fig. 5).

    "Training" is everything outside the test split (the paper's 99 %), i.e. train + val.
    """
    lab = data.dataset.labels
    train_idx = np.concatenate([data.train, data.val])
    rows = []
    for i, cls in enumerate(data.classes):
        rows.append({"class": cls,
                     "train_percent": 100.0 * float(np.nanmean(lab[train_idx, i])),
                     "test_percent": 100.0 * float(np.nanmean(lab[data.test, i])),
                     "train_n": int(np.nansum(lab[train_idx, i])),
                     "test_n": int(np.nansum(lab[data.test, i]))})
    return pd.DataFrame(rows)


def pick_cases(data: He2024Data, n: int, positive: bool = True,
               with_boxes: bool = False) -> list[int]:
    """Test rows (dataset indices) to show: positives for a subtype, spread over studies,
    filled up with any test slice when there are fewer than `n`."""
    lab = data.dataset.labels
    ids = data.dataset.ids
    boxed = set(data.boxes["image_id"]) if (with_boxes and data.boxes is not None) else None
    chosen, seen = [], set()
    for i in data.test:
        if positive and not np.nansum(lab[i, 1:]) > 0:
            continue
        if boxed is not None and ids[i] not in boxed:
            continue
        study = data.dataset.metadata.at[int(i), "study_uid"]
        if study in seen:
            continue
        seen.add(study)
        chosen.append(int(i))
        if len(chosen) == n:
            break
    if len(chosen) < n:
        chosen += [int(i) for i in data.test if int(i) not in chosen][: n - len(chosen)]
    return chosen
