"""The training loop: :func:`fit` (one for every paper), with checkpoints and resumption."""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from brainlib._atomic import sweep_temp
from brainlib.engine.batches import (LossSpec, _amp_context, _amp_mode, _batch_size, _compute_losses,
                                     _to_device, default_input_fn)
from brainlib.engine import distributed
from brainlib.engine.checkpoint import (BEST_CHECKPOINT, LAST_CHECKPOINT, _atomic_save,
                                        _check_resumable, _jsonable, _rng_state, _set_rng_state, _train_config,
                                        load_checkpoint)
from brainlib.engine.evaluation import Predictions, _run_eval
from brainlib.engine.loaders import _epoch_seed, resolve_device, seed_everything
from brainlib.engine.optim import _make_optimizer, _param_groups

RANK_STREAM = 10**9  # epoch offset of the per-rank RNG seeds (no epoch number reaches it)


@dataclass
class FitResult:
    """What :func:`fit` returns. ``model`` holds the best-on-validation weights."""

    history: pd.DataFrame
    best_epoch: int
    best_score: float
    model: nn.Module
    last_checkpoint: Path | None = None
    best_checkpoint: Path | None = None
    monitor: str = "val_loss"
    resumed_from: int = 0  # epochs already done when fit() was called (0: trained from scratch)
    world_size: int = 1  # processes that trained it (torchrun / DistributedDataParallel)


