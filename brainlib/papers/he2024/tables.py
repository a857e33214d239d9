"""Tables of He et al. 2024 as DataFrames (the notebook saves them through `exp.table`):
Table 2 (window initialisation, eq. 3.1), Table 3 (ablation AUCs), Table 4 (window-module
inputs), the Fig. 5 proportions and the Fig. 7 learned windows.

Every AUC beside a paper number carries a 95 % percentile bootstrap CI over test studies
(slices of one study are resampled together).
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from brainlib.claims import load_claims
from brainlib.data.classes import RSNA_CLASSES, RSNA_SHORT
from brainlib.experiment import Experiment
from brainlib.io import BRAIN, SOFT_TISSUE, SUBDURAL, sigmoid_window_params
from brainlib.layers.window_module import WindowModule
from brainlib.metrics import bootstrap_ci, defined_classes
from brainlib.papers.he2024.data import He2024Data, label_proportions
from brainlib.papers.he2024.settings import PAPER
from brainlib.papers.he2024.train import TABLE3_MODELS, TABLE4_ROWS, VariantResult

# The three presets of Table 2 / Table 4, (column name, window), in the paper's order.
PRESETS = (("Brain window", BRAIN), ("Subdural window", SUBDURAL),
           ("Soft tissue window", SOFT_TISSUE))
# Ye et al. 2019 readers quoted in Table 3 (values read from the claims registry, not re-run).
RADIOLOGISTS: dict[str, str] = {
    "junior_radiologist": "Junior radiologist [Ye 2019] (reported, not re-run)",
    "senior_radiologist": "Senior radiologist [Ye 2019] (reported, not re-run)",
}
# Claim keys of the model columns of Table 3 in brainlib/claims/he2024.yaml.
CLAIM_MODEL = {"he2024_full": "full", "he2024_no_window": "no_window",
               "he2024_no_fusion": "no_fusion"}

AucMetric = Callable[[np.ndarray, np.ndarray], float]


# --------------------------------------------------------------------------- AUC with CI
def rank_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of 0/1 labels as the Mann-Whitney statistic (ties at average rank): the value
    of sklearn's `roc_auc_score`, several times faster on the thousands of bootstrap
    resamples a run computes (measured on phantoms: Tables 3-4 took ~50 CPU s with sklearn)."""
    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = len(y) - n_pos
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auc_metric(classes: Sequence[str]) -> AucMetric:
    """metric(y_true, y_score) -> mean AUC over `classes` (one class: its AUC); NaN when any
    of them is undefined on a resample, so every replicate averages the same classes."""
    idx = [list(RSNA_CLASSES).index(c) for c in classes]

    def metric(y_true: np.ndarray, y_score: np.ndarray) -> float:
        values = []
        for k in idx:
            y, sc = y_true[:, k], y_score[:, k]
            keep = ~np.isnan(y)
            if not defined_classes(y[keep, None])[0]:
                return float("nan")
            values.append(rank_auc(y[keep], sc[keep]))
        return float(np.mean(values))

    return metric


def mean_auc_metric(y_true: np.ndarray) -> AucMetric:
    """The six-class mean over the classes whose AUC is defined on these test cases."""
    return auc_metric([c for c, ok in zip(RSNA_CLASSES, defined_classes(y_true)) if ok])


def auc_with_ci(exp: Experiment, r: VariantResult, cls: str | None) -> tuple[float, float, float]:
    """(AUC, low, high) of one class (None: the six-class mean) with a 95 % percentile
    bootstrap CI over test studies; NaN CI when the AUC is undefined. Cached on `r`."""
    if cls in r.auc_cache:
        return r.auc_cache[cls]
    metric = auc_metric([cls]) if cls is not None else mean_auc_metric(r.y_true)
    value = metric(r.y_true, r.y_score)
    out = (value, float("nan"), float("nan"))
    if not math.isnan(value):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ci = bootstrap_ci(metric, r.y_true, r.y_score, n_boot=exp.settings.n_boot,
                                  seed=exp.seed, groups=r.groups)
            out = (ci.estimate, ci.low, ci.high)
        except ValueError:  # undefined on every resample
            pass
    r.auc_cache[cls] = out
    return out


