"""Pandiyaraju et al. (2024, arXiv 2407.02844): breast-ultrasound tumour segmentation
(LinkNet-InceptionResNet with spatial-channel attention) and classification of the segmented
tumour (DCNNIMAF) on BUSI, with a near-duplicate leakage audit.

The notebook ``notebooks/pandiyaraju2024_busi_attention.ipynb`` calls, in order::

    exp = pandiyaraju2024.setup(profile=..., data_root=..., ...)
    data = pandiyaraju2024.load(exp)                 # BUSI tree, split, leakage audit
    seg = pandiyaraju2024.segmentation(exp, data)    # train, predict, save masks + table
    cls = pandiyaraju2024.classification(exp, data, seg)
    leak = pandiyaraju2024.leakage(data, seg, cls)
    pandiyaraju2024.conclude(exp, data, seg, cls)    # claims and positive controls
    exp.finish()
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainlib.data import leakage as _leakage
from brainlib.experiment import Experiment, open_experiment
from brainlib.papers.pandiyaraju2024 import claims as _claims
from brainlib.papers.pandiyaraju2024 import figures, tables, train
from brainlib.papers.pandiyaraju2024.data import BusiData, load_data
from brainlib.papers.pandiyaraju2024.settings import CAPTIONS, PAPER, Pandiyaraju2024Settings
from brainlib.report import data_source

#: Positive-control floors, set after measuring the quick profile (seed 0: lesion Dice 0.90,
#: accuracy on predicted masks 0.97; trivial baselines: Dice 0, majority class 0.56).
FLOORS = {"dice": 0.7, "accuracy": 0.75, "accuracy_margin": 0.15}

__all__ = ["CAPTIONS", "FLOORS", "PAPER", "Pandiyaraju2024Settings", "classification", "conclude",
           "figures", "leakage", "load", "segmentation", "setup", "training_history"]


def setup(profile: str = "quick", data_root: str | None = None,
          out_dir: str | os.PathLike = "outputs/pandiyaraju2024", device: str = "auto", seed: int = 0,
          epochs: int | None = None, image_size: int | None = None, max_images: int | None = None,
          encoder: str | None = None) -> Experiment:
    """Resolve the profile (``epochs`` sets both networks' epochs) and open the run."""
    over: dict[str, Any] = {"image_size": image_size, "max_images": max_images, "encoder": encoder}
    if epochs is not None:
        over.update(seg_epochs=epochs, cls_epochs=epochs)
    settings = Pandiyaraju2024Settings.for_profile(profile, **over)
    params = {"profile": profile, "data_root": data_root, "out_dir": str(out_dir), "device": device,
              "seed": seed, "epochs": epochs, "image_size": image_size, "max_images": max_images,
              "encoder": encoder}
    phantom = None if data_root else {"images": settings.phantom_images, "size": settings.phantom_size,
                                      "difficulty": settings.difficulty, "seed": settings.phantom_seed}
    source = data_source(data_root, "busi", **({"phantom": phantom} if phantom else {}))
    notes = ["Only the abstract of the paper is available: every choice it leaves open is a "
             "reading (settings table).",
             "Segmentation Dice/IoU per image: both masks empty scores "
             f"{settings.empty_dice:g}; dataset-level values pool pixels over test images."]
    return open_experiment(PAPER, settings, params=params, out_dir=out_dir, device=device, seed=seed,
                           data_root=data_root, source=source, threads=settings.threads,
                           captions=CAPTIONS, notes=notes)


def load(exp: Experiment) -> BusiData:
    """The BUSI data (phantoms unless ``data_root``), split and audited for near duplicates."""
    with exp.timed("data"):
        return load_data(exp)


@dataclass
class SegResult:
    trained: train.Trained
    output: train.SegOutput
    predictions: pd.DataFrame
    table: pd.DataFrame


def segmentation(exp: Experiment, data: BusiData) -> SegResult:
    """Train the segmenter, predict the test split, save per-case metrics and masks; the
    returned ``table`` is Dice, IoU, pixel accuracy and loss with CIs (from the saved rows)."""
    s = exp.settings
    trained = train.train_segmenter(exp, data)
    out = train.segment(exp, data, trained)
    pred = exp.predictions("segmentation", tables.segmentation_predictions(out, s.mask_threshold, s.empty_dice))
    save_masks(exp.out_dir / "predictions" / "segmentation_masks.npz", out, s.mask_threshold)
    table = tables.segmentation_table(pred, s.n_boot, exp.seed, s.empty_dice)
    return SegResult(trained, out, pred, table)


def save_masks(path: Path, out: train.SegOutput, threshold: float) -> Path:
    """Compressed test masks: ``ids``, ``truth`` and ``pred`` (bool), ``prob`` (uint8 x 255)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, ids=np.array(out.ids), truth=out.truth, pred=out.prob >= threshold,
                        prob=np.round(out.prob * 255).astype(np.uint8), threshold=threshold)
    return path


@dataclass
class ClsResult:
    predictions: dict[str, pd.DataFrame]
    table: pd.DataFrame
    trained: list[train.Trained] = field(default_factory=list)


def classification(exp: Experiment, data: BusiData, seg: SegResult) -> ClsResult:
    """DCNNIMAF on predicted masks, ground-truth masks and whole images, plus the empty-mask rule."""
    s = exp.settings
    pred_masks = seg.output.masks(s.mask_threshold, s.min_lesion_fraction)
    on_truth = train.train_classifier(exp, data, "dcnnimaf_masked", "truth")
    on_image = train.train_classifier(exp, data, "dcnnimaf_image", None)
    outs = [train.classify(exp, data, on_truth, pred_masks, "predicted mask"),
            train.classify(exp, data, on_truth, "truth", "ground-truth mask"),
            train.classify(exp, data, on_image, None, "whole image"),
            train.empty_mask_rule(data, pred_masks)]
    preds = {}
    for o in outs:
        key = o.name.replace(" ", "_").replace("-", "_")
        preds[o.name] = exp.predictions(f"classification_{key}",
                                        tables.classification_predictions(o, data.classes))
    table = tables.classification_table(preds, data.classes, s.n_boot, exp.seed)
    return ClsResult(preds, table, [on_truth, on_image])


def training_history(seg: SegResult, cls: ClsResult) -> pd.DataFrame:
    """Per-epoch history of the segmenter and both classifiers."""
    return train.history([seg.trained, *cls.trained])


def leakage(data: BusiData, seg: SegResult, cls: ClsResult) -> dict[str, pd.DataFrame]:
    """Leakage tables: ``pairs``, ``summary`` and ``metrics`` (test metrics with and without
    the test cases that have a near duplicate in another split)."""
    audit = data.audit
    summary = audit.summary()
    if data.known_duplicates is not None:
        found = _leakage.detection_check(audit, data.known_duplicates)
        summary = pd.concat([summary, pd.DataFrame([
            {"what": "phantom duplicates written by the generator (both images loaded)", "count": found["known_pairs"]},
            {"what": "of which found by the audit", "count": found["true_pairs_found"]}])], ignore_index=True)
    seg_pred = seg.predictions.set_index("case_id")
    cls_pred = cls.predictions[_claims.CLAIM_INPUT].set_index("case_id")
    classes = data.classes

    def dice(ids: list[str]) -> float:
        return tables.pooled(seg_pred.loc[ids, ["tp", "fp", "fn", "tn"]].to_numpy())["dice"] * 100

    def accuracy(ids: list[str]) -> float:
        p = cls_pred.loc[ids]
        y = p[[f"label_{c}" for c in classes]].to_numpy().argmax(1)
        return float((p[[f"score_{c}" for c in classes]].to_numpy().argmax(1) == y).mean()) * 100

    metrics = {"Dice % (dataset-level)": dice, "accuracy % (predicted-mask input)": accuracy}
    return {"pairs": audit.pairs, "summary": summary,
            "metrics": _leakage.with_and_without(audit, data.ids("test"), metrics)}


def conclude(exp: Experiment, data: BusiData, seg: SegResult, cls: ClsResult) -> None:
    """Record the abstract's claims and the positive controls."""
    present = int((np.bincount(data.dataset.class_index, minlength=3) > 0).sum())
    _claims.record_claims(exp, present, seg.table, cls.table)
    s = exp.settings
    dice = _claims.lesion_dice(seg.output.prob, seg.output.truth, seg.output.labels, s.mask_threshold)
    pred = cls.predictions[_claims.CLAIM_INPUT]
    y = pred[[f"label_{c}" for c in data.classes]].to_numpy().argmax(1)
    acc = float((pred[[f"score_{c}" for c in data.classes]].to_numpy().argmax(1) == y).mean())
    majority = np.bincount(data.subset("train").class_index, minlength=3).argmax()
    _claims.positive_controls(exp, dice, acc, float((y == majority).mean()), FLOORS)
