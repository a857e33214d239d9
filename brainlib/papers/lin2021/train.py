"""Training and prediction of Dscint and the classical networks through `brainlib.engine`.

Every model of one evaluation is trained on the same images with the same seed, optimiser
(Adam, one learning rate and weight decay), epochs and batch size, i.e. the same number of
optimiser steps; the epoch with the best validation accuracy is tested. Nothing is tuned per
network. Beside Dscint (its `dscint_head`) the run trains Dscint with each head of
`dscint_controls` (``lin2021_dscint_avghead``: the global average pooling the residual, dense
and inception networks end with), so the comparison shows how much of Dscint's lead comes from
the head chosen for it. A paper baseline a profile leaves out is not trained; `step_cost` times
one engine training step of it instead.
Checkpoints go under ``<out_dir>/checkpoints/<evaluation>/<model>-<digest>``
(`Experiment.checkpoint_dir`: settings, seed, data source and fold) so a killed run resumes and a
changed one starts afresh. With cross-validation (several folds) one model is trained per fold and the folds'
test predictions are pooled into one `ModelResult` (every scan tested once).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from brainlib.data.classes import BONESCAN_CLASSES
from brainlib.engine import fit, make_loader, predict, seed_everything
from brainlib.metrics import classification_metrics
from brainlib.models import create_model
from brainlib.models.dscint import BASELINES, init_note
from brainlib.papers.lin2021.data import Split

DSCINT = "lin2021_dscint"


@dataclass
class ModelResult:
    """One trained model in one evaluation: test predictions and bookkeeping."""

    name: str
    label: str
    evaluation: str
    ids: list[str]
    patients: list[str]
    y_true: np.ndarray   # (N,) class index
    y_score: np.ndarray  # (N, C) softmax probabilities
    history: pd.DataFrame
    best_epoch: int | tuple[int, ...]  # one per fold with cross-validation
    seconds: float
    n_params: int
    init: str
    model: torch.nn.Module | None = None  # with cross-validation: the last fold's model
    folds: list[int] | None = None  # with cross-validation: the fold of each test image
    cpu_seconds: float = float("nan")  # process CPU time of the training(s)
    steps: int = 0  # optimiser steps of the training(s): epochs x batches per epoch

    @property
    def correct(self) -> np.ndarray:
        return self.y_score.argmax(1) == self.y_true


def control_name(head: str) -> str:
    """Registry-style name of Dscint trained with another head (a control in the comparison)."""
    return f"{DSCINT}_{head}head"


def dscint_head(name: str, s: Any) -> str | None:
    """The head of a Dscint name (`DSCINT` or a `control_name`), None for a baseline."""
    if name == DSCINT:
        return s.dscint_head
    prefix = f"{DSCINT}_"
    return name[len(prefix):-len("head")] if name.startswith(prefix) and name.endswith("head") else None


def is_dscint(name: str) -> bool:
    return name == DSCINT or (name.startswith(f"{DSCINT}_") and name.endswith("head"))


def model_label(name: str) -> str:
    if name == DSCINT:
        return "Dscint"
    if is_dscint(name):
        return f"Dscint, {name[len(DSCINT) + 1:-len('head')]} head (control)"
    return BASELINES[name][0]


def _ce(outputs: torch.Tensor, batch: dict) -> torch.Tensor:
    return F.cross_entropy(outputs, batch["y"].argmax(1))


def _val_accuracy(pred: Any) -> dict[str, float]:
    return {"accuracy": float(np.mean(pred.y_score.argmax(1) == pred.y_true.argmax(1)))}


def build(name: str, s: Any) -> torch.nn.Module:
    """Dscint (or a head control) at `dscint_width`, a baseline at its `width_of`."""
    if is_dscint(name):
        return create_model(DSCINT, num_classes=len(BONESCAN_CLASSES), in_channels=2,
                            width=s.dscint_width, head=dscint_head(name, s), init=s.dscint_init,
                            input_size=s.size)
    return create_model(name, num_classes=len(BONESCAN_CLASSES), in_channels=2,
                        width=s.width_of(name))


def train_model(exp: Any, split: Split, name: str, keep_model: bool = False) -> ModelResult:
    """Fit `name` on `split.train` (validation picks the epoch) and predict `split.test`."""
    s = exp.settings
    t0, c0 = time.perf_counter(), time.process_time()
    seed_everything(exp.seed)  # the initial weights are part of the seeded run (fit seeds later)
    model = build(name, s)
    loaders = {"train": make_loader(split.train, s.batch_size, shuffle=True, seed=exp.seed),
               "val": make_loader(split.val, 64), "test": make_loader(split.test, 64)}
    # the folder carries a digest of the settings, seed and data: a changed run never resumes
    # another configuration's weights (a kept out_dir once resumed 5-fold weights for 3 folds)
    ckpt = exp.checkpoint_dir(f"{split.evaluation}/{name}", fold=split.fold)
    result = fit(model, loaders["train"], loaders["val"], losses=[("ce", _ce, 1.0)],
                 epochs=s.epochs, lr=s.lr, weight_decay=s.weight_decay, monitor="accuracy",
                 mode="max", metric_fn=_val_accuracy, activation="softmax", device=exp.device,
                 seed=exp.seed, progress=False, resume=True, channels_last=s.channels_last,
                 checkpoint_dir=ckpt)
    pred = predict(result.model, loaders["test"], activation="softmax", device=exp.device,
                   keep_extras=False, channels_last=s.channels_last)
    if list(pred.ids) != split.test.ids:
        raise RuntimeError(f"{name}: predictions are not in the test order")
    model = result.model.cpu().eval()
    return ModelResult(name, model_label(name), split.evaluation, list(pred.ids),
                       list(split.test.patient), np.asarray(pred.y_true).argmax(1),
                       np.asarray(pred.y_score), result.history, result.best_epoch,
                       time.perf_counter() - t0, sum(p.numel() for p in model.parameters()),
                       init_note(model), model if keep_model else None,
                       cpu_seconds=time.process_time() - c0,
                       steps=s.epochs * math.ceil(len(split.train) / s.batch_size))


def train_folds(exp: Any, folds: list[Split], name: str, keep_model: bool = False) -> ModelResult:
    """`train_model` on each fold; one fold is returned as is, several pooled (test predictions
    concatenated, history with a ``fold`` column, the last fold's model kept)."""
    if len(folds) == 1:
        return train_model(exp, folds[0], name, keep_model)
    parts = [train_model(exp, sp, name, keep_model and k == len(folds) - 1)
             for k, sp in enumerate(folds)]
    last = parts[-1]
    return ModelResult(
        name, last.label, last.evaluation, [i for r in parts for i in r.ids],
        [p for r in parts for p in r.patients], np.concatenate([r.y_true for r in parts]),
        np.concatenate([r.y_score for r in parts]),
        pd.concat([r.history.assign(fold=sp.fold) for r, sp in zip(parts, folds)], ignore_index=True),
        tuple(int(r.best_epoch) for r in parts), float(sum(r.seconds for r in parts)),
        last.n_params, last.init, last.model,
        [sp.fold for r, sp in zip(parts, folds) for _ in r.ids],
        float(sum(r.cpu_seconds for r in parts)), int(sum(r.steps for r in parts)))


def train_all(exp: Any, splits: dict[str, list[Split]]) -> dict[tuple[str, str], ModelResult]:
    """Dscint in every evaluation, the baselines in `comparison_evaluations`; keyed (evaluation, name)."""
    s = exp.settings
    out: dict[tuple[str, str], ModelResult] = {}
    for evaluation, folds in splits.items():
        names = [DSCINT] + ([control_name(h) for h in s.dscint_controls] + list(s.baselines)
                            if evaluation in s.comparison_evaluations else [])
        for name in names:
            with exp.timed(f"train {evaluation} {name}"):
                out[(evaluation, name)] = train_folds(exp, folds, name, keep_model=name == DSCINT)
    return out


def step_cost(exp: Any, split: Split, name: str) -> dict[str, Any]:
    """Time one engine training step of `name` (one batch of `batch_size` from `split.train`,
    the first step, optimiser included): what a network the profile leaves out would cost."""
    s = exp.settings
    seed_everything(exp.seed)
    model = build(name, s)
    loader = make_loader(split.train, s.batch_size, shuffle=True, seed=exp.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    fit(model, loader, None, losses=[("ce", _ce, 1.0)], epochs=1, lr=s.lr,
        weight_decay=s.weight_decay, device=exp.device, seed=exp.seed, progress=False,
        max_steps_per_epoch=1, activation="softmax", channels_last=s.channels_last)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    steps = s.epochs * math.ceil(len(split.train) / s.batch_size)
    return {"name": name, "label": model_label(name), "evaluation": split.evaluation,
            "wall s per step": wall, "CPU s per step": cpu, "steps in budget": steps,
            "n_params": sum(p.numel() for p in model.parameters()),
            "input": getattr(model, "input_note", "")}


def predictions_frame(results: dict[tuple[str, str], ModelResult]) -> pd.DataFrame:
    """Per test image and model: case_id, label_<class>, score_<class>, model, evaluation, patient."""
    frames = []
    for r in results.values():
        df = pd.DataFrame({"case_id": r.ids})
        for k, c in enumerate(BONESCAN_CLASSES):
            df[f"label_{c}"] = (r.y_true == k).astype(int)
        for k, c in enumerate(BONESCAN_CLASSES):
            df[f"score_{c}"] = r.y_score[:, k]
        df["model"], df["evaluation"], df["patient"] = r.label, r.evaluation, r.patients
        if r.folds is not None:
            df["fold"] = r.folds
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def metrics(r: ModelResult) -> dict[str, float]:
    """The abstract's five metrics (macro over the four classes) and per-class values."""
    return classification_metrics(r.y_true, r.y_score, task="multiclass",
                                  class_names=list(BONESCAN_CLASSES))