def _is_better(score: float, best: float | None, mode: str) -> bool:
    if math.isnan(score):
        return False
    if best is None or math.isnan(best):
        return True
    return score < best if mode == "min" else score > best


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader | None = None,
    *,
    losses: Sequence[LossSpec],
    epochs: int,
    lr: float = 1e-3,
    optimizer: str | Callable = "adam",
    weight_decay: float = 0.0,
    param_groups: Sequence[tuple[nn.Module | str, float]] | None = None,
    lr_step: int | None = None,
    lr_gamma: float = 0.1,
    monitor: str = "val_loss",
    mode: str | None = None,
    metric_fn: Callable[[Predictions], Mapping[str, float]] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool | None = None,
    device: str | torch.device = "auto",
    seed: int | None = 0,
    amp: str | bool | None = None,
    channels_last: bool = False,
    progress: bool = True,
    max_steps_per_epoch: int | None = None,
    input_fn: Callable = default_input_fn,
    activation: str | None = "sigmoid",
    output_key: str | None = None,
    grad_clip: float | None = None,
    checkpoint_meta: Mapping[str, Any] | None = None,
) -> FitResult:
    """Train ``model`` and keep the weights that score best on validation.

    Args:
        losses: ``[(name, fn(outputs, batch) -> scalar, weight), ...]`` summed with weights.
        lr, optimizer, weight_decay: Adam by default (``"adam" | "adamw" | "sgd"`` or a
            callable ``(groups, lr=, weight_decay=) -> Optimizer``).
        param_groups: ``[(module or parameter-name prefix, lr), ...]`` per-module learning
            rates (DrCT2: 3e-4 for one sub-network, 5e-4 for the others); others use ``lr``.
        lr_step, lr_gamma: StepLR per epoch (He et al.: 1e-3, /10 every 5 epochs); None = constant.
        monitor, mode: ``"val_loss"`` (min) or a key of ``metric_fn``'s dict (max by default).
            Without a ``val_loader`` the last epoch is taken as best.
        metric_fn: called on validation :class:`Predictions` (scores after ``activation``).
        checkpoint_dir: if set, ``last.pt`` (full training state) after every epoch and
            ``best.pt`` (best weights), both written atomically; temporary files a killed
            run left there are removed first. When every epoch is the best so far (no
            ``val_loader``, or ``monitor="epoch"`` with mode max) ``best.pt`` would repeat
            ``last.pt``'s weights: it is not written and ``best_checkpoint`` is ``last.pt``.
        resume: continue from ``checkpoint_dir/last.pt`` if it exists (the default when a
            ``checkpoint_dir`` is given; a finished training returns at once). ``False``
            discards earlier checkpoints and starts afresh. A checkpoint of another
            configuration raises :class:`CheckpointMismatchError`.
        checkpoint_meta: anything else the checkpoint must match to be resumed (e.g. the
            settings that built the model), stored in both checkpoints.
        seed: seeds python/numpy/torch at the start (None leaves the RNGs alone).
        amp: None (default), ``"bf16"`` (CPU/CUDA autocast), ``"fp16"`` (CUDA, with GradScaler)
            or True (pick by device).
        max_steps_per_epoch: cap the training steps of an epoch (quick profiles, smoke tests).

    Returns:
        :class:`FitResult` with the per-epoch history DataFrame (``epoch, train_loss,
        train_<loss name>, val_loss, val_<loss name>, <metrics>, lr[, lr_<group>], seconds``).
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if mode is None:
        mode = "min" if "loss" in monitor else "max"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    dev = resolve_device(device)
    info = distributed.join(dev)
    dev = distributed.rank_device(dev, info)
    amp_mode = _amp_mode(amp, dev)
    if seed is not None:
        seed_everything(seed)

    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    groups = _param_groups(model, lr, param_groups)
    opt = _make_optimizer(optimizer, groups, lr, weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, lr_step, lr_gamma) if lr_step else None
    scaler = torch.amp.GradScaler("cuda") if amp_mode == "fp16" else None
    meta = _jsonable(dict(checkpoint_meta or {}))
    config = _train_config(
        model, opt, groups, train_loader, lr_step=lr_step, lr_gamma=lr_gamma if lr_step else None,
        amp=amp_mode, channels_last=bool(channels_last), seed=seed, monitor=monitor, mode=mode,
        grad_clip=grad_clip, max_steps_per_epoch=max_steps_per_epoch, meta=meta)
    step_model: nn.Module = model
    if info.active:  # every rank reads and rank 0 writes the checkpoints of rank 0's folder
        train_loader = distributed.train_loader(train_loader, info, seed or 0)
        val_loader = distributed.eval_loader(val_loader, info) if val_loader is not None else None
        checkpoint_dir = distributed.broadcast(
            str(checkpoint_dir) if checkpoint_dir is not None else None, info)
        if seed is not None and info.rank:  # own dropout/augmentation streams per rank
            seed_everything(_epoch_seed(seed, RANK_STREAM + info.rank))
    loaders = [train_loader, val_loader]

    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume and ckpt_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    if resume is None:
        resume = ckpt_dir is not None
    last_path = ckpt_dir / LAST_CHECKPOINT if ckpt_dir else None
    # The latest epoch is always the best: keep no second copy of its weights (one save and
    # one state clone less per epoch; wang_drct2's CV trains ~50 models this way).
    latest_is_best = val_loader is None or (monitor == "epoch" and mode == "max")
    best_path = ckpt_dir / BEST_CHECKPOINT if ckpt_dir and not latest_is_best else None
    if ckpt_dir is not None and info.is_main:
        sweep_temp(ckpt_dir, recursive=False)  # partial checkpoints of a killed run
        if not resume:
            for path in (last_path, ckpt_dir / BEST_CHECKPOINT):
                path.unlink(missing_ok=True)  # type: ignore[union-attr]
    distributed.barrier(info)
    history: list[dict[str, Any]] = []
    best_score: float | None = None
    best_epoch = 0
    best_state: dict[str, torch.Tensor] | None = None
    start_epoch = 0

    if resume and last_path is not None and last_path.is_file():
        state = load_checkpoint(last_path, map_location=dev)
        _check_resumable(last_path, state, config, epochs)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None and state.get("scheduler") is not None:
            sched.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler") is not None:
            scaler.load_state_dict(state["scaler"])
        start_epoch = int(state["epoch"])
        best_score, best_epoch = state["best_score"], int(state["best_epoch"])
        history = list(state["history"])
        _set_rng_state(_rank_rng(state, info), loaders)
    resumed_from = start_epoch
    if info.active and start_epoch < epochs:
        step_model = distributed.wrap_model(model, dev, info)

    bar_factory = _tqdm() if progress and info.is_main else None
    group_names = [g["name"] for g in opt.param_groups]
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        for loader in loaders:
            if loader is not None and hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
        lrs = [g["lr"] for g in opt.param_groups]
        row: dict[str, Any] = {"epoch": epoch + 1}
        train_row = _epoch_fn()(
            step_model, train_loader, opt, scaler, losses, dev, amp_mode, channels_last, input_fn,
            max_steps_per_epoch, grad_clip,
            bar_factory(f"epoch {epoch + 1}/{epochs}", _n_steps(train_loader, max_steps_per_epoch))
            if bar_factory else None)
        row.update(_mean_over_ranks(train_row, info))
        if sched is not None:
            sched.step()
        if val_loader is not None:
            preds, val_losses = None, {}
            if not info.active or len(val_loader.sampler):  # a rank's shard can be empty
                preds, val_losses = _run_eval(
                    model, val_loader, dev, losses=losses, activation=activation,
                    output_key=output_key, input_fn=input_fn, amp=amp_mode,
                    channels_last=channels_last, keep_extras=False)
            preds, val_losses = _gather_validation(preds, val_losses, info)
            row.update({f"val_{k}": v for k, v in val_losses.items()})
            if metric_fn is not None and info.is_main:
                for key, value in metric_fn(preds).items():
                    row[key if key not in row else f"val_{key}"] = float(value)
            row = distributed.broadcast(row, info)  # rank 0's metrics choose the best epoch
        row["lr"] = lrs[0]
        if len(lrs) > 1:
            row.update({f"lr_{name}": v for name, v in zip(group_names, lrs)})
        if val_loader is None:
            score = float(epoch + 1)  # no validation: the latest epoch is the best
            improved = True
        else:
            if monitor not in row:
                raise KeyError(f"monitor {monitor!r} not among logged values {sorted(row)}")
            score = float(row[monitor])
            improved = _is_better(score, best_score, mode)
        if improved:
            best_score, best_epoch = score, epoch + 1
            if not latest_is_best:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if best_path is not None and info.is_main:
                _atomic_save({"model": best_state, "epoch": best_epoch, "best_score": best_score,
                              "monitor": monitor, "meta": meta}, best_path)
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        rng = distributed.gather(_rng_state(loaders), info)
        if last_path is not None and info.is_main:
            _atomic_save({
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "epoch": epoch + 1,
                "best_score": best_score,
                "best_epoch": best_epoch,
                "history": history,
                "rng": rng[0],
                "rng_ranks": rng if info.active else None,
                "monitor": monitor,
                "meta": meta,
                "config": config,
            }, last_path)
        distributed.barrier(info)  # the epoch's checkpoint is on disk before any rank goes on

    if best_state is None and best_path is not None and best_path.is_file():
        best_state = load_checkpoint(best_path, map_location=dev)["model"]
    if best_state is not None:
        model.load_state_dict(best_state)
    best_file = last_path if latest_is_best else best_path
    return FitResult(
        history=pd.DataFrame(history),
        best_epoch=best_epoch,
        best_score=float("nan") if best_score is None else float(best_score),
        model=model,
        last_checkpoint=last_path if last_path is not None and last_path.is_file() else None,
        best_checkpoint=best_file if best_file is not None and best_file.is_file() else None,
        monitor=monitor,
        resumed_from=resumed_from,
        world_size=info.world_size,
    )


def _rank_rng(state: Mapping[str, Any], info: distributed.DistInfo) -> Mapping[str, Any]:
    """This rank's RNG state from a checkpoint (rank 0's when the world size changed)."""
    per_rank = state.get("rng_ranks")
    if info.active and per_rank and len(per_rank) == info.world_size:
        return per_rank[info.rank]
    return state["rng"]


def _mean_over_ranks(values: dict[str, float], info: distributed.DistInfo) -> dict[str, float]:
    """Training losses of the whole epoch: every rank saw as many cases, so the mean of the
    ranks' case-weighted means is the case-weighted mean over all cases."""
    parts = distributed.gather(values, info)
    return {k: sum(p[k] for p in parts) / len(parts) for k in values}


