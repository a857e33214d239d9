"""Pipeline of He et al. 2024 (Heliyon 10:e30270): window-setting optimisation, multiscale
attention fusion and CAM localisation of intracranial haemorrhage on RSNA 2019.

The notebook `notebooks/he2024_ich_window_multiscale.ipynb` is a parameters cell plus calls
into this module, in this order::

    exp = setup(profile, data_root, out_dir, device, seed, epochs, image_size, ...)
    data = prepare_data(exp)                  # RSNA layout (phantoms by default), HU cache, split
    fig5_proportions(exp, data); save_table2(exp)
    results = train_variants(exp, data)       # every model through brainlib.engine.fit
    fig6_roc(exp, results); table3_ablation(exp, results); table4_inputs(exp, results)
    fig7_windows(exp, data, results)
    loc = localization(exp, data, results); fig8_cam(exp, data, results, loc)
    paired = paired_comparisons(exp, results, loc)
    compare_claims(exp, data, results, loc, paired); finish(exp)

Every number beside a paper number goes through `brainlib.claims` with a bootstrap CI;
comparisons (full > ablations, three windows > one window > HU, trained > fixed, fusion
improves localisation) are paired tests on the same test cases. Every setting that differs
from the paper's (`PROFILES["full"]`) is a deviation in the manifest and in every caption.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from brainlib.data.classes import RSNA_CLASSES, RSNA_SHORT, RSNA_SUBTYPES
from brainlib.data.roots import data_root_for
from brainlib.profiles import resolve_profile

PAPER = "he2024"

# The paper's settings ("full") and the CPU-sized profiles. Keys absent from the paper are
# stated as choices in `SETTING_NOTES`.
PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "epochs": 20, "batch_size": 8, "lr": 1e-3, "lr_step": 5, "lr_gamma": 0.1,
        "optimizer": "adam", "image_size": 512, "backbone_width": 1.0, "max_studies": None,
        "test_fraction": 0.01, "split_unit": "slice", "val_fraction": 0.1,
        "max_steps_per_epoch": None,
    },
    "quick": {
        "epochs": 8, "batch_size": 16, "lr_step": 6, "image_size": 64, "backbone_width": 0.125,
        "max_studies": None, "test_fraction": 0.25, "split_unit": "study", "val_fraction": 0.2,
    },
    "smoke": {
        "epochs": 1, "batch_size": 16, "lr_step": 1, "image_size": 32,
        "backbone_width": 0.0625, "max_studies": None, "test_fraction": 0.34,
        "split_unit": "study", "val_fraction": 0.25, "max_steps_per_epoch": 4,
    },
}
SETTING_NOTES: dict[str, str] = {
    "image_size": "the paper gives no resize; 512 is RSNA's native size",
    "val_fraction": "the paper's validation split size is not stated; 10 % of training data",
    "split_unit": "the paper samples 1 % of slices; quick/smoke split whole studies "
                  "(no study in both train and test)",
}
# Embedded phantoms (RSNA layout) per profile; not paper settings, recorded as the data source.
PHANTOMS: dict[str, dict[str, Any]] = {
    "full": {"n_studies": 200, "size": 512, "difficulty": 0.5},
    "quick": {"n_studies": 24, "size": 128, "difficulty": 0.5},
    "smoke": {"n_studies": 6, "size": 64, "difficulty": 0.5},
}
# Analysis and runtime sizes (not paper settings). `threads`: torch CPU threads (None = torch's
# default); one thread is faster for the small CPU profiles on a shared machine.
# `channels_last`: memory format for training (about 1.8x faster on CPU here, same maths).
ANALYSIS: dict[str, dict[str, Any]] = {
    "full": {"n_boot": 1000, "min_positives": 5, "n_fig_cases": 5, "threads": None,
             "channels_last": True},
    "quick": {"n_boot": 200, "min_positives": 5, "n_fig_cases": 4, "threads": 1,
              "channels_last": True},
    "smoke": {"n_boot": 50, "min_positives": 2, "n_fig_cases": 2, "threads": 1,
              "channels_last": True},
}

# Table 3 / Table 4 rows: (model name, label as in the paper).
TABLE3_MODELS: tuple[tuple[str, str], ...] = (
    ("he2024_full", "Our method"),
    ("he2024_no_window", "w/o module window"),
    ("he2024_no_fusion", "w/o multiple feature fusion"),
)
# (model, input, initialisation, weight training, claim key)
TABLE4_ROWS: tuple[tuple[str, str, str, str, str], ...] = (
    ("he2024_t4_hu", "HU", "-", "-", "hu/fixed"),
    ("he2024_t4_brain_fixed", "HU", "Brain window", "-", "brain_window/fixed"),
    ("he2024_t4_three_fixed", "HU", "Three windows", "-", "three_windows/fixed"),
    ("he2024_t4_random_learn", "HU", "-", "yes", "hu/trained"),
    ("he2024_t4_brain_learn", "HU", "Brain window", "yes", "brain_window/trained"),
    ("he2024_full", "HU", "Three windows", "yes", "three_windows/trained"),
)
# Table 4's last row is the full model (same configuration): trained once.
TRAINED_VARIANTS: tuple[str, ...] = tuple(dict.fromkeys(
    [m for m, _ in TABLE3_MODELS] + [r[0] for r in TABLE4_ROWS]))
# Ye et al. 2019 readers quoted in Table 3 (values read from the claims registry, not re-run).
RADIOLOGISTS: dict[str, str] = {
    "junior_radiologist": "Junior radiologist [Ye 2019] (reported, not re-run)",
    "senior_radiologist": "Senior radiologist [Ye 2019] (reported, not re-run)",
}
# Claim keys of the model columns in brainlib/claims/he2024.yaml.
_CLAIM_MODEL = {"he2024_full": "full", "he2024_no_window": "no_window",
                "he2024_no_fusion": "no_fusion"}
CAM_THRESHOLD = 0.2   # 20 % of the maximum (section 2.1.3)
IOU_THRESHOLD = 0.5   # TP when IoU > 0.5 (section 2.2.2)


# --------------------------------------------------------------------------- experiment
@dataclass
class Experiment:
    """Resolved settings, the open `brainlib.report.Run`, and where the data come from."""

    profile: str
    settings: dict[str, Any]
    deviations: list[str]
    run: Any
    device: torch.device
    seed: int
    data_root: str | None
    box_csv: str | None
    phantom: dict[str, Any] | None
    analysis: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    auc_cache: dict[tuple[str, str | None], tuple[float, float, float]] = field(
        default_factory=dict, repr=False)

    def summary(self) -> pd.DataFrame:
        """Settings with the paper's value beside each (what the manifest records)."""
        paper = PROFILES["full"]
        rows = [{"setting": k, "used": _fmt(v), "paper": _fmt(paper.get(k)),
                 "note": SETTING_NOTES.get(k, "")} for k, v in self.settings.items()]
        return pd.DataFrame(rows)


