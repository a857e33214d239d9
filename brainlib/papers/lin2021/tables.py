"""Tables of the Dscint experiments: the abstract's metrics, the comparison with the classical
networks, per-class results, and the augmented-vs-leakage-free evaluation.

Every CI is a percentile bootstrap over patients (`brainlib.metrics.bootstrap_ci`, groups =
patient), every paired comparison a paired bootstrap on the same resamples plus McNemar's test
on per-image correctness. Metrics are macro averages over the four classes (the abstract gives
one number per metric for a 4-class task; macro is our reading).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from brainlib.claims import load_paper
from brainlib.data.classes import BONESCAN_CLASSES
from brainlib.metrics import bootstrap_ci, classification_metrics, mcnemar, paired_bootstrap
from brainlib.papers.lin2021.settings import EVALUATION_LABELS
from brainlib.papers.lin2021.train import DSCINT, ModelResult

#: The abstract's metric -> key of `classification_metrics`.
METRICS: dict[str, str] = {"accuracy": "accuracy", "precision": "precision_macro",
                           "recall": "recall_macro", "specificity": "specificity_macro",
                           "f1": "f1_macro"}
BONE_CLASSES: tuple[str, ...] = ("metastasis", "arthritis")


def macro_metrics(y: np.ndarray, s: np.ndarray, n_classes: int = len(BONESCAN_CLASSES)) -> dict[str, float]:
    """Accuracy and one-vs-rest precision/recall/specificity/F1 (per class and macro) from one
    confusion matrix: the same numbers as `brainlib.metrics.classification_metrics` (tested),
    fast enough for thousands of bootstrap resamples."""
    y = np.asarray(y, dtype=np.int64)
    cm = np.bincount(y * n_classes + np.asarray(s).argmax(1), minlength=n_classes ** 2)
    cm = cm.reshape(n_classes, n_classes).astype(float)
    tp = np.diag(cm)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    tn = cm.sum() - tp - fp - fn
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        rec = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
        spec = np.where(tn + fp > 0, tn / np.maximum(tn + fp, 1), np.nan)
        f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)
    out = {"accuracy": float(tp.sum() / max(cm.sum(), 1)), "precision_macro": float(prec.mean()),
           "recall_macro": float(rec.mean()), "specificity_macro": float(np.nanmean(spec)),
           "f1_macro": float(f1.mean())}
    for k, c in enumerate(BONESCAN_CLASSES[:n_classes]):
        out.update({f"precision_{c}": float(prec[k]), f"recall_{c}": float(rec[k]),
                    f"specificity_{c}": float(spec[k]), f"f1_{c}": float(f1[k])})
    return out


def metric_fn(key: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """A bootstrap-able metric of (class index, probabilities)."""
    def fn(y: np.ndarray, s: np.ndarray) -> float:
        return macro_metrics(y, s)[key]
    return fn


def with_ci(r: ModelResult, key: str, n_boot: int, seed: int) -> tuple[float, float, float]:
    ci = bootstrap_ci(metric_fn(key), r.y_true, r.y_score, n_boot=n_boot, seed=seed, groups=r.patients)
    return ci.estimate, ci.low, ci.high


def _cell(v: float, lo: float, hi: float) -> str:
    return f"{v:.4f} [{lo:.4f}, {hi:.4f}]"


def abstract_table(results: dict[tuple[str, str], ModelResult], n_boot: int, seed: int) -> pd.DataFrame:
    """The abstract's five Dscint metrics beside ours in each evaluation (value [95 % CI])."""
    paper = {c.metric: c.value for c in load_paper("lin2021").claims
             if c.id.startswith("abstract/test/dscint/")}
    rows = []
    for metric, key in METRICS.items():
        row: dict[str, Any] = {"metric": metric, "paper (augmented test)": paper.get(metric)}
        for (evaluation, name), r in results.items():
            if name == DSCINT:
                row[EVALUATION_LABELS[evaluation]] = _cell(*with_ci(r, key, n_boot, seed))
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_table(results: dict[tuple[str, str], ModelResult], n_boot: int, seed: int,
                     not_run: Sequence[Mapping[str, Any]] = (), reason: str = "") -> pd.DataFrame:
    """Dscint vs each classical network (and Dscint's head controls) per evaluation: metrics,
    paired difference and tests, the training budget (optimiser steps, CPU seconds); then one
    row per paper network not run, with `reason` and its measured cost of one step (`step_cost`)."""
    rows = []
    for (evaluation, name), r in results.items():
        base = results[(evaluation, DSCINT)]
        if sum(e == evaluation for e, _ in results) < 2:
            continue
        row: dict[str, Any] = {"evaluation": evaluation, "model": r.label, "status": "trained"}
        for metric, key in METRICS.items():
            row[metric] = round(metric_fn(key)(r.y_true, r.y_score), 4)
        lo_hi = with_ci(r, "accuracy", n_boot, seed)
        row["accuracy CI"] = f"[{lo_hi[1]:.4f}, {lo_hi[2]:.4f}]"
        if name != DSCINT:
            pb = paired_bootstrap(metric_fn("accuracy"), r.y_true, base.y_score, r.y_score,
                                  n_boot=n_boot, seed=seed, groups=r.patients)
            row.update({"Dscint - model (accuracy)": round(pb.difference, 4),
                        "diff CI": f"[{pb.low:.4f}, {pb.high:.4f}]",
                        "paired bootstrap p": round(pb.p_value, 4),
                        "McNemar p": round(mcnemar(base.correct, r.correct).p_value, 4)})
        row.update({"parameters (M)": round(r.n_params / 1e6, 3), "optimiser steps": r.steps,
                    "train s": round(r.seconds, 1), "train CPU s": round(r.cpu_seconds, 1),
                    "tested epoch": _epochs(r.best_epoch), "initialisation": r.init})
        rows.append(row)
    for cost in not_run:
        rows.append({"evaluation": cost["evaluation"], "model": cost["label"],
                     "status": f"not run: {reason}" if reason else "not run",
                     "parameters (M)": round(cost["n_params"] / 1e6, 3),
                     "optimiser steps": cost["steps in budget"],
                     "CPU s per step (measured, 1 step)": round(cost["CPU s per step"], 2),
                     "train CPU s (estimated)": round(cost["CPU s per step"] * cost["steps in budget"], 0),
                     "input": cost.get("input", "")})
    return pd.DataFrame(rows)


