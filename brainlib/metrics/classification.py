"""Classification metrics for binary, multi-class (softmax) and multi-label (sigmoid) outputs.

scikit-learn computes every metric (no hand-written AUC or kappa); this module only decides
which task a pair ``(y_true, y_score)`` is, turns scores into predictions, masks unknown
labels and names the results, so every paper reports the same quantities the same way.

Tasks
-----
* ``binary``: ``y_true`` (N,) in {0, 1}; ``y_score`` (N,), (N, 1) or (N, 2) (column 1 used),
  predicted positive when ``score >= threshold``.
* ``multiclass``: ``y_true`` (N,) class index (or one-hot (N, C) with ``task="multiclass"``);
  ``y_score`` (N, C); prediction = argmax; per-class metrics are one-vs-rest.
* ``multilabel``: ``y_true`` (N, C) of 1/0/NaN (NaN = unknown, masked per class);
  ``y_score`` (N, C) sigmoid probabilities; prediction = ``score >= threshold`` (scalar or
  per class). Overall ``accuracy`` is the exact-match ratio over rows without NaN; ``kappa``
  is the mean of per-class kappas.

A per-class AUC/AP is NaN when that class has only one label value among the cases, and the
reason is recorded (``note`` column of :func:`roc_auc_per_class`); means skip those classes.
Validation and task resolution (:func:`prepare`, :func:`infer_task`, :class:`PreparedTask`)
live in :mod:`brainlib.metrics.tasks` and are re-exported here.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from brainlib.metrics.tasks import (TASKS, PreparedTask, class_columns, infer_task,  # noqa: F401
                                    one_value_note, prepare)

__all__ = [
    "PreparedTask",
    "classification_metrics",
    "classification_table",
    "confusion",
    "infer_task",
    "make_metric_fn",
    "pr_curves",
    "prepare",
    "roc_auc_per_class",
    "roc_curves",
]

def roc_auc_per_class(
    y_true: Any, y_score: Any, task: str | None = None, class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-class ROC AUC and average precision (one-vs-rest), with counts and a note.

    Returns columns ``class, auc, ap, n_pos, n_neg, note``; a class with one label value gets
    NaN and the reason in ``note``.
    """
    p = prepare(y_true, y_score, task, class_names)
    rows = []
    for name, y, s, _ in class_columns(p):
        note = one_value_note(y)
        auc = ap = float("nan")
        if note is None:
            auc = float(skm.roc_auc_score(y, s))
            ap = float(skm.average_precision_score(y, s))
        rows.append({"class": name, "auc": auc, "ap": ap, "n_pos": int(y.sum()),
                     "n_neg": int(y.size - y.sum()), "note": note or ""})
    return pd.DataFrame(rows)


