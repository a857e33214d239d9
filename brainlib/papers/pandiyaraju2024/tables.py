"""Tables of the pandiyaraju2024 notebook, computed from the saved per-case outputs.

Segmentation metrics (defined once here, stated in the table):

* per image: pixel accuracy, IoU = TP / (TP + FP + FN), Dice = 2 TP / (2 TP + FP + FN); an
  image whose truth and prediction are both empty (normal) scores ``empty_dice`` (1), a
  non-empty prediction on an empty truth 0; the table reports the mean over test images.
* dataset-level: the same formulas on the pixel counts pooled over all test images.

Classification: accuracy and macro-averaged F1, precision, recall over the three classes;
loss = mean cross-entropy. Every CI is a 95 % percentile bootstrap over test cases.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from brainlib.claims import load_claims
from brainlib.metrics import bootstrap_ci
from brainlib.papers.pandiyaraju2024.settings import PAPER
from brainlib.papers.pandiyaraju2024.train import ClsOutput, SegOutput

SEG_CLAIMS = {"pixel accuracy": "abstract/segmentation/accuracy", "loss": "abstract/segmentation/loss",
              "IoU": "abstract/segmentation/iou", "Dice": "abstract/segmentation/dice"}
CLS_CLAIMS = {"accuracy": "abstract/classification/accuracy", "loss": "abstract/classification/loss",
              "F1": "abstract/classification/f1", "precision": "abstract/classification/precision",
              "recall": "abstract/classification/recall"}


def paper_value(claim_id: str) -> float:
    """The abstract's number for a claim id (percent)."""
    claims = load_claims(PAPER).set_index("claim_id")
    return float(claims.at[claim_id, "value"])


def pixel_counts(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, 4) per-image ``tp, fp, fn, tn`` of bool masks (N, S, S)."""
    p, t = pred.reshape(len(pred), -1), truth.reshape(len(truth), -1)
    tp = (p & t).sum(1)
    fp = (p & ~t).sum(1)
    fn = (~p & t).sum(1)
    return np.stack([tp, fp, fn, p.shape[1] - tp - fp - fn], 1).astype(np.int64)


def per_image_metrics(counts: np.ndarray, empty: float = 1.0) -> pd.DataFrame:
    """Pixel accuracy, IoU and Dice of each image from its counts (see module docstring)."""
    tp, fp, fn, tn = counts.T.astype(float)
    union = tp + fp + fn
    both_empty = union == 0
    iou = np.where(both_empty, empty, tp / np.where(union == 0, 1, union))
    dice = np.where(both_empty, empty, 2 * tp / np.where(union == 0, 1, 2 * tp + fp + fn))
    return pd.DataFrame({"pixel_accuracy": (tp + tn) / counts.sum(1), "iou": iou, "dice": dice})


def pooled(counts: np.ndarray) -> dict[str, float]:
    """Dataset-level pixel accuracy, IoU and Dice of pooled counts."""
    tp, fp, fn, tn = counts.sum(0).astype(float)
    return {"pixel_accuracy": (tp + tn) / max(tp + fp + fn + tn, 1),
            "iou": tp / max(tp + fp + fn, 1), "dice": 2 * tp / max(2 * tp + fp + fn, 1)}


def _ci(fn: Callable[[np.ndarray], float], rows: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    res = bootstrap_ci(lambda yt, ys: fn(yt), rows, np.zeros(len(rows)), n_boot=n_boot, seed=seed)
    return res.estimate, res.low, res.high


def segmentation_predictions(seg: SegOutput, threshold: float, empty: float) -> pd.DataFrame:
    """Per-case frame saved as predictions/segmentation.csv (recomputable)."""
    counts = pixel_counts(seg.prob >= threshold, seg.truth)
    per = per_image_metrics(counts, empty)
    return pd.DataFrame({"case_id": seg.ids, "label_lesion": seg.truth.reshape(len(seg.ids), -1).any(1).astype(int),
                         "score_lesion": seg.prob.reshape(len(seg.ids), -1).max(1),
                         "tp": counts[:, 0], "fp": counts[:, 1], "fn": counts[:, 2], "tn": counts[:, 3],
                         **{k: per[k].to_numpy() for k in per}, "loss": seg.loss})


def segmentation_table(pred: pd.DataFrame, n_boot: int, seed: int, empty: float = 1.0) -> pd.DataFrame:
    """Test-split segmentation metrics in percent with CIs, beside the abstract."""
    counts = pred[["tp", "fp", "fn", "tn"]].to_numpy()
    lesion = pred["label_lesion"].to_numpy() == 1
    rows = []
    for metric, key in (("pixel accuracy", "pixel_accuracy"), ("IoU", "iou"), ("Dice", "dice")):
        def mean_of(c: np.ndarray, k: str = key) -> float:
            return float(per_image_metrics(c, empty)[k].mean())

        def pooled_of(c: np.ndarray, k: str = key) -> float:
            return float(pooled(c)[k])

        for scope, fn, sel in (("per image (mean)", mean_of, slice(None)),
                               ("per image, lesion images only", mean_of, lesion),
                               ("dataset-level (pooled pixels)", pooled_of, slice(None))):
            if not len(counts[sel]):
                continue
            est, lo, hi = _ci(fn, counts[sel], n_boot, seed)
            rows.append(_row(metric, scope, est * 100, lo * 100, hi * 100, int(len(counts[sel]))))
    loss = pred["loss"].to_numpy()[:, None]
    est, lo, hi = _ci(lambda r: float(r.mean()), loss, n_boot, seed)
    rows.append(_row("loss", "Dice + BCE per image (mean), x 100", est * 100, lo * 100, hi * 100, len(loss)))
    return pd.DataFrame(rows)


def _row(metric: str, scope: str, v: float, lo: float, hi: float, n: int) -> dict:
    claim = SEG_CLAIMS.get(metric) or CLS_CLAIMS.get(metric)
    return {"metric": metric, "scope": scope, "value %": round(v, 2), "ci low": round(lo, 2),
            "ci high": round(hi, 2), "n": n, "abstract %": paper_value(claim) if claim else np.nan}


def classification_predictions(out: ClsOutput, classes: tuple[str, ...]) -> pd.DataFrame:
    """Per-case frame saved as predictions/classification_<input>.csv."""
    frame = {"case_id": out.ids}
    frame.update({f"label_{c}": out.y_true[:, k].astype(int) for k, c in enumerate(classes)})
    frame.update({f"score_{c}": out.y_score[:, k] for k, c in enumerate(classes)})
    frame["loss"] = out.loss
    return pd.DataFrame(frame)


def macro_scores(y: np.ndarray, p: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy and macro precision / recall / F1 over ``n_classes`` (0 where undefined, as
    scikit-learn's ``zero_division=0``); numpy only, so bootstrapping stays fast."""
    cm = np.zeros((n_classes, n_classes))
    np.add.at(cm, (y, p), 1)
    tp = np.diag(cm)
    pred, true = cm.sum(0), cm.sum(1)
    prec = np.divide(tp, pred, out=np.zeros(n_classes), where=pred > 0)
    rec = np.divide(tp, true, out=np.zeros(n_classes), where=true > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros(n_classes), where=(prec + rec) > 0)
    return {"accuracy": float(tp.sum() / max(len(y), 1)), "precision": float(prec.mean()),
            "recall": float(rec.mean()), "F1": float(f1.mean())}


