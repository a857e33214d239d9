"""Training of Yin et al.'s networks through brainlib.engine.fit (one loop for every model).

Classifiers (Tables 2-4): cross-entropy on Table 1's softmax, Adam, best epoch by validation
accuracy. Mask R-CNN (Tables 5-6): torchvision's MaskRCNN behind
:class:`brainlib.models.yin2024.MaskRCNNClassifier`, a small adapter that returns the loss
dict in training mode and image-level scores in eval mode, so ``fit`` trains it as is; the
losses are torchvision's five terms with ``loss_mask`` replaced by eq. 12, weights
alpha = beta = 1 (eq. 13, reading). The detection score threshold is chosen on validation.
A detector's backbone can start from the trained classifier of the same variant (setting
``det_init``; :func:`brainlib.models.yin2024.init_backbone`), trained on the same training split.
Checkpoints live under the run's ``checkpoints/`` so a killed run resumes.
"""
from __future__ import annotations

import math
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
from brainlib.models.yin2024 import MaskRCNNClassifier, init_backbone
from brainlib.papers.yin2024.data import ClassView, DetectionView, ImageSet, collate_detection
from brainlib.papers.yin2024.schedule import optimizer_factory


def _ce(out: torch.Tensor, batch: dict) -> torch.Tensor:
    return F.cross_entropy(out, batch["y"].argmax(1))


def _accuracy(pred: Predictions) -> dict[str, float]:
    return {"accuracy": float((pred.y_score.argmax(1) == pred.y_true.argmax(1)).mean())}


def _det_loss(name: str):
    def fn(out: dict, batch: dict) -> torch.Tensor:
        value = out.get(name)
        return value if value is not None else batch["x"].new_zeros(())  # eval mode: no losses
    return fn


def det_losses(alpha: float, beta: float) -> list:
    """Eq. 13: alpha L_cls + beta L_box + (eq. 12 inside loss_mask) + the RPN's two terms."""
    weight = {"loss_classifier": alpha, "loss_box_reg": beta}
    return [(n, _det_loss(n), weight.get(n, 1.0)) for n in MaskRCNNClassifier.LOSS_NAMES]


def _batch_input(batch: dict) -> dict:
    return batch


@dataclass
class Trained:
    """A trained network, its history and test-split outputs."""

    name: str
    dataset: str
    model: nn.Module
    fit: FitResult
    extra: dict[str, Any] = field(default_factory=dict)


def epochs_for(exp: Experiment, n_train: int, detection: bool = False) -> int:
    """The profile's epochs, else ceil(max_iterations / steps per epoch) (the paper's 1000)."""
    s = exp.settings
    chosen = s.det_epochs if detection and s.det_epochs else s.epochs
    if chosen:
        return int(chosen)
    batch = (s.det_batch_size or s.batch_size) if detection else s.batch_size
    return max(1, math.ceil(s.max_iterations / max(1, math.ceil(n_train / batch))))


def train_classifier(exp: Experiment, data: ImageSet, name: str) -> Trained:
    """One classification network of Tables 2-4 (registry name) on ``data``'s training split."""
    s = exp.settings
    train, val = (ClassView(data, p, s.image_size, p == "train") for p in ("train", "val"))
    seed_everything(exp.seed)
    model = create_model(name, num_classes=len(data.classes), widths=tuple(s.widths), dropout=s.dropout,
                         reduction=s.reduction)
    loaders = (make_loader(train, s.batch_size, shuffle=True, seed=exp.seed),
               make_loader(val, s.batch_size, seed=exp.seed))
    key = f"{data.name}_{name}"
    with exp.timed(f"train_{key}"):
        result = fit(model, *loaders, losses=[("ce", _ce, 1.0)], epochs=epochs_for(exp, len(train)),
                     lr=s.lr, monitor="accuracy", metric_fn=_accuracy, activation="softmax",
                     device=exp.device, seed=exp.seed, checkpoint_dir=exp.checkpoint_dir(key),
                     resume=True, progress=False, checkpoint_meta={"paper": exp.paper, "network": name,
                                                                  "classes": list(data.classes)})
    return Trained(name, data.name, result.model, result)


