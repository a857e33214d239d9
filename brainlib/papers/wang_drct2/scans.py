"""One scan at a time: the DrCT2 that did not see it, its images, timing, attention data.

Cross-validation works on cached features; Fig. 2, Table 8's time per scan and the attention
viewer go back to the images: the fold's DrCT2 gets its frozen encoder again
(`report_model`) and reads the windowed slices of the scan's test sequence.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from brainlib.data.sequences import load_all_slices
from brainlib.io import read_hu
from brainlib.models.slice_encoder import SliceEncoder
from brainlib.papers.wang_drct2.crossval import CVResult, build_model
from brainlib.papers.wang_drct2.encoder import make_encoder
from brainlib.papers.wang_drct2.settings import WangDrct2Settings
from brainlib.papers.wang_drct2.tables import label_name


def sequence_images(cv: CVResult, scan: int) -> torch.Tensor:
    """Windowed slices (M, 3, S, S) of a scan's test sequence."""
    x = load_all_slices(cv.data.dataset, scan)
    return x[torch.as_tensor(cv.positions[scan])].float()


def report_model(cv: CVResult, scan: int, s: WangDrct2Settings, seed: int,
                 weights: str | None = None) -> tuple[nn.Module, SliceEncoder]:
    """The DrCT2 trained on the folds that did not contain `scan`, with its encoder (the one
    that produced the cached features)."""
    fold = int(cv.fold_of[scan])
    enc, _ = make_encoder(cv.data.encoder_kind, s, seed, weights, device="cpu")
    v = next(v for v in cv.variants if v.name == "drct2")
    model = build_model(v, cv.data, s, seed)
    model.load_state_dict(cv.states[("drct2", fold)])
    model.encoder = enc
    return model.eval(), enc


def time_per_scan(cv: CVResult, s: WangDrct2Settings, n_scans: int = 3, seed: int = 0,
                  weights: str | None = None) -> float:
    """Seconds to diagnose one scan from its slices on this machine: encoder at both sizes
    (only the proposed slices are zoomed) + DrCT2, median over `n_scans` scans."""
    model, _ = report_model(cv, 0, s, seed, weights)
    times = []
    for i in range(min(n_scans, cv.data.n_scans)):
        x = sequence_images(cv, i)[None]
        t0 = time.perf_counter()
        model.forward_images(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def report_scans(cv: CVResult, n: int) -> list[int]:
    """A handful of test scans for Fig. 2: diseased first (most key slices), then healthy."""
    y = np.nan_to_num(cv.data.labels).max(axis=1) > 0
    order = sorted(range(cv.data.n_scans), key=lambda i: (not y[i], cv.data.case_ids[i]))
    return order[:n]


def attention_example(cv: CVResult, scan: int | None = None,
                      variant: str = "drct2") -> dict[str, Any]:
    """Data for `brainlib.widgets.SeriesAttentionViewer` on one test scan.

    Returns ``slices_hu`` (M, H, W) in HU (the scan's test sequence, read from its DICOM
    files), the out-of-fold slice ``attention`` (M,) and ``probabilities`` {label: p} of
    `variant`, the ``case_id``, ``positions`` (slice index in the scan) and ``key`` (M,)
    slices with any lesion (truth, RSNA layout; None otherwise). Default scan: the first of
    `report_scans`.
    """
    if scan is None:
        scan = report_scans(cv, 1)[0]
    if not 0 <= scan < cv.data.n_scans:
        raise IndexError(f"scan {scan} out of range 0..{cv.data.n_scans - 1}")
    if variant not in cv.attention:
        raise KeyError(f"no attention for variant {variant!r}; have {sorted(cv.attention)}")
    paths = list(cv.data.dataset.metadata.at[scan, "paths"])
    pos = np.asarray(cv.positions[scan])
    hu = np.stack([np.asarray(read_hu(paths[int(i)]), np.float32) for i in pos])
    sl = cv.data.slice_labels[scan]
    key = None if sl is None else np.nan_to_num(sl[pos]).max(axis=1) > 0
    probs = {label_name(cv.name, c): float(p)
             for c, p in zip(cv.data.classes, cv.scores[variant][scan])}
    return {"slices_hu": hu, "attention": cv.attention[variant][scan].astype(np.float64),
            "probabilities": probs, "case_id": cv.data.case_ids[scan], "positions": pos,
            "key": key}