def _fmt(v: Any) -> str:
    return "all" if v is None else str(v)


def setup(
    profile: str = "quick",
    data_root: str | None = None,
    out_dir: str | Path = "outputs/he2024",
    device: str = "auto",
    seed: int = 0,
    epochs: int | None = None,
    image_size: int | None = None,
    batch_size: int | None = None,
    max_studies: int | None = None,
    box_csv: str | None = None,
) -> Experiment:
    """Resolve the profile, record deviations from the paper, open the run in `out_dir`."""
    from brainlib import report
    from brainlib.engine import resolve_device
    from brainlib.models.backbones import vgg16_features

    overrides = {"epochs": epochs, "image_size": image_size, "batch_size": batch_size,
                 "max_studies": max_studies}
    settings, deviations = resolve_profile(PROFILES, profile, overrides)
    if settings["image_size"] % 16:
        raise ValueError(f"image_size must be a multiple of 16, got {settings['image_size']}")
    dev = resolve_device(device)
    if ANALYSIS[profile]["threads"]:
        torch.set_num_threads(ANALYSIS[profile]["threads"])
    width = settings["backbone_width"]
    if width != 1.0 and os.environ.get("BRAINLIB_VGG16_WEIGHTS"):
        raise ValueError(f"BRAINLIB_VGG16_WEIGHTS is set but profile {profile!r} uses a VGG-16 "
                         f"of width {width}; ImageNet weights need the full profile (width 1)")
    _, init = vgg16_features(width)  # cheap; says how the backbone will be initialised
    notes = [init.note, "Table 4's last row (three windows, trained) is the full model, "
             "trained once and reported in both tables."]
    if not init.pretrained:
        deviations = deviations + ["backbone: random initialisation (no local ImageNet VGG-16 "
                                   "weights file; set BRAINLIB_VGG16_WEIGHTS)"]
    phantom = None if data_root else dict(PHANTOMS[profile], seed=seed)
    source = report.data_source(data_root, "rsna", **({"phantom": phantom} if phantom else {}))
    params = {"profile": profile, "data_root": data_root, "out_dir": str(out_dir),
              "device": device, "seed": seed, "epochs": epochs, "image_size": image_size,
              "batch_size": batch_size, "max_studies": max_studies, "box_csv": box_csv,
              "settings": settings, "analysis": ANALYSIS[profile]}
    run = report.start_run(PAPER, params, out_dir, source, deviations, notes)
    return Experiment(profile, settings, list(deviations), run, dev, int(seed), data_root,
                      box_csv, phantom, dict(ANALYSIS[profile]), notes)


# --------------------------------------------------------------------------- data
@dataclass
class He2024Data:
    """The HU slice dataset at the working size and its train / validation / test split."""

    root: Path
    dataset: Any
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    truth: Any = None             # brainlib.data.synth PhantomTruth (phantoms only)
    boxes: pd.DataFrame | None = None  # ground-truth boxes of test slices at working size

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.dataset.classes)

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


def prepare_data(exp: Experiment, workers: int = 0) -> He2024Data:
    """RSNA layout (phantoms unless `data_root`) -> HU cache -> stratified split.

    The test split is stratified by subtype (iterative multi-label stratification,
    `brainlib.engine.kfold_split`), grouped by study when `split_unit == "study"`; the
    validation split is carved from the rest the same way.
    """
    from brainlib.data import RSNADataset
    from brainlib.engine import kfold_split

    t0 = time.perf_counter()
    s = exp.settings
    truth = None
    if exp.data_root:
        root = data_root_for(exp.data_root, "rsna")
    else:
        from brainlib.data.synth import ensure_phantoms, load_truth

        ph = exp.phantom or {}
        root = Path(ensure_phantoms("rsna", n_studies=ph["n_studies"], seed=ph["seed"],
                                    size=ph["size"], difficulty=ph["difficulty"]))
        truth = load_truth(root)
    ds = RSNADataset(root, view="slice", windows=None, size=s["image_size"],
                     max_studies=s["max_studies"], seed=exp.seed, cache=True, workers=workers)
    if ds.skipped:
        exp.run.add_skipped(ds.skipped)
    if len(ds) == 0:
        raise ValueError(f"{root}: no usable RSNA slice (see skipped.csv)")
    groups = ds.groups if s["split_unit"] == "study" else None
    n_test = max(2, int(round(1.0 / s["test_fraction"])))
    rest, test = _most_complete_fold(kfold_split(ds.labels, n_test, exp.seed, groups), ds.labels)
    sub_groups = None if groups is None else np.asarray(groups)[rest]
    units = len(rest) if sub_groups is None else len(set(sub_groups))
    n_val = max(2, min(units, int(round(1.0 / s["val_fraction"]))))
    tr, va = kfold_split(ds.labels[rest], n_val, exp.seed + 1, sub_groups)[0]
    data = He2024Data(root, ds, rest[tr], rest[va], test, truth)
    data.boxes = _ground_truth_boxes(exp, data)
    exp.timings["data"] = time.perf_counter() - t0
    exp.run.save_table(data.split_table(), "split",
                       "Slices, studies and positive slices per class in each part")
    return data


