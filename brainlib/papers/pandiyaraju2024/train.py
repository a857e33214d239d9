"""Training of the two networks of Pandiyaraju et al. (2024) through brainlib.engine.

Segmentation: LinkNet-InceptionResNet with scSE, loss Dice + BCE (our reading of the
abstract's unnamed loss), best epoch by validation loss. Classification: DCNNIMAF with
cross-entropy, best epoch by validation accuracy, trained on ground-truth masked crops (the
paper's pipeline classifies the segmented tumour) and, for comparison, on whole images.
Checkpoints live under the run's ``checkpoints/`` so a killed run resumes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from brainlib.engine import FitResult, Predictions, fit, make_loader, predict, seed_everything
from brainlib.experiment import Experiment
from brainlib.models import create_model
from brainlib.papers.pandiyaraju2024.data import BusiData, ClassifierView, SegmentationView


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss over each image's pixels, averaged over the batch (smoothed by ``eps``)."""
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    inter = (p * t).sum(1)
    return (1 - (2 * inter + eps) / (p.sum(1) + t.sum(1) + eps)).mean()


def _bce(out: dict, batch: dict) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(out["logits"], batch["y"])


def _dice(out: dict, batch: dict) -> torch.Tensor:
    return dice_loss(out["logits"], batch["y"])


def _ce(out: dict, batch: dict) -> torch.Tensor:
    return F.cross_entropy(out["logits"], batch["y"].argmax(1))


SEG_LOSSES = [("bce", _bce, 1.0), ("dice", _dice, 1.0)]
CLS_LOSSES = [("ce", _ce, 1.0)]


def _seg_metric(pred: Predictions) -> dict[str, float]:
    p = pred.y_score.reshape(len(pred), -1) >= 0.5
    t = pred.y_true.reshape(len(pred), -1) >= 0.5
    inter = (p & t).sum()
    return {"dice": float(2 * inter / max(p.sum() + t.sum(), 1))}


def _cls_metric(pred: Predictions) -> dict[str, float]:
    return {"accuracy": float((pred.y_score.argmax(1) == pred.y_true.argmax(1)).mean())}


@dataclass
class Trained:
    """A trained network and its history."""

    name: str
    model: nn.Module
    fit: FitResult
    extra: dict[str, Any] = field(default_factory=dict)


def _fit(exp: Experiment, name: str, model: nn.Module, train: Any, val: Any, *, losses: list,
         epochs: int, lr: float, monitor: str, metric_fn: Any, activation: str) -> Trained:
    s = exp.settings
    loaders = (make_loader(train, s.batch_size, shuffle=True, seed=exp.seed),
               make_loader(val, s.batch_size, shuffle=False, seed=exp.seed))
    with exp.timed(f"train_{name}"):
        result = fit(model, *loaders, losses=losses, epochs=epochs, lr=lr, monitor=monitor,
                     metric_fn=metric_fn, activation=activation, device=exp.device, seed=exp.seed,
                     checkpoint_dir=exp.checkpoint_dir(name), resume=True, progress=False,
                     output_key="logits", checkpoint_meta={"paper": exp.paper, "network": name})
    return Trained(name, result.model, result)


def train_segmenter(exp: Experiment, data: BusiData) -> Trained:
    """LinkNet-InceptionResNet + scSE on the training split (best by validation loss)."""
    s = exp.settings
    seed_everything(exp.seed)  # initial weights are part of the seeded run
    model = create_model("pandiyaraju2024_linknet_scse", encoder=s.encoder, width=s.encoder_width,
                         repeats=tuple(s.encoder_repeats), encoder_weights=None)
    exp.note(model.init.note)
    if not model.init.pretrained:
        exp.deviate("segmentation encoder: random initialisation (no local ImageNet weights file; "
                    "nothing is downloaded)")
    return _fit(exp, "segmenter", model, SegmentationView(data.subset("train")),
                SegmentationView(data.subset("val")), losses=SEG_LOSSES, epochs=s.seg_epochs,
                lr=s.seg_lr, monitor="val_loss", metric_fn=_seg_metric, activation="sigmoid")


@dataclass
class SegOutput:
    """Test-split segmentation: probabilities, truth masks, attention maps, per-case loss."""

    ids: list[str]
    prob: np.ndarray       # (N, S, S) float32
    truth: np.ndarray      # (N, S, S) bool
    attention: np.ndarray  # (N, S, S) float32
    loss: np.ndarray       # (N,) Dice + BCE per image
    labels: np.ndarray     # (N,) class index

    def masks(self, threshold: float, min_fraction: float = 0.0) -> dict[str, np.ndarray]:
        """Thresholded masks reduced to their largest connected component, emptied when that
        covers less than ``min_fraction`` of the image (the classifier's input)."""
        return {c: largest_component(p >= threshold, min_fraction) for c, p in zip(self.ids, self.prob)}