def head_notes(results: dict[tuple[str, str], ModelResult]) -> list[str]:
    """Per evaluation with a head control: does Dscint still beat the best classical network
    when it ends with their global average pooling? (Its flatten head was chosen for it alone.)"""
    from brainlib.models.dscint import BASELINES
    from brainlib.papers.lin2021.train import control_name

    acc = metric_fn("accuracy")
    notes = []
    for (ev, name), r in results.items():
        control = results.get((ev, control_name("avg")))
        others = [o for (e, n), o in results.items() if e == ev and n in BASELINES]
        if name != DSCINT or control is None or not others:
            continue
        best = max(others, key=lambda o: acc(o.y_true, o.y_score))
        d, c, b = (acc(x.y_true, x.y_score) for x in (r, control, best))
        verdict = ("below the best classical network: Dscint's lead here rests on the flatten head "
                   "chosen for it alone" if c < b else
                   "still at or above the best classical network: the lead does not rest on the head alone")
        notes.append(f"{EVALUATION_LABELS[ev]}: Dscint with the classical networks' global average "
                     f"pooling head reached accuracy {c:.4f} against {d:.4f} with its flatten head and "
                     f"{b:.4f} for the best classical network ({best.label}), {verdict}")
    return notes


def _epochs(best: int | tuple[int, ...]) -> str:
    """The tested epoch, or one per fold ("4/7/5/...") with cross-validation."""
    return "/".join(map(str, best)) if isinstance(best, tuple) else str(best)