def _cls_metric(name: str, classes: tuple[str, ...]) -> Callable[[np.ndarray, np.ndarray], float]:
    def fn(y_true: np.ndarray, y_score: np.ndarray) -> float:
        return macro_scores(y_true.argmax(1), y_score.argmax(1), len(classes))[name]
    return fn


def classification_rows(pred: pd.DataFrame, input_name: str, classes: tuple[str, ...],
                        n_boot: int, seed: int) -> list[dict]:
    """Accuracy, loss, macro F1 / precision / recall of one input (percent, with CIs)."""
    y = pred[[f"label_{c}" for c in classes]].to_numpy()
    s = pred[[f"score_{c}" for c in classes]].to_numpy()
    rows = []
    for metric in ("accuracy", "F1", "precision", "recall"):
        res = bootstrap_ci(_cls_metric(metric, classes), y, s, n_boot=n_boot, seed=seed)
        rows.append({"input": input_name, **_row(metric, "macro over classes" if metric != "accuracy"
                                                 else "all cases", res.estimate * 100,
                                                 res.low * 100, res.high * 100, len(y))})
    loss = pred["loss"].to_numpy()
    if np.isfinite(loss).all():
        est, lo, hi = _ci(lambda r: float(r.mean()), loss[:, None], n_boot, seed)
        rows.append({"input": input_name, **_row("loss", "cross-entropy (mean), x 100", est * 100,
                                                 lo * 100, hi * 100, len(loss))})
    return rows


def classification_table(preds: dict[str, pd.DataFrame], classes: tuple[str, ...], n_boot: int,
                         seed: int) -> pd.DataFrame:
    """One block of rows per classifier input."""
    rows = [r for name, p in preds.items() for r in classification_rows(p, name, classes, n_boot, seed)]
    return pd.DataFrame(rows)


def confusion_frame(pred: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Counts, rows = true class, columns = predicted."""
    y = pred[[f"label_{c}" for c in classes]].to_numpy().argmax(1)
    p = pred[[f"score_{c}" for c in classes]].to_numpy().argmax(1)
    cm = np.zeros((len(classes), len(classes)), int)
    np.add.at(cm, (y, p), 1)
    return pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))
