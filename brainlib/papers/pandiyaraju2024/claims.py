"""Measured values of Pandiyaraju et al. (2024) by claim id, and the positive controls.

The claims (``brainlib/claims/pandiyaraju2024.yaml``) are the abstract's numbers in percent;
we record the matching rows of the regenerated tables as fractions (the comparison converts). Which row stands for
the abstract's number is a reading: Dice and IoU per image (mean over test images, normal
images included), the classifier on *predicted* masks (the paper's pipeline: segment, then
classify the segmented tumour), macro averages over the three classes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from brainlib.experiment import Experiment
from brainlib.papers.pandiyaraju2024.tables import CLS_CLAIMS, SEG_CLAIMS, pixel_counts, pooled

#: Scope of the segmentation table row recorded for each claim.
SEG_SCOPE = {"pixel accuracy": "per image (mean)", "IoU": "per image (mean)",
             "Dice": "per image (mean)", "loss": "Dice + BCE per image (mean), x 100"}
#: Classifier input recorded for the classification claims.
CLAIM_INPUT = "predicted mask"


def record_claims(exp: Experiment, n_classes: int, seg_table: pd.DataFrame,
                  cls_table: pd.DataFrame) -> None:
    """Record every claim of the YAML from the two tables (percent, with CIs)."""
    exp.claims.add("abstract/classification/classes", n_classes,
                   note="classes with at least one image in the data used")
    for metric, cid in SEG_CLAIMS.items():
        row = seg_table[(seg_table["metric"] == metric) & (seg_table["scope"] == SEG_SCOPE[metric])]
        _add(exp, cid, row, f"segmentation, test split, {SEG_SCOPE[metric]}")
    rows = cls_table[cls_table["input"] == CLAIM_INPUT]
    for metric, cid in CLS_CLAIMS.items():
        _add(exp, cid, rows[rows["metric"] == metric],
             f"DCNNIMAF on the {CLAIM_INPUT} crop, test split" + ("" if metric in ("accuracy", "loss")
                                                                   else ", macro average"))


def _add(exp: Experiment, cid: str, row: pd.DataFrame, note: str) -> None:
    if row.empty:
        exp.claims.add(cid, float("nan"), note=f"not measured ({note})")
        return
    r = row.iloc[0]  # tables are in percent, measured claims are fractions
    if r["value %"] > 100 or r["ci high"] > 100:  # a loss above 1 is no proportion
        exp.claims.add(cid, float("nan"), note=f"{note}: measured {r['value %'] / 100:.3f} (CI "
                       f"{r['ci low'] / 100:.3f}-{r['ci high'] / 100:.3f}) is above 1, not comparable "
                       "with a loss printed in percent")
        return
    exp.claims.add(cid, r["value %"] / 100, ci=(r["ci low"] / 100, r["ci high"] / 100), note=note)


def lesion_dice(prob: np.ndarray, truth: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """Dataset-level Dice over test images that have a lesion (benign, malignant)."""
    lesion = truth.reshape(len(truth), -1).any(1)
    if not lesion.any():
        return float("nan")
    return pooled(pixel_counts(prob[lesion] >= threshold, truth[lesion]))["dice"]


def positive_controls(exp: Experiment, seg_dice: float, accuracy: float, majority: float,
                      floors: dict[str, float]) -> None:
    """Instrument checks: the segmenter and the classifier beat trivial baselines by a margin.

    Baselines: an all-background mask has lesion Dice 0; always predicting the training
    split's majority class has accuracy ``majority`` on the test split.
    """
    enforce = exp.profile != "smoke"
    exp.check("segmentation lesion Dice (pooled, lesion images)", seg_dice, floors["dice"],
              f"LinkNet must find plainly visible phantom lesions: floor {floors['dice']:.2f}; an "
              "all-background mask scores 0", enforce=enforce)
    floor = max(floors["accuracy"], majority + floors["accuracy_margin"])
    exp.check("classification accuracy (predicted-mask input)", accuracy, floor,
              f"DCNNIMAF on the segmented tumour: floor {floor:.2f} = max({floors['accuracy']:.2f}, "
              f"majority-class accuracy {majority:.2f} + {floors['accuracy_margin']:.2f})",
              enforce=enforce)