def _most_complete_fold(folds: list, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fold whose test part has positives for the most classes (first one on ties).

    With whole studies as units and few studies, some fold can lack a subtype entirely;
    testing on it would leave that class without an AUC.
    """
    def n_classes(test: np.ndarray) -> int:
        return int(np.sum(np.nansum(labels[test], axis=0) > 0))

    return max(folds, key=lambda f: n_classes(f[1]))


def _ground_truth_boxes(exp: Experiment, data: He2024Data) -> pd.DataFrame | None:
    """Boxes of the test slices at the working size, from the phantom masks (one box per
    connected component, found at the native size so no labelled lesion is lost by the
    resize) or from the box CSV of a real data set; coordinates scaled to the working size."""
    from brainlib.localize import BOX_COLUMNS, load_box_csv, mask_boxes

    ids = [data.dataset.ids[i] for i in data.test]
    if data.truth is not None:
        rows = []
        for case_id in ids:
            masks = data.truth.masks(case_id)  # accepts the RSNA image id
            for cls in RSNA_SUBTYPES:
                m = masks.get(cls)
                if m is not None and np.any(m):
                    rows += [(case_id, cls, *box, m.shape[0], m.shape[1])
                             for box in mask_boxes(m)]
        native = pd.DataFrame(rows, columns=list(BOX_COLUMNS) + ["rows", "columns"])
    elif exp.box_csv:
        native = load_box_csv(exp.box_csv)
        native = native[native["image_id"].isin(set(ids))].copy()
        dims = _native_sizes(data, native["image_id"].unique())
        native["rows"] = native["image_id"].map(lambda i: dims[i][0])
        native["columns"] = native["image_id"].map(lambda i: dims[i][1])
    else:
        exp.run.add_note("No ground-truth boxes (real data without box_csv): localisation "
                         "skipped.")
        return None
    return scale_boxes(native, exp.settings["image_size"])


def scale_boxes(boxes: pd.DataFrame, size: int) -> pd.DataFrame:
    """Boxes from native pixels (``rows``, ``columns`` per image) to a size x size image;
    the box grows to whole pixels (floor of the start, ceiling of the end)."""
    from brainlib.localize import BOX_COLUMNS

    out = boxes.copy()
    fx, fy = size / out["columns"].astype(float), size / out["rows"].astype(float)
    out["x0"] = np.floor(out["x0"] * fx).astype(int)
    out["y0"] = np.floor(out["y0"] * fy).astype(int)
    out["x1"] = np.maximum(np.ceil(out["x1"] * fx).astype(int), out["x0"] + 1)
    out["y1"] = np.maximum(np.ceil(out["y1"] * fy).astype(int), out["y0"] + 1)
    return out[list(BOX_COLUMNS)].reset_index(drop=True)


def _native_sizes(data: He2024Data, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    from brainlib.io import read_header

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


def fig5_proportions(exp: Experiment, data: He2024Data):
    """Fig. 5: subtype proportions in the training and test sets (table + bar chart)."""
    import matplotlib.pyplot as plt

    table = label_proportions(data)
    exp.run.save_table(table.round(3), "fig5_proportions",
                       "Fig. 5: percentage of slices with each label, training (train + "
                       "validation) and test sets")
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["train_percent"], 0.4, label="training")
    ax.bar(x + 0.2, table["test_percent"], 0.4, label="test")
    ax.set_xticks(x, [RSNA_SHORT[c] for c in table["class"]])
    ax.set_ylabel("slices (%)")
    ax.set_title("Fig. 5: label proportions")
    ax.legend()
    fig.tight_layout()
    exp.run.save_figure(fig, "fig5_proportions")
    return fig


def table2_window_init() -> pd.DataFrame:
    """Table 2: W and b of eq. 3.1 for the three presets (U = 255, eps = 1).

    Rows ``W``/``b``: the exact (float64) values of eq. 3.1; ``W (module)``/``b (module)``: the
    float32 parameters a freshly initialised `WindowModule` holds (what the paper printed).
    """
    from brainlib.io import BRAIN, SOFT_TISSUE, SUBDURAL, sigmoid_window_params
    from brainlib.layers.window_module import WindowModule

    presets = (("Brain window", BRAIN), ("Subdural window", SUBDURAL),
               ("Soft tissue window", SOFT_TISSUE))
    module_w, module_b = WindowModule([w for _, w in presets]).params()
    cols = {}
    for k, (name, w) in enumerate(presets):
        W, b = sigmoid_window_params(w.level, w.width, upper=255.0, eps=1.0)
        cols[name] = {"level": w.level, "width": w.width, "W": W, "b": b,
                      "W (module)": module_w[k], "b (module)": module_b[k]}
    return pd.DataFrame(cols).rename_axis("parameter").reset_index()


def save_table2(exp: Experiment) -> pd.DataFrame:
    table = table2_window_init()
    exp.run.save_table(table, "table2",
                       "Table 2: initial W and b of the window module from eq. 3.1 "
                       "(U = 255, eps = 1), exact (float64) and as the module's float32 "
                       "parameters; independent of data and training. The paper prints the "
                       "brain window's b as +5.5373344; eq. 3.1 gives -5.5373344")
    return table


# --------------------------------------------------------------------------- training
@dataclass
class VariantResult:
    """A trained variant: best-on-validation model, history and test predictions."""

    name: str
    model: torch.nn.Module
    history: pd.DataFrame
    best_epoch: int
    ids: list[str]
    y_true: np.ndarray
    y_score: np.ndarray
    seconds: float
    groups: np.ndarray | None = None  # test study per case (bootstrap resampling unit)

    def auc_table(self) -> pd.DataFrame:
        from brainlib.metrics.classification import roc_auc_per_class

        return roc_auc_per_class(self.y_true, self.y_score, "multilabel", list(RSNA_CLASSES))


def _bce(outputs: torch.Tensor, batch: dict) -> torch.Tensor:
    """Binary cross-entropy over the six sigmoid outputs; unknown (NaN) labels masked."""
    y = batch["y"]
    known = ~torch.isnan(y)
    loss = F.binary_cross_entropy_with_logits(outputs, torch.nan_to_num(y), reduction="none")
    return (loss * known).sum() / known.sum().clamp(min=1)


def _mean_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean AUC over the classes where it is defined (NaN when none is)."""
    from brainlib.metrics.classification import roc_auc_per_class

    aucs = roc_auc_per_class(y_true, y_score, "multilabel", list(RSNA_CLASSES))["auc"]
    return float(aucs.mean()) if aucs.notna().any() else float("nan")


def _val_metric(pred: Any) -> dict[str, float]:
    return {"mean_auc": _mean_auc(pred.y_true, pred.y_score)}


def train_variant(exp: Experiment, data: He2024Data, name: str, loaders: dict | None = None
                  ) -> VariantResult:
    """Train one registered variant with the engine's `fit` and predict the test split."""
    from brainlib.engine import fit, predict, seed_everything
    from brainlib.models import create_model

    s = exp.settings
    loaders = loaders or make_loaders(exp, data)
    t0 = time.perf_counter()
    seed_everything(exp.seed)
    model = create_model(name, width=s["backbone_width"])
    val_lab = data.dataset.labels[data.val]
    has_auc = any(np.nanmin(val_lab[:, i]) != np.nanmax(val_lab[:, i])
                  for i in range(val_lab.shape[1]))
    result = fit(
        model, loaders["train"], loaders["val"], losses=[("bce", _bce, 1.0)],
        epochs=s["epochs"], lr=s["lr"], optimizer=s["optimizer"], lr_step=s["lr_step"],
        lr_gamma=s["lr_gamma"], monitor="mean_auc" if has_auc else "val_loss",
        mode="max" if has_auc else "min", metric_fn=_val_metric if has_auc else None,
        device=exp.device, seed=exp.seed, progress=False,
        max_steps_per_epoch=s["max_steps_per_epoch"],
        channels_last=exp.analysis["channels_last"],
    )
    pred = predict(result.model, loaders["test"], activation="sigmoid", device=exp.device,
                   channels_last=exp.analysis["channels_last"])
    result.model.cpu().eval()
    test = data.subset("test")
    if list(pred.ids) != test.ids:
        raise RuntimeError(f"{name}: test predictions are not in the test split's order")
    return VariantResult(name, result.model, result.history, result.best_epoch,
                         list(pred.ids), np.asarray(pred.y_true), np.asarray(pred.y_score),
                         time.perf_counter() - t0, np.asarray(test.groups))


def make_loaders(exp: Experiment, data: He2024Data) -> dict:
    from brainlib.engine import make_loader

    bs = exp.settings["batch_size"]
    return {"train": make_loader(data.subset("train"), bs, shuffle=True, seed=exp.seed),
            "val": make_loader(data.subset("val"), bs),
            "test": make_loader(data.subset("test"), bs)}


def train_variants(exp: Experiment, data: He2024Data,
                   names: Sequence[str] = TRAINED_VARIANTS) -> dict[str, VariantResult]:
    """Train every variant (same data, same seed, same loaders); save per-case predictions."""
    loaders = make_loaders(exp, data)
    results = {}
    t0 = time.perf_counter()
    for name in names:
        results[name] = train_variant(exp, data, name, loaders)
    exp.timings["training"] = time.perf_counter() - t0
    exp.run.save_predictions(predictions_frame(results), "test_predictions")
    hist = pd.concat([r.history.assign(model=n) for n, r in results.items()], ignore_index=True)
    exp.run.save_table(hist, "training_history", "Per-epoch training history of every model "
                       "(validation mean AUC selects the tested epoch)")
    return results


def training_summary(results: dict[str, VariantResult]) -> pd.DataFrame:
    """One row per trained model: description, tested epoch, time, test mean AUC."""
    from brainlib.models.he2024 import HE2024_VARIANTS

    return pd.DataFrame([{
        "model": n, "description": HE2024_VARIANTS[n][0], "epochs": len(r.history),
        "tested epoch": r.best_epoch, "seconds": round(r.seconds, 1),
        "test mean AUC": round(_mean_fn(r.y_true)(r.y_true, r.y_score), 4),
    } for n, r in results.items()])


def predictions_frame(results: dict[str, VariantResult]) -> pd.DataFrame:
    """Per-case test predictions: ``case_id, label_<class>, score_<class>, model``."""
    frames = []
    for name, r in results.items():
        df = pd.DataFrame({"case_id": r.ids})
        for i, c in enumerate(RSNA_CLASSES):
            df[f"label_{c}"] = r.y_true[:, i]
        for i, c in enumerate(RSNA_CLASSES):
            df[f"score_{c}"] = r.y_score[:, i]
        df["model"] = name
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- statistics
def _defined(y: np.ndarray) -> bool:
    y = y[~np.isnan(y)]
    return 0 < y.sum() < len(y)


def _auc_fn(cls: str | None, classes: Sequence[str] | None = None):
    """metric(y_true, y_score) -> AUC of one class, or the mean over `classes` (NaN when any
    of them is undefined on a resample, so every replicate averages the same classes)."""
    from sklearn.metrics import roc_auc_score

    names = [cls] if cls is not None else list(classes or RSNA_CLASSES)
    idx = [list(RSNA_CLASSES).index(c) for c in names]

    def metric(y_true: np.ndarray, y_score: np.ndarray) -> float:
        values = []
        for k in idx:
            y, sc = y_true[:, k], y_score[:, k]
            keep = ~np.isnan(y)
            if not _defined(y[keep]):
                return float("nan")
            values.append(float(roc_auc_score(y[keep], sc[keep])))
        return float(np.mean(values))

    return metric


def _mean_fn(y_true: np.ndarray):
    """The six-class mean over the classes whose AUC is defined on these test cases."""
    return _auc_fn(None, [c for k, c in enumerate(RSNA_CLASSES) if _defined(y_true[:, k])])


def auc_with_ci(exp: Experiment, r: VariantResult, cls: str | None) -> tuple[float, float, float]:
    """AUC of one class (or the six-class mean) with a 95 % percentile bootstrap CI over
    test studies (slices of one study are resampled together)."""
    from brainlib.metrics import bootstrap_ci

    key = (r.name, cls)
    if key in exp.auc_cache:
        return exp.auc_cache[key]
    metric = _auc_fn(cls) if cls is not None else _mean_fn(r.y_true)
    value = metric(r.y_true, r.y_score)
    out = (value, float("nan"), float("nan"))
    if not math.isnan(value):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ci = bootstrap_ci(metric, r.y_true, r.y_score, n_boot=exp.analysis["n_boot"],
                                  seed=exp.seed, groups=r.groups)
            out = (ci.estimate, ci.low, ci.high)
        except ValueError:  # undefined on every resample
            pass
    exp.auc_cache[key] = out
    return out


def _cell(v: float, lo: float, hi: float) -> str:
    if math.isnan(v):
        return "n/a"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


# --------------------------------------------------------------------------- tables
def table3_ablation(exp: Experiment, results: dict[str, VariantResult]) -> pd.DataFrame:
    """Table 3: AUC per class and their average for the full model and its two ablations,
    with 95 % bootstrap CIs, beside the paper's values and the radiologists' (quoted)."""
    from brainlib.claims import load_claims

    paper = _claim_values(load_claims(PAPER))
    rows = []
    for cls in list(RSNA_CLASSES) + ["average"]:
        row = {"class": RSNA_SHORT.get(cls, "Average")}
        for name, label in TABLE3_MODELS:
            v, lo, hi = auc_with_ci(exp, results[name], None if cls == "average" else cls)
            row[f"{label} (here)"] = _cell(v, lo, hi)
            row[f"{label} (paper)"] = paper.get(f"table3/{_CLAIM_MODEL[name]}/{cls}/auc")
        for key, label in RADIOLOGISTS.items():
            row[label] = paper.get(f"table3/{key}/{cls}/auc")
        rows.append(row)
    table = pd.DataFrame(rows)
    exp.run.save_table(table, "table3",
                       "Table 3: test AUC [95 % bootstrap CI] per class and average; "
                       "radiologists' columns quoted from Ye et al. 2019 as reported by the "
                       "paper, not re-run")
    return table


def table4_inputs(exp: Experiment, results: dict[str, VariantResult]) -> pd.DataFrame:
    """Table 4: the six input settings of the window module (mean AUC over the six labels;
    the paper's 0.973 for three trained windows equals Table 3's average)."""
    from brainlib.claims import load_claims

    paper = _claim_values(load_claims(PAPER))
    rows = []
    for name, inp, init, trained, key in TABLE4_ROWS:
        v, lo, hi = auc_with_ci(exp, results[name], None)
        va, la, ha = auc_with_ci(exp, results[name], "any")
        rows.append({"input": inp, "initialisation": init, "weight training": trained,
                     "model": name, "mean AUC (here)": _cell(v, lo, hi),
                     "any AUC (here)": _cell(va, la, ha),
                     "AUC (paper)": paper.get(f"table4/{key}/auc")})
    table = pd.DataFrame(rows)
    exp.run.save_table(table, "table4",
                       "Table 4: window-module input settings, test AUC [95 % bootstrap CI] "
                       "(mean over the six labels, and 'any'); every model has multiscale "
                       "fusion; the last row is the full model")
    return table


def _claim_values(claims: Any) -> dict[str, float]:
    """claim id -> printed value, from whatever `load_claims` returns."""
    if isinstance(claims, pd.DataFrame):
        df = claims
    else:
        df = pd.DataFrame([c if isinstance(c, dict) else vars(c) for c in claims])
    df = df[df["value"].notna()] if "value" in df.columns else df
    out = {}
    for cid, v in zip(df["id"] if "id" in df.columns else df["claim_id"], df["value"]):
        try:
            out[str(cid)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


# --------------------------------------------------------------------------- figures
def fig6_roc(exp: Experiment, results: dict[str, VariantResult], name: str = "he2024_full"):
    """Fig. 6: ROC curve and AUC of each class (any + five subtypes) for the full model."""
    from brainlib import plots

    r = results[name]
    fig = plots.roc_curves(r.y_true, r.y_score, [RSNA_SHORT[c] for c in RSNA_CLASSES],
                           title="Fig. 6: ROC, full model (test set)")
    exp.run.save_figure(fig, "fig6_roc")
    return fig


def learned_windows(results: dict[str, VariantResult]) -> pd.DataFrame:
    """(level, width) of every window module before and after training (Fig. 7 legend)."""
    rows = []
    for name, r in results.items():
        wm = getattr(r.model, "window_module", None)
        if wm is None:
            continue
        W, b = wm.params()
        init = wm.initial_windows or [None] * wm.channels
        for k, (win, w0) in enumerate(zip(wm.learned_windows(), init)):
            rows.append({"model": name, "channel": k, "trainable": wm.trainable,
                         "initial_level": None if w0 is None else w0.level,
                         "initial_width": None if w0 is None else w0.width,
                         "learned_level": win.level, "learned_width": win.width,
                         "W": W[k], "b": b[k]})
    return pd.DataFrame(rows)


def _pick_cases(data: He2024Data, n: int, positive: bool = True,
                with_boxes: bool = False) -> list[int]:
    """Test rows (dataset indices) to show: positives for a subtype, spread over studies."""
    lab = data.dataset.labels
    ids = data.dataset.ids
    boxed = set(data.boxes["image_id"]) if (with_boxes and data.boxes is not None) else None
    chosen, seen = [], set()
    for i in data.test:
        sub = lab[i, 1:]
        if positive and not np.nansum(sub) > 0:
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
    if len(chosen) < n:  # fill from any test slice
        chosen += [int(i) for i in data.test if int(i) not in chosen][: n - len(chosen)]
    return chosen


def fig7_windows(exp: Experiment, data: He2024Data, results: dict[str, VariantResult]):
    """Fig. 7: the same slices at the preset windows and at the learned windows."""
    import matplotlib.pyplot as plt
    from brainlib.io import window

    table = learned_windows(results)
    exp.run.save_table(table, "fig7_learned_windows",
                       "Fig. 7: window (level, width) of each window module before and after "
                       "training, from the trained W, b by inverting eq. 3.1")
    wm = results["he2024_full"].model.window_module
    presets = list(wm.initial_windows)
    learned = wm.learned_windows()
    cases = _pick_cases(data, exp.analysis["n_fig_cases"])
    ncol = 2 * len(presets)
    fig, axes = plt.subplots(len(cases), ncol, figsize=(1.9 * ncol, 1.9 * len(cases)),
                             squeeze=False)
    for r, i in enumerate(cases):
        hu = data.dataset[i]["x"][0].numpy()
        for k, (p, l) in enumerate(zip(presets, learned)):
            for j, (w, tag) in enumerate(((p, "preset"), (l, "learned"))):
                ax = axes[r, 2 * k + j]
                ax.imshow(window(hu, w.level, abs(w.width)), cmap="gray", vmin=0, vmax=1)
                ax.set_axis_off()
                if r == 0:
                    ax.set_title(f"{tag}\nL {w.level:.0f} W {w.width:.0f}", fontsize=7)
    fig.suptitle("Fig. 7: preset vs learned windows (full model)", fontsize=9)
    fig.tight_layout()
    exp.run.save_figure(fig, "fig7_windows")
    return fig


# --------------------------------------------------------------------------- localisation
def cam_detections(exp: Experiment, data: He2024Data, model: torch.nn.Module,
                   keep: Sequence[str] = (), batch_size: int = 32
                   ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One CAM box per test slice and subtype, scored by the predicted probability.

    Returns the detections and the full-size CAMs of the slices in `keep` (for Fig. 8; the
    CAMs of a whole test set would not fit in memory at the paper's size).
    """
    from brainlib.localize import cam_box, class_activation_maps
    from brainlib.models.he2024 import CAM_CLASSIFIER, CAM_TARGET

    rows, cams_by_id = [], {}
    test = data.subset("test")
    model = model.to(exp.device).eval()
    for start in range(0, len(test), batch_size):
        items = [test[j] for j in range(start, min(start + batch_size, len(test)))]
        x = torch.stack([it["x"] for it in items]).to(exp.device)
        cams, logits = class_activation_maps(model, x, CAM_TARGET, CAM_CLASSIFIER)
        probs = 1.0 / (1.0 + np.exp(-logits))
        for b, it in enumerate(items):
            if it["id"] in keep:
                cams_by_id[it["id"]] = cams[b]
            for k, cls in enumerate(RSNA_CLASSES):
                if cls == "any":
                    continue
                box = cam_box(cams[b, k], CAM_THRESHOLD)
                if box is None:
                    continue
                rows.append((it["id"], cls, *box, float(probs[b, k])))
    model.cpu()
    det = pd.DataFrame(rows, columns=["image_id", "class", "x0", "y0", "x1", "y1", "score"])
    return det, cams_by_id


@dataclass
class Localization:
    ap: dict[str, pd.DataFrame]            # model -> AP table (per subtype + mAP)
    detections: dict[str, pd.DataFrame]
    cams: dict[str, dict[str, np.ndarray]]  # model -> case id -> CAMs of the Fig. 8 slices
    boot: dict[str, np.ndarray]            # model -> mAP on the same bootstrap resamples
    table: pd.DataFrame | None = None      # the saved AP table (both models)
    fig_cases: list[int] = field(default_factory=list)  # dataset rows shown in Fig. 8

    def map_ci(self, name: str) -> tuple[float, float, float]:
        value = float(self.ap[name].set_index("class").at["mAP", "ap"])
        return (value,) + _percentile_ci(self.boot[name])  # type: ignore[return-value]


def localization(exp: Experiment, data: He2024Data, results: dict[str, VariantResult],
                 models: Sequence[str] = ("he2024_full", "he2024_no_fusion")) -> Localization | None:
    """AP per subtype and mAP of the CAM boxes at IoU > 0.5, with and without fusion."""
    from brainlib.localize import localization_ap

    if data.boxes is None:
        return None
    t0 = time.perf_counter()
    aps, dets, cams = {}, {}, {}
    mp = exp.analysis["min_positives"]
    size = exp.settings["image_size"]
    fig_cases = _pick_cases(data, exp.analysis["n_fig_cases"], with_boxes=True)
    keep = {data.dataset.ids[i] for i in fig_cases}
    for name in models:
        det, cam = cam_detections(exp, data, results[name].model, keep)
        aps[name] = localization_ap(det, data.boxes, RSNA_SUBTYPES, IOU_THRESHOLD, mp)
        dets[name], cams[name] = det, cam
    ids = [data.dataset.ids[i] for i in data.test]
    boot = map_bootstrap(dets, data.boxes, ids, aps[models[0]], exp.analysis["n_boot"],
                         exp.seed)
    loc = Localization(aps, dets, cams, boot, fig_cases=fig_cases)
    rows = []
    for name in models:
        t = aps[name].set_index("class")
        for cls in list(RSNA_SUBTYPES) + ["mAP"]:
            v, lo, hi = loc.map_ci(name) if cls == "mAP" else (t.at[cls, "ap"], None, None)
            rows.append({"model": name, "class": RSNA_SHORT.get(cls, cls),
                         "n_ground_truth": t.at[cls, "n_ground_truth"],
                         "n_tp": t.at[cls, "n_tp"], "ap": v, "ci_low": lo, "ci_high": hi,
                         "note": t.at[cls, "note"]})
    table = pd.DataFrame(rows)
    exp.run.save_table(table, "ap_localization",
                       f"Weakly supervised localisation: AP of CAM boxes (threshold "
                       f"{CAM_THRESHOLD:.0%} of max, largest component) at IoU > {IOU_THRESHOLD} "
                       f"per subtype and mAP [95 % bootstrap CI over test slices], with and "
                       f"without multiscale fusion; subtypes with fewer than {mp} ground-truth "
                       f"boxes are flagged and left out of the mAP. The CAM comes from a "
                       f"{size // 16}x{size // 16} feature map ({size} px input / 16)")
    exp.timings["localization"] = time.perf_counter() - t0
    loc.table = table
    return loc


def ap_table(loc: Localization | None) -> pd.DataFrame:
    """The AP table of `localization` (empty, with the reason, when there was no ground truth)."""
    if loc is None or loc.table is None:
        return pd.DataFrame({"note": ["no ground-truth boxes: localisation not evaluated"]})
    return loc.table


def _percentile_ci(stats: np.ndarray) -> tuple[float, float]:
    stats = stats[~np.isnan(stats)]
    if len(stats) < 10:
        return float("nan"), float("nan")
    return float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


def map_bootstrap(dets: dict[str, pd.DataFrame], gt: pd.DataFrame, ids: Sequence[str],
                  reference: pd.DataFrame, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """mAP of each model on the same bootstrap resamples of the test slices.

    Matching is per slice, so a slice drawn twice contributes its detections (with their TP
    flags) and its ground-truth boxes twice: each resample re-weights the matched detections
    instead of re-matching. Classes left out of the reference mAP stay out.
    """
    from brainlib.localize import average_precision, match_detections

    keep = [c for c in RSNA_SUBTYPES
            if not np.isnan(reference.set_index("class").at[c, "ap"])]
    pos = {cid: i for i, cid in enumerate(ids)}
    gt_counts = np.zeros((len(ids), len(keep)))
    for cid, cls in zip(gt["image_id"], gt["class"]):
        if cls in keep and cid in pos:
            gt_counts[pos[cid], keep.index(cls)] += 1
    per_class = {}
    for name, d in dets.items():
        m = match_detections(d, gt, IOU_THRESHOLD)
        per_class[name] = [(m.loc[m["class"] == c, "score"].to_numpy(),
                            m.loc[m["class"] == c, "tp"].to_numpy(),
                            m.loc[m["class"] == c, "image_id"].map(pos).to_numpy())
                           for c in keep]
    rng = np.random.default_rng(seed)
    out = {n: np.full(n_boot, np.nan) for n in dets}
    for b in range(n_boot if keep else 0):
        weight = np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids))
        n_gt = weight @ gt_counts
        for name, arrays in per_class.items():
            aps = []
            for j, (score, tp, img) in enumerate(arrays):
                if n_gt[j] == 0:
                    continue
                rep = np.repeat(np.arange(len(score)), weight[img])
                aps.append(average_precision(score[rep], tp[rep], int(n_gt[j]))
                           if len(rep) else 0.0)
            out[name][b] = float(np.mean(aps)) if aps else np.nan
    return out


def fig8_cam(exp: Experiment, data: He2024Data, results: dict[str, VariantResult],
             loc: Localization | None):
    """Fig. 8: ground-truth box, CAM without fusion, CAM with fusion, on the same slices."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from brainlib.io import BRAIN, window
    from brainlib.localize import cam_box

    if loc is None:
        return None
    cases = loc.fig_cases
    fig, axes = plt.subplots(len(cases), 3, figsize=(6.3, 2.1 * len(cases)), squeeze=False)
    gt = data.boxes
    for r, i in enumerate(cases):
        item = data.dataset[i]
        cid = item["id"]
        hu = item["x"][0].numpy()
        img = window(hu, BRAIN.level, BRAIN.width)
        g = gt[gt["image_id"] == cid]
        y = np.nan_to_num(item["y"].numpy())
        if len(g):
            cls = g["class"].iloc[0]
            tag = RSNA_SHORT[cls]
        elif y[1:].any():
            cls = RSNA_SUBTYPES[int(np.argmax(y[1:]))]
            tag = f"{RSNA_SHORT[cls]} (no box at this size)"
        else:
            cls, tag = "any", "no haemorrhage"
        k = list(RSNA_CLASSES).index(cls)
        panels = (("ground truth", None), ("CAM w/o fusion", "he2024_no_fusion"),
                  ("CAM with fusion", "he2024_full"))
        for c, (title, model) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            if model is None:
                for _, b in g[g["class"] == cls].iterrows():
                    ax.add_patch(Rectangle((b.x0 - 0.5, b.y0 - 0.5), b.x1 - b.x0, b.y1 - b.y0,
                                           fill=False, ec="lime", lw=1.2))
            else:
                cam = loc.cams[model][cid][k]
                ax.imshow(cam, cmap="jet", alpha=0.4)
                box = cam_box(cam, CAM_THRESHOLD)
                if box is not None:
                    ax.add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), box[2] - box[0],
                                           box[3] - box[1], fill=False, ec="red", lw=1.2))
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title, fontsize=8)
        axes[r, 0].text(1, 4, tag, color="yellow", fontsize=7)
    fig.suptitle("Fig. 8: CAM localisation (test slices)", fontsize=9)
    fig.tight_layout()
    exp.run.save_figure(fig, "fig8_cam")
    return fig


