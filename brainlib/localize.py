"""Weakly supervised localisation: CAM, CAM -> box, IoU, AP at IoU > 0.5 and mAP.

He et al. 2024 (Heliyon e30270), section 2.1.3 and eq. 4.1: the class activation map
(Zhou et al. 2016) of the attended fused features is binarised at 20 % of its maximum
("twenty percent of the maximum activation value ... as the binarization threshold"), the
bounding rectangle of the largest connected component is the predicted box, and a box is a
true positive when its IoU with a ground-truth box exceeds 0.5. AP follows eq. 4.1,
``AP = sum_k P(k) dR(k)`` with dR(k) "the evenly divided interval between [0, 1]": precision
interpolated (the highest precision at any recall >= r) at `AP_RECALL_POINTS` evenly spaced
recall points r = 0, 1/100, ..., 1 (the COCO convention; the paper does not give n), with
recall over all ground-truth boxes (`interpolated_average_precision`). The step-wise AP of
scikit-learn (`average_precision`) is reported beside it. mAP is the mean over subtypes. CAM
is read from *named* layers of the model (the MONAI `visualize` pattern), so any GAP + linear
classifier works.

Boxes are ``(x0, y0, x1, y1)`` in pixels with x1, y1 exclusive (a one-pixel box at (3, 5) is
``(3, 5, 4, 6)``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import ndimage
from sklearn.metrics import average_precision_score

from brainlib.data.base import DataFileError
from brainlib.data.csvfile import read_csv_bounded

__all__ = [
    "class_activation_maps", "cam_box", "mask_boxes", "box_iou", "match_detections",
    "average_precision", "interpolated_average_precision", "localization_ap", "load_box_csv",
    "BoxCsvError",
    "AP_RECALL_POINTS", "BOX_COLUMNS",
]

Box = tuple[int, int, int, int]
BOX_COLUMNS = ("image_id", "class", "x0", "y0", "x1", "y1")
_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity
#: recall points of eq. 4.1's evenly divided [0, 1] (COCO's 101; the paper does not give n)
AP_RECALL_POINTS = 101


def _named(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        raise KeyError(f"model has no layer named {name!r}; e.g. {list(modules)[:8]}")
    return modules[name]


@torch.no_grad()
def class_activation_maps(
    model: nn.Module,
    x: torch.Tensor,
    target_layer: str,
    classifier_layer: str,
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """CAM for every class: sum_k w_ck * F_k(x), upsampled bilinearly to the input size.

    Args:
        model: network whose output is ``classifier(GAP(target_layer output))``.
        x: input batch.
        target_layer, classifier_layer: names from ``model.named_modules()``.
        size: output (H, W); default the input's spatial size.
    Returns:
        (cams (B, C, H, W) float32, logits (B, C) float32).
    """
    feats: list[torch.Tensor] = []
    handle = _named(model, target_layer).register_forward_hook(
        lambda _m, _i, out: feats.append(out.detach()))
    was_training = model.training
    model.eval()
    try:
        logits = model(x)
    finally:
        handle.remove()
        model.train(was_training)
    if not feats:
        raise RuntimeError(f"layer {target_layer!r} was not called in the forward pass")
    fc = _named(model, classifier_layer)
    if not isinstance(fc, nn.Linear):
        raise TypeError(f"{classifier_layer!r} must be nn.Linear, got {type(fc).__name__}")
    fmap = feats[-1]
    cams = torch.einsum("ck,bkhw->bchw", fc.weight.to(fmap.dtype), fmap)
    cams = F.interpolate(cams, size=size or tuple(x.shape[-2:]), mode="bilinear",
                         align_corners=False)
    return cams.float().cpu().numpy(), logits.float().cpu().numpy()


def cam_box(cam: np.ndarray, threshold: float = 0.2) -> Box | None:
    """Box of the largest connected region where the CAM is >= `threshold` of its maximum.

    He et al., Sec. 2.1.3: the binarisation threshold is 20 % of the maximum activation, i.e.
    ``cam >= threshold * max(cam)`` on the raw map (no shift to zero). A map whose maximum is
    not positive has no activation to threshold and gives None, as does a flat map.
    """
    cam = np.asarray(cam, dtype=np.float64)
    if cam.ndim != 2:
        raise ValueError(f"cam must be 2-D, got shape {cam.shape}")
    top = cam.max()
    if not np.isfinite(top) or top <= 0 or cam.min() == top:
        return None
    mask = cam >= threshold * top
    labels, n = ndimage.label(mask, structure=_EIGHT)
    sizes = np.bincount(labels.ravel())[1:]
    ys, xs = np.nonzero(labels == int(np.argmax(sizes)) + 1)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def mask_boxes(mask: np.ndarray, min_pixels: int = 1) -> list[Box]:
    """One box per 8-connected component of a binary mask (components >= `min_pixels`)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    labels, _ = ndimage.label(mask, structure=_EIGHT)
    boxes = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None or int((labels[sl] == i).sum()) < min_pixels:
            continue
        boxes.append((sl[1].start, sl[0].start, sl[1].stop, sl[0].stop))
    return boxes


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (exclusive upper corner)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, iw) * max(0.0, ih)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _check_columns(df: pd.DataFrame, cols: Iterable[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; has {list(df.columns)}")


def match_detections(
    detections: pd.DataFrame, ground_truth: pd.DataFrame, iou_threshold: float = 0.5,
) -> pd.DataFrame:
    """Greedy VOC matching, highest score first: a detection is a TP when its IoU with a
    not-yet-matched ground-truth box of the same image and class is > `iou_threshold`.

    Returns the detections (sorted by score) with columns ``iou`` and ``tp``.
    """
    _check_columns(detections, BOX_COLUMNS + ("score",), "detections")
    _check_columns(ground_truth, BOX_COLUMNS, "ground truth")
    det = detections.sort_values("score", ascending=False, kind="mergesort").reset_index(drop=True)
    gt_by_key: dict[tuple, list] = {}
    for img, cls, x0, y0, x1, y1 in zip(*(ground_truth[c] for c in BOX_COLUMNS)):
        gt_by_key.setdefault((str(img), cls), []).append([(x0, y0, x1, y1), False])
    ious, tps = [], []
    for img, cls, x0, y0, x1, y1 in zip(*(det[c] for c in BOX_COLUMNS)):
        cands = gt_by_key.get((str(img), cls), [])
        box = (x0, y0, x1, y1)
        best, best_i = 0.0, -1
        if not any(pd.isna(v) for v in box):
            for i, (g, used) in enumerate(cands):
                iou = box_iou(box, g)
                if not used and iou > best:
                    best, best_i = iou, i
        tp = best_i >= 0 and best > iou_threshold
        if tp:
            cands[best_i][1] = True
        ious.append(best)
        tps.append(tp)
    return det.assign(iou=ious, tp=tps)


def average_precision(scores: np.ndarray, tp: np.ndarray, n_ground_truth: int) -> float:
    """Step-wise AP (scikit-learn's, no interpolation) with recall over *all* ground-truth boxes.

    scikit-learn's AP normalises recall by the TPs among the detections; ground-truth boxes
    that no detection matched are missed, so its value is scaled by n_tp / n_ground_truth.
    Reported beside eq. 4.1's `interpolated_average_precision`.
    """
    tp = np.asarray(tp, dtype=bool)
    if n_ground_truth <= 0:
        raise ValueError("average precision needs at least one ground-truth box")
    n_tp = int(tp.sum())
    if n_tp == 0:
        return 0.0
    if n_tp == len(tp):
        return n_tp / n_ground_truth
    return float(average_precision_score(tp, np.asarray(scores, dtype=float))) * n_tp / n_ground_truth


def interpolated_average_precision(scores: np.ndarray, tp: np.ndarray, n_ground_truth: int,
                                   n_points: int = AP_RECALL_POINTS) -> float:
    """Eq. 4.1: AP = sum_k P(k) dR(k) over `n_points` evenly spaced recall points in [0, 1].

    Detections are ranked by score (ties keep their order); at each recall point r the
    precision is interpolated as the highest precision reached at any recall >= r (0 when r
    is never reached); AP is their mean (dR = 1 / n_points). Recall counts *all* ground-truth
    boxes, so boxes no detection matched lower the AP.
    """
    if n_ground_truth <= 0:
        raise ValueError("average precision needs at least one ground-truth box")
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    tp = np.asarray(tp, dtype=bool)
    order = np.argsort(-np.asarray(scores, dtype=float), kind="mergesort")
    hits = np.cumsum(tp[order])
    if len(hits) == 0 or hits[-1] == 0:
        return 0.0
    recall = hits / n_ground_truth
    precision = hits / np.arange(1, len(hits) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at recall >= here
    points = np.linspace(0.0, 1.0, n_points)
    idx = np.searchsorted(recall, points - 1e-12, side="left")  # first rank reaching each point
    interp = np.where(idx < len(recall), envelope[np.minimum(idx, len(recall) - 1)], 0.0)
    return float(interp.mean())


def localization_ap(
    detections: pd.DataFrame,
    ground_truth: pd.DataFrame,
    classes: Sequence[str],
    iou_threshold: float = 0.5,
    min_positives: int = 5,
    n_points: int = AP_RECALL_POINTS,
) -> pd.DataFrame:
    """AP per class and their mean (mAP), flagging classes with too few ground-truth boxes.

    A class with fewer than `min_positives` ground-truth boxes gets AP NaN and a note (the
    paper leaves EDH out for that reason); mAP averages the remaining classes.
    Returns columns ``class, n_ground_truth, n_detections, n_tp, ap, ap_step, note``, last row
    ``mAP``: ``ap`` is eq. 4.1 (`interpolated_average_precision`), ``ap_step`` the step-wise AP
    of scikit-learn (`average_precision`).
    """
    matched = match_detections(detections, ground_truth, iou_threshold)
    rows = []
    for cls in classes:
        d = matched[matched["class"] == cls]
        n_gt = int((ground_truth["class"] == cls).sum())
        note = ""
        if n_gt < min_positives:
            ap = step = float("nan")
            note = f"too few positives ({n_gt} < {min_positives}); AP not computed"
        else:
            score, hit = d["score"].to_numpy(), d["tp"].to_numpy()
            ap = interpolated_average_precision(score, hit, n_gt, n_points)
            step = average_precision(score, hit, n_gt)
        rows.append({"class": cls, "n_ground_truth": n_gt, "n_detections": len(d),
                     "n_tp": int(d["tp"].sum()), "ap": ap, "ap_step": step, "note": note})
    table = pd.DataFrame(rows)
    valid, valid_step = table["ap"].dropna(), table["ap_step"].dropna()
    rows.append({"class": "mAP", "n_ground_truth": int(table["n_ground_truth"].sum()),
                 "n_detections": int(table["n_detections"].sum()),
                 "n_tp": int(table["n_tp"].sum()),
                 "ap": float(valid.mean()) if len(valid) else float("nan"),
                 "ap_step": float(valid_step.mean()) if len(valid_step) else float("nan"),
                 "note": f"mean over {len(valid)} of {len(table)} classes"})
    return pd.DataFrame(rows)


class BoxCsvError(DataFileError):
    """A ground-truth box CSV that cannot be used; ``path`` and ``reason`` (a ValueError)."""


def load_box_csv(path: str | Path) -> pd.DataFrame:
    """Ground-truth boxes for real data: a CSV with ``image_id, class, x0, y0, x1, y1``.

    Coordinates are pixels of the original image (x1, y1 exclusive). Read through
    :func:`brainlib.data.csvfile.read_csv_bounded` (size limits before parsing). Raises
    :class:`BoxCsvError` naming the file for a missing file, missing columns, non-numeric or
    non-finite coordinates or empty boxes; ``image_id`` is matched to dataset ids, never a path.
    """
    path = Path(path)
    if not path.is_file():
        raise BoxCsvError(path, "box CSV not found")
    df = read_csv_bounded(path, dtype={"image_id": str, "class": str}, keep_default_na=False)
    missing = [c for c in BOX_COLUMNS if c not in df.columns]
    if missing:
        raise BoxCsvError(path, f"box CSV lacks columns {missing} (has {list(df.columns)[:20]})")
    coords = df[["x0", "y0", "x1", "y1"]].apply(pd.to_numeric, errors="coerce").astype(float)
    bad = (~np.isfinite(coords.to_numpy()).all(axis=1) | (coords["x1"] <= coords["x0"]).to_numpy()
           | (coords["y1"] <= coords["y0"]).to_numpy())
    if bad.any():
        raise BoxCsvError(path, f"{int(bad.sum())} rows with missing, non-finite or empty boxes, "
                                f"first at line {int(np.flatnonzero(bad)[0]) + 2}")
    out = df[list(BOX_COLUMNS)].copy()
    out[["x0", "y0", "x1", "y1"]] = coords
    out["image_id"] = out["image_id"].astype(str)
    return out
