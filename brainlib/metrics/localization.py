"""Uncertainty of localisation mAP: bootstrap over images, and the paired mAP difference.

He et al. 2024 (Heliyon e30270) report a single mAP of CAM boxes at IoU > 0.5 (section 2.2.2,
eq. 4.1) and claim multiscale fusion localises better. Both need an interval: the mAP of
each model on the *same* bootstrap resamples of the test images (`map_bootstrap`), and the
percentile CI and two-sided p of the difference (`paired_map_difference`).

Matching (greedy VOC, `brainlib.localize.match_detections`) is done once per model; a
resample re-weights the matched detections and ground-truth boxes of each image by how
often the image was drawn, instead of re-matching. The AP of a resample is eq. 4.1's
interpolated AP (`brainlib.localize.interpolated_average_precision`), the reported one.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from brainlib.localize import AP_RECALL_POINTS, interpolated_average_precision, match_detections
from brainlib.metrics.multilabel import percentile_ci

__all__ = ["map_bootstrap", "paired_map_difference"]


def _gt_counts(gt: pd.DataFrame, pos: Mapping[str, int], classes: Sequence[str]) -> np.ndarray:
    """(images, classes) number of ground-truth boxes."""
    counts = np.zeros((len(pos), len(classes)))
    col = {c: j for j, c in enumerate(classes)}
    for cid, cls in zip(gt["image_id"], gt["class"]):
        if cls in col and cid in pos:
            counts[pos[cid], col[cls]] += 1
    return counts


def _matched_arrays(det: pd.DataFrame, gt: pd.DataFrame, pos: Mapping[str, int],
                    classes: Sequence[str], iou_threshold: float
                    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per class: (score, tp, image position) of the matched detections, highest score first."""
    m = match_detections(det, gt, iou_threshold)
    return [(m.loc[m["class"] == c, "score"].to_numpy(),
             m.loc[m["class"] == c, "tp"].to_numpy(),
             m.loc[m["class"] == c, "image_id"].map(pos).to_numpy(dtype=np.intp))
            for c in classes]


def _resampled_map(arrays: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                   weight: np.ndarray, n_gt: np.ndarray, n_points: int) -> float:
    """mAP of one model when image i is drawn weight[i] times (classes without boxes skipped)."""
    aps = []
    for j, (score, tp, img) in enumerate(arrays):
        if n_gt[j] == 0:
            continue
        rep = np.repeat(np.arange(len(score)), weight[img])
        aps.append(interpolated_average_precision(score[rep], tp[rep], int(n_gt[j]), n_points)
                   if len(rep) else 0.0)
    return float(np.mean(aps)) if aps else np.nan


def map_bootstrap(detections: Mapping[str, pd.DataFrame], ground_truth: pd.DataFrame,
                  image_ids: Sequence[str], reference: pd.DataFrame, n_boot: int, seed: int,
                  iou_threshold: float = 0.5, n_points: int = AP_RECALL_POINTS
                  ) -> dict[str, np.ndarray]:
    """mAP of each model on the same bootstrap resamples of the test images.

    Args:
        detections: model name -> boxes (``image_id, class, x0, y0, x1, y1, score``).
        ground_truth: boxes (``image_id, class, x0, y0, x1, y1``) of the test images.
        image_ids: every test image (the resampling unit), including those without boxes.
        reference: a `brainlib.localize.localization_ap` table; its classes with a defined
            AP (not NaN, i.e. enough ground-truth boxes) are the ones averaged, in its order.
        n_boot: number of resamples.
        seed: seed of `numpy.random.default_rng`; the same resamples for every model.
        iou_threshold: a detection is a TP when its IoU exceeds this.
        n_points: recall points of eq. 4.1's interpolated AP.

    Returns:
        model name -> array of `n_boot` mAPs. A replicate is NaN when none of the classes
        has a ground-truth box in it; every value is NaN when no class is kept.
    """
    ref = reference[reference["class"] != "mAP"]
    classes = [c for c, ap in zip(ref["class"], ref["ap"]) if not np.isnan(ap)]
    pos = {cid: i for i, cid in enumerate(image_ids)}
    gt_counts = _gt_counts(ground_truth, pos, classes)
    per_model = {name: _matched_arrays(d, ground_truth, pos, classes, iou_threshold)
                 for name, d in detections.items()}
    rng = np.random.default_rng(seed)
    out = {name: np.full(n_boot, np.nan) for name in detections}
    for b in range(n_boot if classes else 0):
        weight = np.bincount(rng.integers(0, len(image_ids), len(image_ids)),
                             minlength=len(image_ids))
        n_gt = weight @ gt_counts
        for name, arrays in per_model.items():
            out[name][b] = _resampled_map(arrays, weight, n_gt, n_points)
    return out


def paired_map_difference(boot_a: np.ndarray, boot_b: np.ndarray,
                          min_valid: int = 10) -> tuple[float, float, float]:
    """95 % percentile CI and two-sided p of mAP(a) - mAP(b) from `map_bootstrap` replicates.

    `boot_a` and `boot_b` must come from the same call (same resamples). The p-value is
    twice the smaller tail share of the differences at or beyond zero, capped at 1.

    Returns:
        (low, high, p); all NaN when fewer than `min_valid` replicates are defined.
    """
    diff = np.asarray(boot_a, dtype=float) - np.asarray(boot_b, dtype=float)
    diff = diff[~np.isnan(diff)]
    if len(diff) < min_valid:
        return float("nan"), float("nan"), float("nan")
    lo, hi = percentile_ci(diff, min_valid=min_valid)
    p = min(1.0, 2 * min(float(np.mean(diff <= 0)), float(np.mean(diff >= 0))))
    return lo, hi, p