def learned_window_presets(results: dict[str, VariantResult],
                           model: str = "he2024_full") -> dict[str, tuple[float, float]]:
    """The trained window module's (level, width) per channel, as WindowExplorer presets."""
    table = learned_windows(results)
    rows = table[table["model"] == model]
    return {f"learned {int(r.channel) + 1}": (float(r.learned_level), float(r.learned_width))
            for r in rows.itertuples()}


def cam_example(data: He2024Data, loc: Localization | None, case: int = 0,
                model: str = "he2024_full") -> dict[str, Any] | None:
    """Inputs of `brainlib.widgets.CamViewer` for one Fig. 8 slice: HU image, CAM, true box.

    The CAM is the one of the slice's boxed subtype (else its first positive subtype, else
    `any`), exactly as Fig. 8 shows it; None when localisation was not run.
    """
    from brainlib.io import BRAIN

    if loc is None or not loc.fig_cases:
        return None
    i = loc.fig_cases[min(case, len(loc.fig_cases) - 1)]
    item = data.dataset[i]
    cid = item["id"]
    gt = data.boxes[data.boxes["image_id"] == cid] if data.boxes is not None else pd.DataFrame()
    y = np.nan_to_num(item["y"].numpy())
    if len(gt):
        cls = gt["class"].iloc[0]
    elif y[1:].any():
        cls = RSNA_SUBTYPES[int(np.argmax(y[1:]))]
    else:
        cls = "any"
    box = None
    if len(gt):
        b = gt[gt["class"] == cls].iloc[0]
        box = (int(b.x0), int(b.y0), int(b.x1), int(b.y1))
    cam = loc.cams[model][cid][list(RSNA_CLASSES).index(cls)]
    return {"image": item["x"][0].numpy(), "cam": cam, "box": box, "window": BRAIN}


