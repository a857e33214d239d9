"""Evaluation and prediction: per-case outputs collected into :class:`Predictions`."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from brainlib.engine.batches import (LossSpec, _amp_context, _batch_size, _compute_losses, _ids,
                                     _to_device, default_input_fn)
from brainlib.engine.loaders import resolve_device


@dataclass
class Predictions:
    """Per-case outputs: ``ids`` (N), ``y_true`` (N,...) or None, ``y_score`` (N,...),
    ``extras``: every other per-case model output (e.g. attention maps), as numpy arrays."""

    ids: list[str]
    y_true: np.ndarray | None
    y_score: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


def _main_output(outputs: Any, output_key: str | None) -> torch.Tensor:
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, Mapping):
        if output_key is not None:
            if output_key not in outputs:
                raise KeyError(f"output_key {output_key!r} not in model outputs {sorted(outputs)}")
            return outputs[output_key]
        if "logits" in outputs:
            return outputs["logits"]
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        raise ValueError(f"model returns several outputs {sorted(outputs)}: pass output_key=")
    raise TypeError(f"model must return a tensor or a dict of tensors, got {type(outputs)}")


def _activate(t: torch.Tensor, activation: str | None) -> torch.Tensor:
    if activation is None or activation == "none":
        return t
    if activation == "sigmoid":
        return torch.sigmoid(t)
    if activation == "softmax":
        return torch.softmax(t, dim=-1)
    raise ValueError(f"activation must be 'sigmoid', 'softmax' or None, got {activation!r}")


class _Collector:
    """Accumulates per-case outputs of successive batches into a :class:`Predictions`."""

    def __init__(self, activation: str | None, output_key: str | None, keep_extras: bool) -> None:
        self.activation, self.output_key, self.keep_extras = activation, output_key, keep_extras
        self.ids: list[str] = []
        self.y_true: list[np.ndarray] = []
        self.y_score: list[np.ndarray] = []
        self.extras: dict[str, list[np.ndarray]] = {}

    def add(self, outputs: Any, batch: Mapping[str, Any]) -> None:
        main = _main_output(outputs, self.output_key)
        n = int(main.shape[0])
        self.ids.extend(_ids(batch, n, len(self.ids)))
        self.y_score.append(_activate(main.detach().float(), self.activation).cpu().numpy())
        y = batch.get("y")
        if isinstance(y, torch.Tensor):
            self.y_true.append(y.detach().cpu().numpy())
        if self.keep_extras and isinstance(outputs, Mapping):
            for key, value in outputs.items():
                if value is main or not isinstance(value, torch.Tensor):
                    continue
                if value.dim() >= 1 and value.shape[0] == n:
                    self.extras.setdefault(key, []).append(value.detach().float().cpu().numpy())

    def result(self) -> Predictions:
        if not self.y_score:
            raise ValueError("the loader yielded no batch")
        y_true = np.concatenate(self.y_true) if self.y_true else None
        return Predictions(
            ids=self.ids,
            y_true=y_true,
            y_score=np.concatenate(self.y_score),
            extras={k: np.concatenate(v) for k, v in self.extras.items()},
        )


def _run_eval(
    model: nn.Module, loader: DataLoader, device: torch.device, *, losses: Sequence[LossSpec] | None,
    activation: str | None, output_key: str | None, input_fn: Callable, amp: str | bool | None,
    channels_last: bool, keep_extras: bool,
) -> tuple[Predictions, dict[str, float]]:
    was_training = model.training
    model.eval()
    collector = _Collector(activation, output_key, keep_extras)
    sums: dict[str, float] = {}
    n_total = 0
    try:
        with torch.inference_mode():
            for batch in loader:
                batch = _to_device(batch, device, channels_last)
                with _amp_context(amp, device):
                    outputs = model(input_fn(batch))
                n = _batch_size(batch)
                if losses:
                    total, parts = _compute_losses(outputs, batch, losses)
                    for key, value in {"loss": float(total), **parts}.items():
                        sums[key] = sums.get(key, 0.0) + value * n
                n_total += n
                collector.add(outputs, batch)
    finally:
        model.train(was_training)
    mean_losses = {k: v / max(n_total, 1) for k, v in sums.items()}
    return collector.result(), mean_losses


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    losses: Sequence[LossSpec] | None = None,
    metric_fn: Callable[[Predictions], Mapping[str, float]] | None = None,
    device: str | torch.device = "auto",
    *,
    activation: str | None = "sigmoid",
    output_key: str | None = None,
    input_fn: Callable = default_input_fn,
    amp: str | bool | None = None,
    channels_last: bool = False,
) -> dict[str, float]:
    """Mean losses (``loss`` = weighted total, plus each named loss) and ``metric_fn`` metrics.

    Losses are averaged over cases (each batch weighted by its size).
    """
    dev = resolve_device(device)
    preds, values = _run_eval(model.to(dev), loader, dev, losses=losses, activation=activation,
                              output_key=output_key, input_fn=input_fn, amp=amp,
                              channels_last=channels_last, keep_extras=False)
    if metric_fn is not None:
        values.update({k: float(v) for k, v in metric_fn(preds).items()})
    return values


def predict(
    model: nn.Module,
    loader: DataLoader,
    activation: str | None = "sigmoid",
    output_key: str | None = None,
    device: str | torch.device = "auto",
    *,
    input_fn: Callable = default_input_fn,
    amp: str | bool | None = None,
    channels_last: bool = False,
    keep_extras: bool = True,
) -> Predictions:
    """Run the model over a loader; main output through ``activation`` into ``y_score``.

    The main output is ``outputs[output_key]``, or ``outputs["logits"]``, or the only output;
    every other per-case output is kept in ``extras`` (disable with ``keep_extras=False``).
    """
    dev = resolve_device(device)
    preds, _ = _run_eval(model.to(dev), loader, dev, losses=None, activation=activation,
                         output_key=output_key, input_fn=input_fn, amp=amp,
                         channels_last=channels_last, keep_extras=keep_extras)
    return preds