def largest_component(mask: np.ndarray, min_fraction: float = 0.0) -> np.ndarray:
    """The largest 8-connected component of ``mask`` (empty if below ``min_fraction``)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    keep = int(sizes.argmax()) + 1
    if sizes[keep - 1] < min_fraction * mask.size:
        return np.zeros_like(mask, dtype=bool)
    return labels == keep


def segment(exp: Experiment, data: BusiData, trained: Trained, part: str = "test") -> SegOutput:
    """Predicted lesion probabilities and attention maps on one split."""
    view = SegmentationView(data.subset(part))
    loader = make_loader(view, exp.settings.batch_size, shuffle=False)
    with exp.timed(f"predict_segmenter_{part}"):
        pred = predict(trained.model, loader, activation="sigmoid", output_key="logits",
                       device=exp.device)
    prob = pred.y_score[:, 0].astype(np.float32)
    truth = pred.y_true[:, 0] >= 0.5
    logits = torch.logit(torch.from_numpy(prob).clamp(1e-6, 1 - 1e-6))
    target = torch.from_numpy(truth.astype(np.float32))
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).mean(1)
    dice = torch.stack([dice_loss(logits[i:i + 1], target[i:i + 1]) for i in range(len(prob))])
    return SegOutput(list(pred.ids), prob, truth, pred.extras["attention"][:, 0].astype(np.float32),
                     (bce + dice).numpy(), data.subset(part).class_index)


def train_classifier(exp: Experiment, data: BusiData, name: str, masks: Any) -> Trained:
    """DCNNIMAF on ``masks`` ("truth" or None = whole image) of the training split."""
    s = exp.settings
    crop = s.classifier_input == "masked_crop"
    views = [ClassifierView(data.subset(p), masks, s.crop_size, s.crop_margin, crop)
             for p in ("train", "val")]
    seed_everything(exp.seed)
    model = create_model("pandiyaraju2024_dcnnimaf", widths=tuple(s.cls_widths), dim=s.cls_dim)
    return _fit(exp, name, model, *views, losses=CLS_LOSSES, epochs=s.cls_epochs, lr=s.cls_lr,
                monitor="accuracy", metric_fn=_cls_metric, activation="softmax")


@dataclass
class ClsOutput:
    """Test-split classification of one input: softmax scores, truth, per-case CE loss."""

    name: str
    ids: list[str]
    y_true: np.ndarray   # (N, C) one-hot
    y_score: np.ndarray  # (N, C)
    loss: np.ndarray     # (N,)


def classify(exp: Experiment, data: BusiData, trained: Trained, masks: Any, name: str,
             part: str = "test") -> ClsOutput:
    """Scores of ``trained`` on ``part`` with inputs built from ``masks``."""
    s = exp.settings
    view = ClassifierView(data.subset(part), masks, s.crop_size, s.crop_margin,
                          s.classifier_input == "masked_crop")
    pred = predict(trained.model, make_loader(view, s.batch_size), activation="softmax",
                   output_key="logits", device=exp.device)
    y = pred.y_true
    loss = -np.log(np.clip((pred.y_score * y).sum(1), 1e-12, None))
    return ClsOutput(name, list(pred.ids), y, pred.y_score, loss)


def empty_mask_rule(data: BusiData, masks: dict[str, np.ndarray], part: str = "test") -> ClsOutput:
    """No classifier at all: "normal" if the predicted mask is empty, else the training
    split's most frequent lesion class. Shows how much of "normal" the mask alone decides."""
    train_cls = data.subset("train").class_index
    lesion = [k for k in np.argsort(-np.bincount(train_cls, minlength=3)) if data.classes[k] != "normal"][0]
    normal = data.classes.index("normal")
    sub = data.subset(part)
    score = np.zeros((len(sub), len(data.classes)), np.float32)
    for i, c in enumerate(sub.ids):
        score[i, normal if not masks[c].any() else lesion] = 1.0
    loss = np.full(len(sub), np.nan)
    return ClsOutput("empty-mask rule", sub.ids, sub.labels.copy(), score, loss)


def history(trained: list[Trained]) -> pd.DataFrame:
    """Every network's per-epoch history in one frame."""
    frames = [t.fit.history.assign(network=t.name) for t in trained]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