# --------------------------------------------------------------------------- comparisons
# (claim id, model a, model b, class or None for the six-class mean)
COMPARISONS: tuple[tuple[str, str, str, str | None], ...] = (
    ("cmp/table3/full_vs_no_window/average_auc", "he2024_full", "he2024_no_window", None),
    ("cmp/table3/full_vs_no_window/any_auc", "he2024_full", "he2024_no_window", "any"),
    ("cmp/table3/full_vs_no_fusion/average_auc", "he2024_full", "he2024_no_fusion", None),
    ("cmp/table3/full_vs_no_fusion/any_auc", "he2024_full", "he2024_no_fusion", "any"),
    ("cmp/table4/three_vs_brain/fixed_auc", "he2024_t4_three_fixed", "he2024_t4_brain_fixed", None),
    ("cmp/table4/brain_vs_hu/fixed_auc", "he2024_t4_brain_fixed", "he2024_t4_hu", None),
    ("cmp/table4/three_vs_brain/trained_auc", "he2024_full", "he2024_t4_brain_learn", None),
    ("cmp/table4/brain_vs_hu/trained_auc", "he2024_t4_brain_learn", "he2024_t4_random_learn", None),
    ("cmp/table4/trained_vs_fixed/three_windows_auc", "he2024_full", "he2024_t4_three_fixed", None),
    ("cmp/table4/trained_vs_fixed/brain_window_auc", "he2024_t4_brain_learn",
     "he2024_t4_brain_fixed", None),
    ("cmp/table4/trained_vs_fixed/hu_auc", "he2024_t4_random_learn", "he2024_t4_hu", None),
)