def classify(exp: Experiment, trained: Trained, data: ImageSet, part: str = "test") -> pd.DataFrame:
    """Per-image softmax scores on ``part`` (columns ``image_id, label_<c>, score_<c>``)."""
    view = ClassView(data, part, exp.settings.image_size, False)
    pred = predict(trained.model, make_loader(view, exp.settings.batch_size), activation="softmax",
                   device=exp.device)
    return prediction_frame(pred.ids, pred.y_true, pred.y_score, data.classes)


def prediction_frame(ids: list[str], y_true: np.ndarray, y_score: np.ndarray,
                     classes: tuple[str, ...]) -> pd.DataFrame:
    frame: dict[str, Any] = {"case_id": list(ids)}
    frame.update({f"label_{c}": y_true[:, k].astype(int) for k, c in enumerate(classes)})
    frame.update({f"score_{c}": y_score[:, k].astype(float) for k, c in enumerate(classes)})
    return pd.DataFrame(frame)


def detector_kwargs(exp: Experiment) -> dict[str, Any]:
    s = exp.settings
    pre_tr, post_tr, pre_te, post_te = s.rpn_proposals
    return dict(widths=tuple(s.widths), fpn_channels=s.fpn_channels, head_dim=s.head_dim,
                mask_dim=s.mask_dim, image_size=s.image_size, mask_mu=s.mask_mu,
                rpn_pre_nms_top_n_train=pre_tr, rpn_post_nms_top_n_train=post_tr,
                rpn_pre_nms_top_n_test=pre_te, rpn_post_nms_top_n_test=post_te,
                box_batch_size_per_image=s.box_batch, box_positive_fraction=s.box_positive_fraction,
                box_detections_per_img=s.detections_per_img,
                box_score_thresh=s.box_score_thresh, anchor_sizes=tuple(s.anchor_sizes),
                anchor_ratios=tuple(s.anchor_ratios),
                rpn_fg_iou_thresh=s.rpn_fg_iou, box_fg_iou_thresh=s.box_iou[0], box_bg_iou_thresh=s.box_iou[1])


def train_detector(exp: Experiment, data: ImageSet, variant: str, backbone: Trained | None = None) -> Trained:
    """A Mask R-CNN of Table 6 (``maskrcnn``, ``maskrcnn_dc``, ``maskrcnn_am``, ``maskrcnn_dc_am``);
    ``backbone``: a classifier trained on the same training split whose stem and stages
    initialise the detector's backbone (None: random initialisation)."""
    s = exp.settings
    train, val = (DetectionView(data, p, s.image_size, p == "train") for p in ("train", "val"))
    seed_everything(exp.seed)
    model = create_model(f"yin2024_{variant}", num_classes=len(data.classes), **detector_kwargs(exp))
    if backbone is not None:
        if backbone.dataset != data.name:
            raise ValueError(f"backbone {backbone.name} was trained on {backbone.dataset}, not {data.name}")
        init_backbone(model, backbone.model)
    batch = s.det_batch_size or s.batch_size
    loaders = (make_loader(train, batch, shuffle=True, seed=exp.seed, collate_fn=collate_detection),
               make_loader(val, s.batch_size, seed=exp.seed, collate_fn=collate_detection))
    key = f"{data.name}_{variant}"
    epochs = epochs_for(exp, len(train), True)
    optimizer = optimizer_factory(s.det_schedule, epochs * len(loaders[0]), s.det_warmup)
    with exp.timed(f"train_{key}"):
        result = fit(model, *loaders, losses=det_losses(*s.loss_weights), epochs=epochs, lr=s.det_lr,
                     optimizer=optimizer, monitor="accuracy", metric_fn=grid_accuracy(s.score_thresholds),
                     activation=None, output_key="class_scores", input_fn=_batch_input, device=exp.device, seed=exp.seed,
                     checkpoint_dir=exp.checkpoint_dir(key), resume=True, progress=False,
                     grad_clip=10.0, checkpoint_meta={"paper": exp.paper, "network": variant,
                                                      "classes": list(data.classes),
                                                      "backbone_init": backbone.name if backbone else "random"})
    trained = Trained(variant, data.name, result.model, result)
    trained.extra["backbone_init"] = backbone.name if backbone is not None else "random"
    trained.extra["threshold"] = choose_threshold(exp, trained, data)
    return trained