def auc_cell(value: float, low: float, high: float) -> str:
    """Table text "AUC [low, high]" with three decimals; "n/a" for an undefined AUC."""
    if math.isnan(value):
        return "n/a"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def paper_values() -> dict[str, float]:
    """claim id -> the paper's printed number (claims without a number left out)."""
    claims = load_claims(PAPER)
    claims = claims[claims["value"].notna()]
    out = {}
    for cid, v in zip(claims["claim_id"], claims["value"]):
        try:
            out[str(cid)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


# --------------------------------------------------------------------------- tables
def table2() -> pd.DataFrame:
    """Table 2: W and b of eq. 3.1 for the three presets (U = 255, eps = 1).

    Rows ``W``/``b``: the exact (float64) values of eq. 3.1; ``W (module)``/``b (module)``: the
    float32 parameters a freshly initialised `WindowModule` holds (what the paper printed).
    """
    module_w, module_b = WindowModule([w for _, w in PRESETS]).params()
    cols = {}
    for k, (name, w) in enumerate(PRESETS):
        W, b = sigmoid_window_params(w.level, w.width, upper=255.0, eps=1.0)
        cols[name] = {"level": w.level, "width": w.width, "W": W, "b": b,
                      "W (module)": module_w[k], "b (module)": module_b[k]}
    return pd.DataFrame(cols).rename_axis("parameter").reset_index()


def table3(exp: Experiment, results: dict[str, VariantResult]) -> pd.DataFrame:
    """Table 3: AUC per class and their average for the full model and its two ablations,
    with 95 % bootstrap CIs, beside the paper's values and the radiologists' (quoted)."""
    paper = paper_values()
    rows = []
    for cls in list(RSNA_CLASSES) + ["average"]:
        row = {"class": RSNA_SHORT.get(cls, "Average")}
        for name, label in TABLE3_MODELS:
            v, lo, hi = auc_with_ci(exp, results[name], None if cls == "average" else cls)
            row[f"{label} (here)"] = auc_cell(v, lo, hi)
            row[f"{label} (paper)"] = paper.get(f"table3/{CLAIM_MODEL[name]}/{cls}/auc")
        for key, label in RADIOLOGISTS.items():
            row[label] = paper.get(f"table3/{key}/{cls}/auc")
        rows.append(row)
    return pd.DataFrame(rows)


def table4(exp: Experiment, results: dict[str, VariantResult]) -> pd.DataFrame:
    """Table 4: the six input settings of the window module (mean AUC over the six labels;
    the paper's 0.973 for three trained windows equals Table 3's average)."""
    paper = paper_values()
    rows = []
    for name, inp, init, trained, key in TABLE4_ROWS:
        v, lo, hi = auc_with_ci(exp, results[name], None)
        va, la, ha = auc_with_ci(exp, results[name], "any")
        rows.append({"input": inp, "initialisation": init, "weight training": trained,
                     "model": name, "mean AUC (here)": auc_cell(v, lo, hi),
                     "any AUC (here)": auc_cell(va, la, ha),
                     "AUC (paper)": paper.get(f"table4/{key}/auc")})
    return pd.DataFrame(rows)


def fig5_table(data: He2024Data) -> pd.DataFrame:
    """Fig. 5 as a table: percentage and count of slices per label, training and test."""
    return label_proportions(data).round(3)


def learned_windows(results: dict[str, VariantResult]) -> pd.DataFrame:
    """(level, width) of every window module before and after training (Fig. 7 legend),
    from the trained W, b by inverting eq. 3.1."""
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


def learned_window_presets(results: dict[str, VariantResult],
                           model: str = "he2024_full") -> dict[str, tuple[float, float]]:
    """The trained window module's (level, width) per channel, as WindowExplorer presets."""
    table = learned_windows(results)
    rows = table[table["model"] == model]
    return {f"learned {int(r.channel) + 1}": (float(r.learned_level), float(r.learned_width))
            for r in rows.itertuples()}
