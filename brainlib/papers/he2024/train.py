"""Training of He et al. 2024's full model, its ablations (Table 3) and the window-module
input settings (Table 4), all through `brainlib.engine.fit` with the same data, seed and
batches; the best validation epoch (mean AUC over the six labels) is tested (Sec. 2.2.2).

Every training keeps its checkpoints in `exp.checkpoint_dir(variant)` (keyed by settings,
seed and data) and resumes: a rerun after a kill continues from the last finished epoch, and
a variant whose last checkpoint is at the final epoch is not retrained (its best weights are
loaded and the test predictions recomputed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from brainlib.data.classes import RSNA_CLASSES
from brainlib.engine import fit, make_loader, predict, seed_everything
from brainlib.experiment import Experiment
from brainlib.metrics import defined_classes, macro_auc, masked_bce
from brainlib.models import create_model
from brainlib.models.he2024 import HE2024_VARIANTS
from brainlib.papers.he2024.data import He2024Data

# Table 3 rows: (model name, label as in the paper).
TABLE3_MODELS: tuple[tuple[str, str], ...] = (
    ("he2024_full", "Our method"),
    ("he2024_no_window", "w/o module window"),
    ("he2024_no_fusion", "w/o multiple feature fusion"),
)
# Table 4 rows: (model, input, initialisation, weight training, claim key).
TABLE4_ROWS: tuple[tuple[str, str, str, str, str], ...] = (
    ("he2024_t4_hu", "HU", "-", "-", "hu/fixed"),
    ("he2024_t4_brain_fixed", "HU", "Brain window", "-", "brain_window/fixed"),
    ("he2024_t4_three_fixed", "HU", "Three windows", "-", "three_windows/fixed"),
    ("he2024_t4_random_learn", "HU", "-", "yes", "hu/trained"),
    ("he2024_t4_brain_learn", "HU", "Brain window", "yes", "brain_window/trained"),
    ("he2024_full", "HU", "Three windows", "yes", "three_windows/trained"),
)
# Table 4's last row is the full model (same configuration): trained once.
TRAINED_VARIANTS: tuple[str, ...] = tuple(dict.fromkeys(
    [m for m, _ in TABLE3_MODELS] + [r[0] for r in TABLE4_ROWS]))


@dataclass
class VariantResult:
    """A trained variant: best-on-validation model, history and test predictions."""

    name: str
    model: torch.nn.Module
    history: pd.DataFrame
    best_epoch: int
    ids: list[str]
    y_true: np.ndarray
    y_score: np.ndarray
    seconds: float
    groups: np.ndarray | None = None  # test study per case (bootstrap resampling unit)
    train_seconds: float = float("nan")  # sum of the epochs' seconds, over resumed runs too
    auc_cache: dict[str | None, tuple[float, float, float]] = field(default_factory=dict,
                                                                   repr=False)


def _bce(outputs: torch.Tensor, batch: dict) -> torch.Tensor:
    """Binary cross-entropy over the six sigmoid outputs; unknown (NaN) labels masked."""
    return masked_bce(outputs, batch["y"])


def _val_metric(pred: Any) -> dict[str, float]:
    return {"mean_auc": macro_auc(pred.y_true, pred.y_score, list(RSNA_CLASSES)),
            "any_auc": macro_auc(pred.y_true[:, :1], pred.y_score[:, :1], ["any"])}


def make_loaders(exp: Experiment, data: He2024Data) -> dict:
    """Train (shuffled with the run's seed), validation and test loaders; evaluation runs in
    batches of `eval_batch_size` (no gradients: larger batches only save time)."""
    bs = exp.settings.batch_size
    ebs = exp.settings.eval_batch_size or bs
    return {"train": make_loader(data.subset("train"), bs, shuffle=True, seed=exp.seed),
            "val": make_loader(data.subset("val"), ebs),
            "test": make_loader(data.subset("test"), ebs)}


def build_model(exp: Experiment, name: str) -> torch.nn.Module:
    """The registered variant `name` at the run's width and batch-norm setting (seeded)."""
    s = exp.settings
    seed_everything(exp.seed)
    return create_model(name, width=s.backbone_width, batch_norm=s.batch_norm,
                        reduction=s.reduction, random_window_scale=s.random_window_scale,
                        hu_scale=s.hu_scale)


def window_param_groups(exp: Experiment, model: torch.nn.Module) -> list | None:
    """`fit`'s param_groups: the trainable window module at `window_lr` (None: one lr)."""
    wm = getattr(model, "window_module", None)
    if exp.settings.window_lr is None or wm is None or not wm.trainable:
        return None
    return [("window_module", float(exp.settings.window_lr))]


def train_variant(exp: Experiment, data: He2024Data, name: str, loaders: dict | None = None,
                  checkpoint_dir: Any = "auto") -> VariantResult:
    """Train one registered variant with the engine's `fit` and predict the test split.

    The tested epoch is the best validation mean AUC, or the lowest validation loss when the
    validation split has no class with both labels. `checkpoint_dir="auto"` keeps
    checkpoints in `exp.checkpoint_dir(name)` and resumes from them (None: no checkpoints).
    """
    s = exp.settings
    loaders = loaders or make_loaders(exp, data)
    if checkpoint_dir == "auto":
        checkpoint_dir = exp.checkpoint_dir(name)
    with exp.timed(f"train {name}"):
        model = build_model(exp, name)
        has_auc = bool(defined_classes(data.dataset.labels[data.val]).any())
        result = fit(
            model, loaders["train"], loaders["val"], losses=[("bce", _bce, 1.0)],
            epochs=s.epochs, lr=s.lr, optimizer=s.optimizer, lr_step=s.lr_step,
            lr_gamma=s.lr_gamma, monitor=s.monitor if has_auc else "val_loss",
            mode="max" if has_auc else "min", metric_fn=_val_metric if has_auc else None,
            device=exp.device, seed=exp.seed, progress=False,
            max_steps_per_epoch=s.max_steps_per_epoch, channels_last=s.channels_last,
            param_groups=window_param_groups(exp, model), checkpoint_dir=checkpoint_dir,
            resume=checkpoint_dir is not None, checkpoint_meta={"variant": name},
        )
        pred = predict(result.model, loaders["test"], activation="sigmoid", device=exp.device,
                       channels_last=s.channels_last)
        result.model.cpu().eval()
    test = data.subset("test")
    if list(pred.ids) != test.ids:
        raise RuntimeError(f"{name}: test predictions are not in the test split's order")
    return VariantResult(name, result.model, result.history, result.best_epoch,
                         list(pred.ids), np.asarray(pred.y_true), np.asarray(pred.y_score),
                         exp.timings[f"train {name}"], np.asarray(test.groups),
                         float(result.history["seconds"].sum()) if len(result.history) else 0.0)


def train_variants(exp: Experiment, data: He2024Data,
                   names: Sequence[str] = TRAINED_VARIANTS) -> dict[str, VariantResult]:
    """Train every variant (same data, same seed, same loaders)."""
    loaders = make_loaders(exp, data)
    with exp.timed("training"):
        return {name: train_variant(exp, data, name, loaders) for name in names}


def test_auc(r: VariantResult) -> dict[str, float]:
    """Test 'any' AUC and six-class mean AUC of a trained variant (unknown labels left out;
    the mean over the classes whose AUC is defined) -- the positive controls' values."""
    return {"any": macro_auc(r.y_true[:, :1], r.y_score[:, :1], ["any"]),
            "mean": macro_auc(r.y_true, r.y_score, list(RSNA_CLASSES))}


def training_history(results: dict[str, VariantResult]) -> pd.DataFrame:
    """Per-epoch history of every model (validation mean AUC selects the tested epoch)."""
    return pd.concat([r.history.assign(model=n) for n, r in results.items()],
                     ignore_index=True)


def training_summary(results: dict[str, VariantResult]) -> pd.DataFrame:
    """One row per trained model: description, tested epoch, time, test mean AUC."""
    return pd.DataFrame([{
        "model": n, "description": HE2024_VARIANTS[n][0], "epochs": len(r.history),
        "tested epoch": r.best_epoch, "seconds": round(r.seconds, 1),
        "training seconds": round(r.train_seconds, 1),
        "test mean AUC": round(macro_auc(r.y_true, r.y_score, list(RSNA_CLASSES)), 4),
    } for n, r in results.items()])


def predictions_frame(results: dict[str, VariantResult]) -> pd.DataFrame:
    """Per-case test predictions: ``case_id, label_<class>, score_<class>, model``."""
    frames = []
    for name, r in results.items():
        df = pd.DataFrame({"case_id": r.ids})
        for i, c in enumerate(RSNA_CLASSES):
            df[f"label_{c}"] = r.y_true[:, i]
        for i, c in enumerate(RSNA_CLASSES):
            df[f"score_{c}"] = r.y_score[:, i]
        df["model"] = name
        frames.append(df)
    return pd.concat(frames, ignore_index=True)
