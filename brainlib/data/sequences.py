"""Fixed-length sequence sampling (Wang et al., DrCT1/DrCT2, section VI.A.1).

Scans with different numbers of slices are sampled to the same length (32 slices for CQ500,
28 for RSNA in the paper); "the unsampled data are used to generate a new CT set for data
enhancement": the slices a sequence leaves out form further sequences of the same length.
`load_all_slices` reads every slice of one scan of a sequence-view dataset.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def fixed_length_sequences(n_slices: int, seq_len: int, extra: bool = True) -> list[np.ndarray]:
    """Slice indices of the fixed-length sequences of one scan.

    Args:
        n_slices: slices in the scan (>= 1).
        seq_len: slices per sequence (>= 1).
        extra: also return the extra sequences made of the slices left out, evenly spaced,
            while at least `seq_len` of them remain.

    Returns:
        The first sequence (`seq_len` evenly spaced indices, rounded from a linspace over the
        scan) followed, with `extra`, by the extra ones. Scans shorter than `seq_len` repeat
        slices (evenly spaced with repeats) and have no extra sequence.

    Raises:
        ValueError: `n_slices` or `seq_len` below 1.
    """
    if n_slices < 1 or seq_len < 1:
        raise ValueError(f"need n_slices >= 1 and seq_len >= 1, got {n_slices}, {seq_len}")
    first = np.round(np.linspace(0, n_slices - 1, seq_len)).astype(np.int64)
    out = [first]
    if extra:
        rest = np.setdiff1d(np.arange(n_slices), first)
        while len(rest) >= seq_len:
            pick = rest[np.round(np.linspace(0, len(rest) - 1, seq_len)).astype(np.int64)]
            out.append(pick)
            rest = np.setdiff1d(rest, pick)
    return out


def load_all_slices(dataset: Any, i: int) -> torch.Tensor:
    """Every slice of scan `i` of a sequence-view dataset (Z, C, S, S), whatever `seq_len`
    the dataset was opened with (restored afterwards)."""
    seq_len = getattr(dataset, "seq_len", None)
    dataset.seq_len = None
    try:
        return dataset.load_x(i)
    finally:
        dataset.seq_len = seq_len
