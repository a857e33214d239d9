"""Per-step learning-rate schedule for Yin et al.'s detectors, inside the optimiser.

The paper gives Adam with learning rate 0.001 and a "learning rate decay 0.001" of unstated
form. The engine (:func:`brainlib.engine.fit`) steps a StepLR per epoch only; a warm-up
followed by a cosine decay is set here per optimiser step, so the engine stays as it is.
The step count is read from Adam's own per-parameter state, which the engine checkpoints, so
a resumed training continues the schedule exactly where it stopped.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from brainlib.engine import optim as engine_optim


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Multiplier of the base rate before optimiser step ``step`` (0-based): linear warm-up over
    ``warmup`` steps, then half a cosine down to 0 at ``total``."""
    if total <= 0:
        raise ValueError(f"total steps must be > 0, got {total}")
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


class WarmupCosineAdam(torch.optim.Adam):
    """Adam whose learning rate follows :func:`warmup_cosine` of the steps it has taken."""

    def __init__(self, params: Iterable[Any], lr: float, total_steps: int, warmup_steps: int = 0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay, foreach=engine_optim.FOREACH)
        self.total_steps, self.warmup_steps = int(total_steps), int(warmup_steps)
        for group in self.param_groups:
            group.setdefault("base_lr", group["lr"])
        self._set_rate(0)  # validates; the engine logs the rate of the next step

    def steps_taken(self) -> int:
        """Optimiser steps already taken (Adam's per-parameter ``step``; 0 before the first)."""
        steps = [float(s["step"]) for s in self.state.values() if "step" in s]
        return int(max(steps)) if steps else 0

    def _set_rate(self, step: int) -> None:
        factor = warmup_cosine(step, self.total_steps, self.warmup_steps)
        for group in self.param_groups:
            group["lr"] = group["base_lr"] * factor

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> Any:  # type: ignore[override]
        self._set_rate(self.steps_taken())
        out = super().step(closure)
        self._set_rate(self.steps_taken())
        return out


def optimizer_factory(schedule: str, total_steps: int, warmup_steps: int) -> str | Callable:
    """``fit(optimizer=...)``: ``"adam"`` for a constant rate, else a :class:`WarmupCosineAdam`
    builder for ``schedule == "cosine"``."""
    if schedule == "constant":
        return "adam"
    if schedule != "cosine":
        raise ValueError(f"det_schedule must be 'constant' or 'cosine', got {schedule!r}")

    def build(groups: list[dict[str, Any]], lr: float, weight_decay: float) -> WarmupCosineAdam:
        return WarmupCosineAdam(groups, lr=lr, total_steps=total_steps, warmup_steps=warmup_steps,
                                weight_decay=weight_decay)
    return build