def classification_metrics(
    y_true: Any,
    y_score: Any,
    task: str | None = None,
    class_names: Sequence[str] | None = None,
    threshold: float | Sequence[float] = 0.5,
    zero_division: float = 0.0,
    per_class: bool = True,
) -> dict[str, float]:
    """A flat dict of metrics (keys usable as ``fit(monitor=...)``).

    Always: ``accuracy, balanced_accuracy (not multilabel), precision_macro, recall_macro,
    specificity_macro, f1_macro, precision_micro, recall_micro, specificity_micro, f1_micro,
    kappa, auc_macro, ap_macro``; per class ``<metric>_<class>`` for precision, recall,
    specificity, f1, auc, ap (and accuracy, kappa for multilabel). Binary adds the
    positive-class ``precision, recall, sensitivity, specificity, f1, auc, ap``.
    ``auc_macro``/``ap_macro`` are means over classes where AUC is defined.
    """
    p = prepare(y_true, y_score, task, class_names, threshold)
    zd = zero_division
    out: dict[str, float] = {}
    cols = class_columns(p)
    auc_table = roc_auc_per_class(p.y_true, p.y_score, p.task, p.class_names)

    if p.task in ("binary", "multiclass"):
        labels = list(range(2 if p.task == "binary" else p.n_classes))
        out["accuracy"] = float(skm.accuracy_score(p.y_true, p.y_pred))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a class absent from y_true
            out["balanced_accuracy"] = float(skm.balanced_accuracy_score(p.y_true, p.y_pred))
        for avg in ("macro", "micro"):
            pr, rc, f1, _ = skm.precision_recall_fscore_support(
                p.y_true, p.y_pred, labels=labels, average=avg, zero_division=zd)
            out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = pr, rc, f1
        out["kappa"] = _kappa(p.y_true, p.y_pred)
        mcm = skm.multilabel_confusion_matrix(p.y_true, p.y_pred, labels=labels)
    else:
        complete = ~np.isnan(p.y_true).any(1)
        out["accuracy"] = (float(skm.accuracy_score(p.y_true[complete].astype(int),
                                                    p.y_pred[complete]))
                           if complete.any() else float("nan"))
        mask = ~np.isnan(p.y_true)
        flat_t, flat_p = p.y_true[mask].astype(int), p.y_pred[mask]
        per = np.array([_prf(y, pr, zd) for _, y, _, pr in cols])
        out["precision_macro"], out["recall_macro"], out["f1_macro"] = np.nanmean(per, 0)
        out["precision_micro"], out["recall_micro"], out["f1_micro"] = _prf(flat_t, flat_p, zd)
        kappas = [_kappa(y, pr) for _, y, _, pr in cols]
        out["kappa"] = _nanmean(kappas)
        mcm = np.array([skm.confusion_matrix(y, pr, labels=[0, 1]) if y.size
                        else np.zeros((2, 2), int) for _, y, _, pr in cols])

    # specificity per class from the one-vs-rest confusion matrices [[tn, fp], [fn, tp]]
    tn, fp = mcm[:, 0, 0], mcm[:, 0, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        spec = np.where(tn + fp > 0, tn / np.maximum(tn + fp, 1), np.nan)
    spec_classes = spec if p.task != "binary" else spec[[1]]  # binary: positive class
    out["specificity_macro"] = _nanmean(spec)
    out["specificity_micro"] = float(tn.sum() / (tn + fp).sum()) if (tn + fp).sum() else np.nan
    out["auc_macro"] = _nanmean(auc_table["auc"])
    out["ap_macro"] = _nanmean(auc_table["ap"])

    if p.task == "binary":
        pr, rc, f1 = _prf(p.y_true, p.y_pred, zd)
        out.update(precision=pr, recall=rc, sensitivity=rc, f1=f1,
                   specificity=float(spec_classes[0]), auc=float(auc_table["auc"].iloc[0]),
                   ap=float(auc_table["ap"].iloc[0]))
    elif per_class:
        for (name, y, _s, pred), sp, (_, row) in zip(cols, spec_classes, auc_table.iterrows()):
            pr, rc, f1 = _prf(y, pred, zd)
            out.update({f"precision_{name}": pr, f"recall_{name}": rc, f"f1_{name}": f1,
                        f"specificity_{name}": float(sp), f"auc_{name}": row["auc"],
                        f"ap_{name}": row["ap"]})
            if p.task == "multilabel":
                out[f"accuracy_{name}"] = float(skm.accuracy_score(y, pred)) if y.size else np.nan
                out[f"kappa_{name}"] = _kappa(y, pred)
    return {k: float(v) for k, v in out.items()}


def _prf(y: np.ndarray, pred: np.ndarray, zero_division: float) -> tuple[float, float, float]:
    """Precision, recall, F1 of the positive class (scikit-learn); NaN with no labelled case."""
    if y.size == 0:
        return float("nan"), float("nan"), float("nan")
    pr, rc, f1, _ = skm.precision_recall_fscore_support(
        y, pred, labels=[1], average=None, zero_division=zero_division)
    return float(pr[0]), float(rc[0]), float(f1[0])


def _kappa(y: np.ndarray, pred: np.ndarray) -> float:
    """Cohen's kappa (scikit-learn); NaN when undefined (e.g. both raters constant)."""
    if y.size == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(skm.cohen_kappa_score(y, pred))


def _nanmean(values: Any) -> float:
    arr = np.asarray(values, dtype=float)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")


def confusion(
    y_true: Any,
    y_score: Any,
    task: str | None = None,
    class_names: Sequence[str] | None = None,
    threshold: float | Sequence[float] = 0.5,
    normalize: str | None = None,
) -> pd.DataFrame:
    """Confusion matrix as a labelled DataFrame.

    Binary / multiclass: rows = true class, columns = predicted class (``normalize`` as in
    scikit-learn: ``"true"`` gives row-normalised rates). Multilabel: one row per class with
    ``tn, fp, fn, tp`` (NaN labels excluded).
    """
    p = prepare(y_true, y_score, task, class_names, threshold)
    if p.task == "multilabel":
        rows = []
        for name, y, _s, pred in class_columns(p):
            tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
            rows.append({"class": name, "tn": tn, "fp": fp, "fn": fn, "tp": tp})
        return pd.DataFrame(rows).set_index("class")
    labels = list(range(p.n_classes))
    cm = skm.confusion_matrix(p.y_true, p.y_pred, labels=labels, normalize=normalize)
    return pd.DataFrame(cm, index=pd.Index(p.class_names, name="true"),
                        columns=pd.Index(p.class_names, name="predicted"))


def roc_curves(
    y_true: Any, y_score: Any, task: str | None = None, class_names: Sequence[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Per-class ROC curves ``{class: DataFrame(fpr, tpr, threshold)}``; classes with one
    label value are left out (their AUC is NaN in :func:`roc_auc_per_class`)."""
    p = prepare(y_true, y_score, task, class_names)
    out = {}
    for name, y, s, _ in class_columns(p):
        if one_value_note(y) is None:
            fpr, tpr, thr = skm.roc_curve(y, s)
            out[name] = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr})
    return out


def pr_curves(
    y_true: Any, y_score: Any, task: str | None = None, class_names: Sequence[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Per-class precision-recall curves ``{class: DataFrame(precision, recall, threshold)}``
    (the last point, recall 0, has threshold NaN as in scikit-learn's n+1 convention)."""
    p = prepare(y_true, y_score, task, class_names)
    out = {}
    for name, y, s, _ in class_columns(p):
        if one_value_note(y) is None:
            prec, rec, thr = skm.precision_recall_curve(y, s)
            out[name] = pd.DataFrame({"precision": prec, "recall": rec,
                                      "threshold": np.append(thr, np.nan)})
    return out


def classification_table(
    y_true: Any,
    y_score: Any,
    task: str | None = None,
    class_names: Sequence[str] | None = None,
    threshold: float | Sequence[float] = 0.5,
    zero_division: float = 0.0,
    long: bool = False,
) -> pd.DataFrame:
    """One row per class plus ``macro`` and ``micro`` rows; columns ``class, n_pos, n_neg,
    precision, recall, specificity, f1, auc, ap, note``. Overall ``accuracy`` and ``kappa``
    are on the ``macro`` row. ``long=True`` gives tidy ``(class, metric, value)`` rows.
    """
    p = prepare(y_true, y_score, task, class_names, threshold)
    m = classification_metrics(p.y_true, p.y_score, p.task, p.class_names, threshold,
                               zero_division, per_class=True)
    aucs = roc_auc_per_class(p.y_true, p.y_score, p.task, p.class_names).set_index("class")
    rows = []
    names = [p.class_names[1]] if p.task == "binary" else p.class_names
    for name in names:
        key = "" if p.task == "binary" else f"_{name}"
        rows.append({"class": name, "n_pos": aucs.loc[name, "n_pos"],
                     "n_neg": aucs.loc[name, "n_neg"],
                     **{k: m[f"{k}{key}"] for k in ("precision", "recall", "specificity", "f1",
                                                    "auc", "ap")},
                     "note": aucs.loc[name, "note"]})
    for avg in ("macro", "micro"):
        row: dict[str, Any] = {"class": avg, "n_pos": np.nan, "n_neg": np.nan}
        row.update({k: m.get(f"{k}_{avg}", np.nan) for k in
                    ("precision", "recall", "specificity", "f1", "auc", "ap")})
        row["note"] = "means over classes with defined AUC" if avg == "macro" else ""
        rows.append(row)
    table = pd.DataFrame(rows)
    table[["n_pos", "n_neg"]] = table[["n_pos", "n_neg"]].astype("Int64")
    table["accuracy"] = [np.nan] * (len(rows) - 2) + [m["accuracy"], np.nan]
    table["kappa"] = [np.nan] * (len(rows) - 2) + [m["kappa"], np.nan]
    if p.task == "multilabel":
        table.loc[: len(names) - 1, "accuracy"] = [m[f"accuracy_{n}"] for n in names]
        table.loc[: len(names) - 1, "kappa"] = [m[f"kappa_{n}"] for n in names]
    if long:
        return (table.drop(columns="note")
                .melt(id_vars="class", var_name="metric", value_name="value")
                .dropna(subset=["value"]).reset_index(drop=True))
    return table


def make_metric_fn(
    task: str | None = None,
    class_names: Sequence[str] | None = None,
    threshold: float | Sequence[float] = 0.5,
    keys: Sequence[str] | None = None,
) -> Callable[[Any], dict[str, float]]:
    """A ``metric_fn`` for :func:`brainlib.engine.fit`: Predictions -> metrics dict
    (restricted to ``keys`` if given)."""

    def metric_fn(pred: Any) -> dict[str, float]:
        if pred.y_true is None:
            raise ValueError("predictions carry no y_true: batches need a 'y' entry")
        values = classification_metrics(pred.y_true, pred.y_score, task, class_names, threshold)
        if keys is None:
            return values
        missing = [k for k in keys if k not in values]
        if missing:
            raise KeyError(f"metrics {missing} not computed; available: {sorted(values)}")
        return {k: values[k] for k in keys}

    return metric_fn