def thyroid_gap(y: np.ndarray, s: np.ndarray) -> float:
    """Recall of thyroid carcinoma minus the mean recall of metastasis and arthritis."""
    m = macro_metrics(y, s)
    return m["recall_thyroid_carcinoma"] - float(np.mean([m[f"recall_{c}"] for c in BONE_CLASSES]))


def f1_gap(y: np.ndarray, s: np.ndarray) -> float:
    """F1 of thyroid carcinoma minus the mean F1 of metastasis and arthritis."""
    m = macro_metrics(y, s)
    return m["f1_thyroid_carcinoma"] - float(np.mean([m[f"f1_{c}"] for c in BONE_CLASSES]))


def gap_test(r: ModelResult, gap: Callable[[np.ndarray, np.ndarray], float], n_boot: int,
             seed: int) -> tuple[float, float, float, float]:
    """(difference, CI low, CI high, two-sided p) of a fixed-minus-non-fixed `gap`, bootstrap by
    patient; p as the paired bootstrap's (Efron & Tibshirani 1993, 16.4): the share of centred
    replicates at least as far from 0 as the observed difference."""
    ci = bootstrap_ci(gap, r.y_true, r.y_score, n_boot=n_boot, seed=seed, groups=r.patients)
    reps = ci.replicates[np.isfinite(ci.replicates)]
    d = ci.estimate
    p = float((1 + np.sum(np.abs(reps - d) >= abs(d))) / (1 + reps.size)) if reps.size else np.nan
    return d, ci.low, ci.high, p


def fixed_location_table(results: dict[tuple[str, str], ModelResult], n_boot: int,
                         seed: int) -> pd.DataFrame:
    """The abstract's "better on fixed-location lesions (thyroid carcinoma) than on non-fixed
    ones (in bone)" as a test: Dscint's thyroid-carcinoma recall (and F1) minus the mean over
    metastasis and arthritis, bootstrap CI and p by patient, per evaluation."""
    rows = []
    for (evaluation, name), r in results.items():
        if name != DSCINT:
            continue
        m = macro_metrics(r.y_true, r.y_score)
        for metric, gap in (("recall", thyroid_gap), ("f1", f1_gap)):
            d, lo, hi, p = gap_test(r, gap, n_boot, seed)
            rows.append({"evaluation": EVALUATION_LABELS[evaluation], "metric": metric,
                         "thyroid carcinoma (fixed)": round(m[f"{metric}_thyroid_carcinoma"], 4),
                         "metastasis, arthritis (non-fixed, mean)":
                             round(float(np.mean([m[f"{metric}_{c}"] for c in BONE_CLASSES])), 4),
                         "fixed - non-fixed": round(d, 4), "95 % CI": f"[{lo:.4f}, {hi:.4f}]",
                         "bootstrap p": round(p, 4),
                         "n test (thyroid / non-fixed)":
                             f"{int((r.y_true == BONESCAN_CLASSES.index('thyroid_carcinoma')).sum())} / "
                             f"{int(np.isin(r.y_true, [BONESCAN_CLASSES.index(c) for c in BONE_CLASSES]).sum())}"})
    return pd.DataFrame(rows)


def per_class_table(results: dict[tuple[str, str], ModelResult]) -> pd.DataFrame:
    """Dscint's one-vs-rest precision, recall, specificity, F1 per class and evaluation."""
    rows = []
    for (evaluation, name), r in results.items():
        if name != DSCINT:
            continue
        m = classification_metrics(r.y_true, r.y_score, task="multiclass",
                                   class_names=list(BONESCAN_CLASSES))
        for k, c in enumerate(BONESCAN_CLASSES):
            rows.append({"evaluation": evaluation, "class": c, "n test": int((r.y_true == k).sum()),
                         **{mt: round(m[f"{mt}_{c}"], 4) for mt in ("precision", "recall",
                                                                    "specificity", "f1")}})
    return pd.DataFrame(rows)