def _gather_validation(preds: Predictions | None, losses: dict[str, float],
                       info: distributed.DistInfo) -> tuple[Predictions, dict[str, float]]:
    """All ranks' validation shards, back in dataset order (``None``: this rank had no case;
    fewer validation cases than ranks leave the last ranks empty)."""
    if not info.active:
        assert preds is not None
        return preds, losses
    parts = distributed.gather((preds, losses), info)
    template = next((p for p, _ in parts if p is not None), None)
    if template is None:
        raise ValueError("the validation loader yielded no batch on any rank")

    def rows(p: Predictions | None, field: str) -> np.ndarray:
        value = getattr(p if p is not None else template, field)
        return value if p is not None else value[:0]

    shards = [p for p, _ in parts]
    n = sum(len(p) for p in shards if p is not None)
    ids = np.empty(n, dtype=object)
    for r, p in enumerate(shards):
        ids[r::info.world_size] = p.ids if p is not None else []
    merged = Predictions(
        ids=[str(i) for i in ids],
        y_true=None if template.y_true is None
        else distributed.interleave([rows(p, "y_true") for p in shards], n),
        y_score=distributed.interleave([rows(p, "y_score") for p in shards], n))
    means = distributed.merge_sums([({k: v * len(p) for k, v in l.items()}, len(p))
                                    for p, l in parts if p is not None])
    return merged, means



