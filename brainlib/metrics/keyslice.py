"""Key-slice selection tasks (Wang et al., DrCT2, section IV, Algorithm 1, Tables 5-6).

Given each scan's slice attention and which slices show the lesion (`key`), measure whether
the most attended slices are key slices:

- ``easy``: scans with >= 5 key slices; score = key slices among the top 5 / 5.
- ``difficult``: scans with 1 to 5 key slices; score = 1 if any of the top 5 is key.
- ``comprehensive``: scans with h >= 1 key slices; score = key slices among the top h / h.

`key_slice_task` returns the mean score in percent and the number of scans counted.
`key_slice_recall` is Table 6's per-disease accuracy: over all key slices of a disease, the
share found among each scan's top-h slices (slice-weighted, so its "amount" is slices).
Ties in attention go to the lower slice index, so results are deterministic.

Scans shorter than the sequence length repeat slices in the sampled sequence. Pass
`positions` (the slice index of each sequence position) and each distinct slice counts once,
in h and in the hits: a repeated slice keeps its highest attention (its best rank; ties to the
first occurrence), is key if any copy is, and its other copies drop out of the ranking.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

TASKS: tuple[str, ...] = ("easy", "difficult", "comprehensive")
TOP = 5  # the paper's report shows and scores the top five slices


def _check(attention: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    att = np.asarray(attention, dtype=float)
    k = np.asarray(key)
    if att.ndim != 2:
        raise ValueError(f"attention must be (n_scans, m), got shape {att.shape}")
    if k.shape != att.shape:
        raise ValueError(f"key shape {k.shape} differs from attention shape {att.shape}")
    if k.dtype != bool:
        if not np.isin(k, (0, 1)).all():
            raise ValueError("key must be boolean (or 0/1)")
        k = k.astype(bool)
    if not np.isfinite(att).all():
        raise ValueError("attention contains NaN or infinite values")
    return att, k


def _distinct(att: np.ndarray, key: np.ndarray, positions: np.ndarray | None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Attention and key with repeated slices counted once: per scan, the copy of a slice
    with the highest attention (first on ties) stays, key if any copy is; the others get
    attention -inf (ranked last) and key False (never a hit, not in h)."""
    if positions is None:
        return att, key
    pos = np.asarray(positions)
    if pos.shape != att.shape:
        raise ValueError(f"positions shape {pos.shape} differs from attention shape {att.shape}")
    att, key = att.copy(), key.copy()
    for i in range(att.shape[0]):
        if len(np.unique(pos[i])) == pos.shape[1]:
            continue
        order = np.argsort(-att[i], kind="stable")  # best copy of each slice comes first
        slices, first = np.unique(pos[i][order], return_index=True)
        keep = np.zeros(att.shape[1], bool)
        keep[order[first]] = True
        shown = {int(p) for p in pos[i][key[i]]}  # a slice is key if any copy is marked key
        key[i, order[first]] = [int(p) in shown for p in slices]
        att[i, ~keep] = -np.inf
        key[i, ~keep] = False
    return att, key


def _ranked_hits(att: np.ndarray, key: np.ndarray) -> np.ndarray:
    """key re-ordered by descending attention (stable): row i, column r = is rank-r slice key."""
    order = np.argsort(-att, axis=1, kind="stable")
    return np.take_along_axis(key, order, axis=1)


def key_slice_task(
    attention: np.ndarray,
    key: np.ndarray,
    task: Literal["easy", "difficult", "comprehensive"],
    positions: np.ndarray | None = None,
) -> tuple[float, int]:
    """Algorithm 1: mean score in percent over the scans the task counts, and their number.

    Args:
        attention: (n_scans, m) slice attention (any monotone score works).
        key: (n_scans, m) bool, True where the slice shows the lesion.
        task: ``easy``, ``difficult`` or ``comprehensive``.
        positions: optional (n_scans, m) slice index of each sequence position; repeated
            slices (scans shorter than m) then count once in h and in the hits.
    Returns:
        (accuracy_percent, n_scans_counted); accuracy is NaN when no scan qualifies.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    att, k = _distinct(*_check(attention, key), positions)
    n_key = k.sum(axis=1)
    hits = _ranked_hits(att, k)
    top = min(TOP, att.shape[1])
    if task == "easy":
        rows = n_key >= TOP
        scores = hits[rows, :top].sum(axis=1) / TOP
    elif task == "difficult":
        rows = (n_key >= 1) & (n_key <= TOP)
        scores = hits[rows, :top].any(axis=1).astype(float)
    else:
        rows = n_key >= 1
        cum = np.cumsum(hits[rows], axis=1)
        h = n_key[rows]
        scores = cum[np.arange(len(h)), h - 1] / h if len(h) else np.zeros(0)
    n = int(rows.sum())
    return (float(np.mean(scores) * 100.0) if n else float("nan")), n


def key_slice_recall(attention: np.ndarray, key: np.ndarray,
                     positions: np.ndarray | None = None) -> tuple[float, int]:
    """Table 6: key slices found among each scan's top-h (h = its key count), over all key slices.

    `positions` as in `key_slice_task` (each distinct slice counted once).
    Returns (accuracy_percent, amount) where amount is the total number of distinct key slices.
    """
    att, k = _distinct(*_check(attention, key), positions)
    n_key = k.sum(axis=1)
    rows = n_key >= 1
    amount = int(n_key.sum())
    if not amount:
        return float("nan"), 0
    cum = np.cumsum(_ranked_hits(att[rows], k[rows]), axis=1)
    found = cum[np.arange(int(rows.sum())), n_key[rows] - 1].sum()
    return float(found / amount * 100.0), amount
