"""Batch helpers shared by training and evaluation: device transfer, batch size, ids,
mixed precision and the weighted sum of named losses.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch

LossFn = Callable[[Any, Mapping[str, Any]], torch.Tensor]
LossSpec = tuple[str, LossFn, float]


def default_input_fn(batch: Mapping[str, Any]) -> Any:
    """The model input of a batch: ``batch["x"]``."""
    if "x" not in batch:
        raise KeyError(f"batch has no 'x' (keys: {sorted(batch)}); pass input_fn= to fit/predict")
    return batch["x"]


def _to_device(obj: Any, device: torch.device, channels_last: bool = False) -> Any:
    if isinstance(obj, torch.Tensor):
        obj = obj.to(device, non_blocking=True)
        if channels_last and obj.dim() == 4 and obj.is_floating_point():
            obj = obj.contiguous(memory_format=torch.channels_last)
        return obj
    if isinstance(obj, Mapping):
        return {k: _to_device(v, device, channels_last) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and obj and isinstance(obj[0], torch.Tensor):
        return type(obj)(_to_device(v, device, channels_last) for v in obj)
    return obj


def _batch_size(batch: Mapping[str, Any]) -> int:
    for key in ("y", "x"):
        value = batch.get(key)
        if isinstance(value, torch.Tensor):
            return int(value.shape[0])
    ids = batch.get("id")
    if ids is not None:
        return len(ids)
    raise ValueError(f"cannot tell the batch size (keys: {sorted(batch)})")


def _ids(batch: Mapping[str, Any], n: int, offset: int) -> list[str]:
    ids = batch.get("id")
    if ids is None:
        return [str(offset + i) for i in range(n)]
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    return [str(i) for i in ids]


def _amp_context(amp: str | bool | None, device: torch.device):
    """Autocast context: ``"bf16"`` (CPU or CUDA), ``"fp16"`` (CUDA only), or off."""
    mode = _amp_mode(amp, device)
    if mode is None:
        return nullcontext()
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _amp_mode(amp: str | bool | None, device: torch.device) -> str | None:
    if amp in (None, False, "off", "none", ""):
        return None
    if amp is True or amp == "auto":
        return "fp16" if device.type == "cuda" else "bf16"
    if amp not in ("bf16", "fp16"):
        raise ValueError(f"amp must be None/False, True/'auto', 'bf16' or 'fp16', got {amp!r}")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("amp='fp16' needs CUDA; use amp='bf16' on CPU")
    return amp


def _compute_losses(
    outputs: Any, batch: Mapping[str, Any], losses: Sequence[LossSpec]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the named losses, and each unweighted value for logging."""
    if not losses:
        raise ValueError("losses is empty: give at least one (name, fn, weight)")
    total: torch.Tensor | None = None
    parts: dict[str, float] = {}
    for name, fn, weight in losses:
        value = fn(outputs, batch)
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            raise ValueError(f"loss {name!r} must return a scalar tensor, got {type(value)}")
        value = value.float()
        parts[name] = float(value.detach())
        total = weight * value if total is None else total + weight * value
    assert total is not None
    return total, parts