def paired_comparisons(exp: Experiment, results: dict[str, VariantResult],
                       loc: Localization | None = None) -> pd.DataFrame:
    """Each comparative claim as a paired test on the same test slices.

    Single-class AUC ('any'): DeLong's test for correlated ROC curves; six-class mean AUC:
    paired bootstrap of the difference. The one-sided question is "a > b"; the table gives
    the difference, its 95 % CI and the two-sided p-value.
    """
    from brainlib.metrics import delong, paired_bootstrap

    rows = []
    for cid, a, b, cls in COMPARISONS:
        ra, rb = results[a], results[b]
        _check_same_cases(ra, rb)
        test = "DeLong" if cls is not None else "paired bootstrap (studies resampled)"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                if cls is not None:
                    k = list(RSNA_CLASSES).index(cls)
                    if not _defined(ra.y_true[:, k]):
                        raise ValueError(f"{cls}: one label value in the test set")
                    res = delong(ra.y_true[:, k], ra.y_score[:, k], rb.y_score[:, k])
                else:
                    res = paired_bootstrap(_mean_fn(ra.y_true), ra.y_true, ra.y_score,
                                           rb.y_score, n_boot=exp.analysis["n_boot"],
                                           seed=exp.seed, groups=ra.groups)
            diff, lo, hi, p = _quad(res)
        except ValueError as err:  # AUC undefined on these cases
            diff = lo = hi = p = float("nan")
            test = f"not computed: {err}"
        rows.append({"claim_id": cid, "a": a, "b": b, "metric": f"{cls or 'mean'} AUC",
                     "difference": diff, "ci_low": lo, "ci_high": hi, "p_value": p,
                     "test": test})
    if loc is not None and "he2024_no_fusion" in loc.ap:
        ma, mb = loc.map_ci("he2024_full")[0], loc.map_ci("he2024_no_fusion")[0]
        lo, hi, p = _paired_map(loc, "he2024_full", "he2024_no_fusion")
        rows.append({"claim_id": "cmp/text/fusion_localization/map", "a": "he2024_full",
                     "b": "he2024_no_fusion", "metric": "mAP", "difference": ma - mb,
                     "ci_low": lo, "ci_high": hi, "p_value": p, "test": "paired bootstrap (slices resampled)"})
    table = pd.DataFrame(rows)
    exp.run.save_table(table, "paired_tests",
                       "Comparative claims: difference a - b on the same test slices, 95 % CI "
                       "and two-sided p (DeLong for one class, slices treated as independent; "
                       "paired bootstrap for six-class means (whole test studies resampled) and "
                       "for the mAP (test slices resampled))")
    return table


