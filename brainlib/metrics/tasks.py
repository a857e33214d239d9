"""Which task a pair ``(y_true, y_score)`` is, validated, with hard predictions.

The input layer of :mod:`brainlib.metrics.classification` (its module docstring describes the
three tasks): :func:`prepare` checks shapes and labels, resolves the task and thresholds the
scores; :func:`class_columns` gives one binary problem per class (unknown labels masked).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TASKS", "PreparedTask", "class_columns", "infer_task", "one_value_note", "prepare"]

TASKS = ("binary", "multiclass", "multilabel")


def infer_task(y_true: Any, y_score: Any) -> str:
    """Guess the task from shapes: 2-D ``y_true`` with C > 1 -> multilabel; 2-D ``y_score``
    with C > 2 -> multiclass; otherwise binary. Pass ``task=`` to override."""
    yt, ys = np.asarray(y_true), np.asarray(y_score)
    if yt.ndim == 2 and yt.shape[1] > 1:
        return "multilabel"
    if ys.ndim == 2 and ys.shape[1] > 2:
        return "multiclass"
    return "binary"


@dataclass
class PreparedTask:
    """Validated arrays: ``y_true``/``y_pred`` int (N,) for binary and multiclass, float
    (N, C) with NaN for multilabel; ``y_score`` (N,) binary or (N, C)."""

    task: str
    y_true: np.ndarray
    y_score: np.ndarray
    y_pred: np.ndarray
    class_names: list[str]

    @property
    def n_classes(self) -> int:
        """Number of classes C (2 for binary)."""
        return len(self.class_names)


def prepare(
    y_true: Any,
    y_score: Any,
    task: str | None = None,
    class_names: Sequence[str] | None = None,
    threshold: float | Sequence[float] = 0.5,
) -> PreparedTask:
    """Validate shapes, resolve the task and derive hard predictions."""
    yt = np.asarray(y_true, dtype=float)
    ys = np.asarray(y_score, dtype=float)
    task = task or infer_task(yt, ys)
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if yt.shape[0] != ys.shape[0]:
        raise ValueError(f"y_true has {yt.shape[0]} cases but y_score has {ys.shape[0]}")
    if yt.shape[0] == 0:
        raise ValueError("no cases")
    if not np.isfinite(ys).all():
        raise ValueError("y_score contains NaN or infinite values")

    if task == "binary":
        yt = yt.reshape(-1) if yt.ndim == 2 and yt.shape[1] == 1 else yt
        if ys.ndim == 2:
            if ys.shape[1] not in (1, 2):
                raise ValueError(f"binary y_score must be (N,), (N,1) or (N,2), got {ys.shape}")
            ys = ys[:, -1]
        _check_binary(yt, "y_true", allow_nan=False)
        names = list(class_names) if class_names is not None else ["negative", "positive"]
        if len(names) != 2:
            raise ValueError(f"binary task needs 2 class names, got {names}")
        pred = (ys >= float(np.asarray(threshold))).astype(int)
        return PreparedTask(task, yt.astype(int), ys, pred, names)

    if ys.ndim != 2:
        raise ValueError(f"{task} y_score must be (N, C), got shape {ys.shape}")
    n_classes = ys.shape[1]
    names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names for {n_classes} score columns")

    if task == "multiclass":
        if yt.ndim == 2:
            if yt.shape[1] != n_classes:
                raise ValueError(f"one-hot y_true has {yt.shape[1]} columns, y_score {n_classes}")
            yt = yt.argmax(1)
        if np.isnan(yt).any() or (yt != np.round(yt)).any() or yt.min() < 0 or yt.max() >= n_classes:
            raise ValueError(f"multiclass y_true must be integers in [0, {n_classes})")
        return PreparedTask(task, yt.astype(int), ys, ys.argmax(1), names)

    # multilabel
    if yt.shape != ys.shape:
        raise ValueError(f"multilabel y_true {yt.shape} and y_score {ys.shape} differ in shape")
    _check_binary(yt, "y_true", allow_nan=True)
    thr = np.broadcast_to(np.asarray(threshold, dtype=float), (n_classes,))
    return PreparedTask(task, yt, ys, (ys >= thr).astype(int), names)


def _check_binary(y: np.ndarray, name: str, allow_nan: bool) -> None:
    values = y[~np.isnan(y)] if allow_nan else y
    if not allow_nan and np.isnan(y).any():
        raise ValueError(f"{name} contains NaN")
    if not np.isin(values, (0.0, 1.0)).all():
        raise ValueError(f"{name} must contain only 0 and 1{' (or NaN)' if allow_nan else ''}")


def class_columns(p: PreparedTask) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """One binary problem per class: (name, y_true, y_score, y_pred), NaN rows removed.
    Binary task: the positive class only."""
    if p.task == "binary":
        return [(p.class_names[1], p.y_true, p.y_score, p.y_pred)]
    out = []
    for c, name in enumerate(p.class_names):
        if p.task == "multiclass":
            out.append((name, (p.y_true == c).astype(int), p.y_score[:, c],
                        (p.y_pred == c).astype(int)))
        else:
            keep = ~np.isnan(p.y_true[:, c])
            out.append((name, p.y_true[keep, c].astype(int), p.y_score[keep, c],
                        p.y_pred[keep, c]))
    return out


def one_value_note(y: np.ndarray) -> str | None:
    if y.size == 0:
        return "no labelled cases"
    if y.min() == y.max():
        return f"only {'positives' if y[0] == 1 else 'negatives'}: AUC undefined"
    return None