def _class_scores(exp: Experiment, trained: Trained, data: ImageSet, part: str) -> Predictions:
    view = DetectionView(data, part, exp.settings.image_size, False)
    loader = make_loader(view, exp.settings.batch_size, collate_fn=collate_detection)
    return predict(trained.model, loader, activation=None, output_key="class_scores",
                   input_fn=_batch_input, device=exp.device)


def grid_accuracy(thresholds: tuple) -> Any:
    """Validation metric of a detector: image-level accuracy at the best threshold of the grid
    (a fixed threshold would keep every epoch at "all normal" while the detector is still weak,
    and the best epoch would stay the first)."""
    def fn(pred: Predictions) -> dict[str, float]:
        y = pred.y_true.argmax(1)
        return {"accuracy": max(float((decide(pred.y_score, t).argmax(1) == y).mean()) for t in thresholds)}
    return fn


def decide(class_scores: np.ndarray, threshold: float) -> np.ndarray:
    """Image-level scores: column 0 (normal) = ``threshold``, so argmax is the best detection's
    class when it scores above ``threshold``, else normal."""
    out = np.array(class_scores, dtype=float, copy=True)
    out[:, 0] = threshold
    return out


def choose_threshold(exp: Experiment, trained: Trained, data: ImageSet) -> float:
    """The grid threshold with the best validation accuracy (lowest on ties)."""
    pred = _class_scores(exp, trained, data, "val")
    y = pred.y_true.argmax(1)
    accs = [float((decide(pred.y_score, t).argmax(1) == y).mean()) for t in exp.settings.score_thresholds]
    best = int(np.argmax(accs))
    trained.extra["threshold_table"] = pd.DataFrame({"threshold": exp.settings.score_thresholds,
                                                     "val_accuracy": accs})
    trained.model.threshold = float(exp.settings.score_thresholds[best])
    return trained.model.threshold


def detect(exp: Experiment, trained: Trained, data: ImageSet, part: str = "test") -> pd.DataFrame:
    """Image-level predictions of a detector on ``part`` (scores after the chosen threshold)."""
    pred = _class_scores(exp, trained, data, part)
    return prediction_frame(pred.ids, pred.y_true, decide(pred.y_score, trained.extra["threshold"]),
                            data.classes)


def detections(exp: Experiment, trained: Trained, data: ImageSet, indices: np.ndarray) -> list[dict]:
    """Raw detections (boxes, labels, scores, masks) of a few images (example figure)."""
    view = DetectionView(data, "test", exp.settings.image_size, False)
    pos = {int(j): i for i, j in enumerate(view.idx)}
    batch = collate_detection([view[pos[int(j)]] for j in indices])
    model = trained.model.eval()
    with torch.no_grad():
        model(batch)
    return [{**d, "image": batch["x"][i, 0].numpy(), "id": batch["id"][i],
             "truth": batch["targets"][i]} for i, d in enumerate(model.last_detections)]


def prefetch_classifier(exp: Experiment, data: ImageSet, name: str) -> None:
    """Worker job (`brainlib.engine.parallel`): train one classifier into its checkpoint."""
    train_classifier(exp, data, name)


def prefetch_detector(exp: Experiment, data: ImageSet, variant: str, backbone: str | None) -> None:
    """Worker job: train one detector into its checkpoint, its backbone classifier (finished
    by an earlier job, so loaded from its checkpoint) first."""
    train_detector(exp, data, variant, train_classifier(exp, data, backbone) if backbone else None)


def history(trained: list[Trained]) -> pd.DataFrame:
    frames = [t.fit.history.assign(dataset=t.dataset, network=t.name) for t in trained]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