def _check_same_cases(ra: VariantResult, rb: VariantResult) -> None:
    if ra.ids != rb.ids or not np.array_equal(ra.y_true, rb.y_true, equal_nan=True):
        raise ValueError(f"{ra.name} and {rb.name} were not tested on the same cases")


def _quad(res: Any) -> tuple[float, float, float, float]:
    """(difference, low, high, p) of a DeLongResult or PairedBootstrapResult."""
    return float(res.difference), float(res.low), float(res.high), float(res.p_value)


def _paired_map(loc: Localization, a: str, b: str) -> tuple[float, float, float]:
    """Paired bootstrap CI and two-sided p of mAP(a) - mAP(b) (same resampled slices)."""
    diff = loc.boot[a] - loc.boot[b]
    diff = diff[~np.isnan(diff)]
    if len(diff) < 10:
        return float("nan"), float("nan"), float("nan")
    lo, hi = _percentile_ci(diff)
    p = min(1.0, 2 * min(float(np.mean(diff <= 0)), float(np.mean(diff >= 0))))
    return lo, hi, p


# --------------------------------------------------------------------------- claims
def measured_claims(exp: Experiment, data: He2024Data, results: dict[str, VariantResult],
                    loc: Localization | None, paired: pd.DataFrame | None) -> pd.DataFrame:
    """Every regenerated number keyed by the claim ids of brainlib/claims/he2024.yaml."""
    from scipy.stats import binomtest

    rows: list[dict[str, Any]] = []

    def add(cid, value, lo=float("nan"), hi=float("nan"), p=float("nan"), note=""):
        rows.append({"claim_id": cid, "value": value, "ci_low": lo, "ci_high": hi,
                     "p_value": p, "note": note})

    s = exp.settings
    # settings actually used
    add("text/training/epochs", s["epochs"])
    add("text/training/batch_size", s["batch_size"])
    add("text/training/lr", s["lr"])
    add("text/training/lr_step_epochs", s["lr_step"])
    add("text/training/lr_gamma", s["lr_gamma"])
    add("text/cam/threshold", CAM_THRESHOLD)  # proportions as fractions (claims convert)
    add("text/localization/iou_threshold", IOU_THRESHOLD)
    add("text/dataset/test_fraction", s["test_fraction"])
    add("text/dataset/labels", len(RSNA_CLASSES))
    from brainlib.io import BRAIN, SOFT_TISSUE, SUBDURAL

    for key, w in (("brain", BRAIN), ("subdural", SUBDURAL), ("soft_tissue", SOFT_TISSUE)):
        add(f"text/windows/{key}/level", w.level)
        add(f"text/windows/{key}/width", w.width)
    t2 = table2_window_init().set_index("parameter")
    for key, col in (("brain", "Brain window"), ("subdural", "Subdural window"),
                     ("soft_tissue", "Soft tissue window")):
        add(f"table2/{key}/W", float(t2.at["W (module)", col]), note="module's float32 value")
        add(f"table2/{key}/b", float(t2.at["b (module)", col]), note="module's float32 value")
    # data set counts
    lab = data.dataset.labels
    n_types = np.nansum(lab[:, 1:], axis=1)
    add("text/dataset/total_slices", len(lab))
    add("text/dataset/no_ich_slices", int(np.sum(np.nan_to_num(lab[:, 0]) == 0)))
    for k, word in ((2, "two"), (3, "three"), (4, "four")):
        add(f"text/dataset/{word}_type_slices", int(np.sum(n_types == k)))
    add("text/dataset/test_slices", len(data.test))
    # Fig. 5 proportions with exact binomial CIs
    train_idx = np.concatenate([data.train, data.val])
    for part, idx in (("train", train_idx), ("test", data.test)):
        for i, cls in enumerate(RSNA_CLASSES):
            col = lab[idx, i]
            col = col[~np.isnan(col)]
            k, n = int(col.sum()), len(col)
            ci = binomtest(k, n).proportion_ci(0.95) if n else None
            add(f"fig5/{part}/{cls}/proportion", k / n if n else float("nan"),
                ci.low if ci else float("nan"), ci.high if ci else float("nan"),
                note="exact binomial 95 % CI")
    # Table 3 and abstract
    for name, _ in TABLE3_MODELS:
        key = _CLAIM_MODEL[name]
        for cls in list(RSNA_CLASSES) + ["average"]:
            v, lo, hi = auc_with_ci(exp, results[name], None if cls == "average" else cls)
            add(f"table3/{key}/{cls}/auc", v, lo, hi)
            if name == "he2024_full":
                if cls == "average":
                    add("abstract/bleeding/auc", v, lo, hi, note="read as the six-label mean")
                elif cls != "any":
                    add(f"abstract/{cls}/auc", v, lo, hi)
    # Table 4
    for name, _, _, _, key in TABLE4_ROWS:
        v, lo, hi = auc_with_ci(exp, results[name], None)
        add(f"table4/{key}/auc", v, lo, hi, note="mean AUC over the six labels")
    # localisation
    if loc is not None:
        t = loc.ap["he2024_full"].set_index("class")
        m, lo, hi = loc.map_ci("he2024_full")
        add("text/localization/map", m, lo, hi, note=t.at["mAP", "note"])
        for cls in ("intraventricular", "intraparenchymal", "subarachnoid", "subdural"):
            add(f"text/localization/{cls}/ap", float(t.at[cls, "ap"]), note=t.at[cls, "note"])
    # comparisons
    if paired is not None:
        for row in paired.itertuples(index=False):
            add(row.claim_id, row.difference, row.ci_low, row.ci_high, row.p_value,
                f"{row.test}, a - b")
    return pd.DataFrame(rows)


def compare_claims(exp: Experiment, data: He2024Data, results: dict[str, VariantResult],
                   loc: Localization | None, paired: pd.DataFrame | None) -> pd.DataFrame:
    """Put every regenerated number beside the paper's through the claims registry."""
    measured = measured_claims(exp, data, results, loc, paired)
    return exp.run.compare_claims(measured)


def finish(exp: Experiment) -> Path:
    """Record timings and close the run (manifest.json with hashes)."""
    exp.run.params["timings_seconds"] = {k: round(v, 1) for k, v in exp.timings.items()}
    return exp.run.finish()