def leakage_table(results: dict[tuple[str, str], ModelResult], leaks: dict[str, pd.DataFrame],
                  n_boot: int, seed: int) -> pd.DataFrame:
    """Dscint per evaluation, and within the paper's evaluation split by whether a copy of the
    test image's scan was trained on (the leak): how much the augmented test inflates."""
    rows = []
    for (evaluation, name), r in results.items():
        if name != DSCINT:
            continue
        leak = leaks[evaluation].set_index("case_id").loc[r.ids]
        parts = {"all test images": np.ones(len(r.ids), bool)}
        if evaluation == "augmented_test":
            parts["scan also in training"] = leak["scan_in_train"].to_numpy()
            parts["scan not in training"] = ~leak["scan_in_train"].to_numpy()
        for part, mask in parts.items():
            row: dict[str, Any] = {"evaluation": EVALUATION_LABELS[evaluation], "test images": part,
                                   "n": int(mask.sum()),
                                   "share with own scan in training": round(float(leak["scan_in_train"][mask].mean()), 4) if mask.any() else np.nan}
            for metric in ("accuracy", "f1"):
                if mask.sum() >= 2:
                    sub = _masked(r, mask)
                    row[metric] = _cell(*with_ci(sub, METRICS[metric], n_boot, seed))
            rows.append(row)
    return pd.DataFrame(rows + _inflation_rows(results, leaks, n_boot, seed))


def _difference(a: ModelResult, b: ModelResult, key: str, n_boot: int, seed: int) -> str:
    """metric(a) - metric(b) on two different test sets: independent bootstraps by patient,
    percentile CI of the replicate differences."""
    ra = bootstrap_ci(metric_fn(key), a.y_true, a.y_score, n_boot=n_boot, seed=seed, groups=a.patients)
    rb = bootstrap_ci(metric_fn(key), b.y_true, b.y_score, n_boot=n_boot, seed=seed + 1, groups=b.patients)
    diff = ra.replicates - rb.replicates
    diff = diff[np.isfinite(diff)]
    lo, hi = np.percentile(diff, [2.5, 97.5]) if diff.size else (np.nan, np.nan)
    return f"{ra.estimate - rb.estimate:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def _inflation_rows(results: dict[tuple[str, str], ModelResult], leaks: dict[str, pd.DataFrame],
                    n_boot: int, seed: int) -> list[dict[str, Any]]:
    """How much the paper's evaluation inflates Dscint's numbers: augmented test minus
    leakage-free, and within the augmented test, images whose scan was trained on minus the
    others (each a difference with a 95 % bootstrap CI)."""
    rows = []
    aug, free = results.get(("augmented_test", DSCINT)), results.get(("leakage_free", DSCINT))
    if aug is not None and free is not None:
        rows.append({"evaluation": "inflation", "test images": "augmented test minus leakage-free",
                     **{m: _difference(aug, free, METRICS[m], n_boot, seed) for m in ("accuracy", "f1")}})
    if aug is not None:
        seen = leaks["augmented_test"].set_index("case_id").loc[aug.ids, "scan_in_train"].to_numpy()
        if 2 <= seen.sum() <= len(seen) - 2:
            rows.append({"evaluation": "inflation",
                         "test images": "augmented test: scan also in training minus not",
                         **{m: _difference(_masked(aug, seen), _masked(aug, ~seen), METRICS[m],
                                           n_boot, seed) for m in ("accuracy", "f1")}})
    return rows


def _masked(r: ModelResult, mask: np.ndarray) -> ModelResult:
    from dataclasses import replace

    return replace(r, ids=[i for i, m in zip(r.ids, mask) if m],
                   patients=[p for p, m in zip(r.patients, mask) if m],
                   y_true=r.y_true[mask], y_score=r.y_score[mask])
