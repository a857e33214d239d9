"""Stratified, group-aware, multi-label k-fold split (iterative stratification)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def kfold_split(
    labels: Any, n_splits: int = 5, seed: int = 0, groups: Sequence[Any] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, group-aware k-fold split for single- or multi-label targets.

    Uses the iterative stratification of Sechidis, Tsoumakas & Vlahavas (ECML-PKDD 2011) at
    the level of groups (patients): each group is one unit carrying the sum of its members'
    labels and its size, so a group is never split between folds. The label with the fewest
    units left is placed first, each unit going to the fold that most lacks that label (ties:
    the fold most lacking cases, then random). A 1-D label vector (classes) is one-hot encoded,
    which reduces this to ordinary stratification. NaN (unknown) labels count as 0. Units
    with no positive label are placed last, to the folds most lacking cases.

    Args:
        labels: (N,) class labels or (N, C) binary/NaN matrix.
        groups: (N,) group id per case (e.g. patient); None = every case its own group.

    Returns:
        ``n_splits`` pairs ``(train_idx, test_idx)`` of sorted int arrays; deterministic per seed.
    """
    y = np.asarray(labels)
    if y.ndim == 1:
        _, codes = np.unique(y, return_inverse=True)
        y = np.eye(codes.max() + 1 if codes.size else 0)[codes]
    elif y.ndim != 2:
        raise ValueError(f"labels must be 1-D or 2-D, got shape {y.shape}")
    y = np.nan_to_num(y.astype(float), nan=0.0)
    n = y.shape[0]
    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}")
    if groups is None:
        unit_of = np.arange(n)
    else:
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} entries for {n} labels")
        _, unit_of = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    n_units = int(unit_of.max()) + 1 if n else 0
    if n_units < n_splits:
        raise ValueError(f"cannot make {n_splits} folds from {n_units} "
                         f"{'groups' if groups is not None else 'cases'}")
    unit_labels = np.zeros((n_units, y.shape[1]))
    np.add.at(unit_labels, unit_of, y)
    unit_size = np.bincount(unit_of, minlength=n_units).astype(float)

    rng = np.random.default_rng(seed)
    need_label = np.tile(unit_labels.sum(0) / n_splits, (n_splits, 1))
    need_size = np.full(n_splits, n / n_splits)
    fold_of = np.full(n_units, -1)
    remaining = unit_labels.copy()

    def place(unit: int, label: int | None) -> None:
        candidates = np.arange(n_splits)
        if label is not None:
            col = need_label[:, label]
            candidates = candidates[col == col.max()]
        sizes = need_size[candidates]
        candidates = candidates[sizes == sizes.max()]
        fold = int(rng.choice(candidates))
        fold_of[unit] = fold
        need_label[fold] -= unit_labels[unit]
        need_size[fold] -= unit_size[unit]
        remaining[unit] = 0

    while True:
        counts = (remaining > 0).sum(0)
        active = np.flatnonzero(counts)
        if active.size == 0:
            break
        rarest = active[counts[active] == counts[active].min()]
        label = int(rng.choice(rarest))
        units = np.flatnonzero(remaining[:, label] > 0)
        for unit in rng.permutation(units):
            place(int(unit), label)
    for unit in rng.permutation(np.flatnonzero(fold_of < 0)):
        place(int(unit), None)

    case_fold = fold_of[unit_of]
    folds = []
    for k in range(n_splits):
        test = np.flatnonzero(case_fold == k)
        if test.size == 0:
            raise ValueError(f"fold {k} is empty: too few cases/groups for {n_splits} folds")
        folds.append((np.flatnonzero(case_fold != k), test))
    return folds
