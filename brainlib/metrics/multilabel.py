"""Multi-label helpers shared by every paper: macro P/R/F1 at a threshold, macro AUC, the
percentile CI of bootstrap statistics, and binary cross-entropy with unknown (NaN) labels.

One home for what he2024 (six RSNA labels per slice) and wang_drct2 (scan-level disease
labels) both need; scikit-learn underneath where speed allows.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from brainlib.metrics.classification import roc_auc_per_class


def macro_prf(y_true: np.ndarray, y_score: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Macro precision, recall, F1 at `threshold` over the classes with at least one positive.

    Classes without a positive case have no defined recall and are left out; ``n_classes``
    says how many were averaged. Same definition as scikit-learn's
    ``precision_recall_fscore_support(average="macro", zero_division=0)`` on those columns
    (tested against it); written with numpy counts because bootstraps call it thousands of
    times. NaN labels count as negative.
    """
    y = np.nan_to_num(np.asarray(y_true, dtype=float)) > 0
    pred = np.asarray(y_score, dtype=float) >= threshold
    keep = y.any(axis=0)
    if not keep.any():
        return {"precision": np.nan, "recall": np.nan, "f1": np.nan, "n_classes": 0}
    y, pred = y[:, keep], pred[:, keep]
    tp = (y & pred).sum(0).astype(float)
    fp = (~y & pred).sum(0).astype(float)
    fn = (y & ~pred).sum(0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = tp / (tp + fn)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return {"precision": float(precision.mean()), "recall": float(recall.mean()),
            "f1": float(f1.mean()), "n_classes": int(keep.sum())}


def defined_classes(y_true: np.ndarray) -> np.ndarray:
    """Boolean mask of the label columns with both a positive and a negative (known) case."""
    y = np.asarray(y_true, dtype=float)
    known = ~np.isnan(y)
    pos = np.nansum(y, axis=0)
    return (pos > 0) & (pos < known.sum(axis=0))


def macro_auc(y_true: np.ndarray, y_score: np.ndarray,
              class_names: list[str] | None = None) -> float:
    """Mean ROC AUC over the label columns where it is defined; NaN when none is."""
    names = class_names or [str(i) for i in range(np.asarray(y_true).shape[1])]
    aucs = roc_auc_per_class(y_true, y_score, "multilabel", list(names))["auc"]
    return float(aucs.mean()) if aucs.notna().any() else float("nan")


def percentile_ci(stats: np.ndarray, level: float = 0.95,
                  min_valid: int = 10) -> tuple[float, float]:
    """Percentile interval of bootstrap statistics (NaNs dropped; NaN when < `min_valid`)."""
    stats = np.asarray(stats, dtype=float)
    stats = stats[~np.isnan(stats)]
    if len(stats) < min_valid:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2
    return float(np.quantile(stats, tail)), float(np.quantile(stats, 1.0 - tail))


def masked_bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy with logits over the known labels (NaN = unknown, ignored)."""
    known = ~torch.isnan(y)
    loss = F.binary_cross_entropy_with_logits(logits, torch.nan_to_num(y), reduction="none")
    return (loss * known).sum() / known.sum().clamp(min=1)