def _epoch_fn() -> Callable[..., dict[str, float]]:
    """The epoch loop as the package exposes it: tests patch ``brainlib.engine._train_one_epoch``
    to simulate a kill mid-training, so :func:`fit` looks it up there, not in this module."""
    return getattr(sys.modules[__package__], "_train_one_epoch", _train_one_epoch)


def _tqdm() -> Callable[..., Any]:
    from tqdm.auto import tqdm

    return lambda desc, total: tqdm(desc=desc, total=total, leave=False, mininterval=1.0,
                                    unit="batch")


def _n_steps(loader: DataLoader, max_steps: int | None) -> int | None:
    try:
        n = len(loader)
    except TypeError:  # iterable dataset without __len__
        return max_steps
    return n if max_steps is None else min(n, max_steps)


def _train_one_epoch(
    model: nn.Module, loader: DataLoader, opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None, losses: Sequence[LossSpec], device: torch.device,
    amp_mode: str | None, channels_last: bool, input_fn: Callable, max_steps: int | None,
    grad_clip: float | None, bar: Any,
) -> dict[str, float]:
    """One pass over ``loader``; returns case-weighted mean losses (``train_loss``, ``train_<name>``)."""
    model.train()
    sums: dict[str, float] = {}
    n_total = 0
    try:
        for step, batch in enumerate(loader):
            if max_steps is not None and step >= max_steps:
                break
            batch = _to_device(batch, device, channels_last)
            opt.zero_grad(set_to_none=True)
            with _amp_context(amp_mode, device):
                outputs = model(input_fn(batch))
                total, parts = _compute_losses(outputs, batch, losses)
            if not torch.isfinite(total):
                raise FloatingPointError(f"non-finite training loss {float(total)} at step {step}")
            if scaler is not None:
                scaler.scale(total).backward()
                if grad_clip is not None:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                scaler.step(opt)
                scaler.update()
            else:
                total.backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                opt.step()
            n = _batch_size(batch)
            n_total += n
            for key, value in {"loss": float(total.detach()), **parts}.items():
                sums[key] = sums.get(key, 0.0) + value * n
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if n_total == 0:
        raise ValueError("the training loader yielded no batch")
    return {f"train_{k}": v / n_total for k, v in sums.items()}

