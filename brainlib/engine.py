"""One training / evaluation engine for every brainlib paper.

Every paper pipeline (He et al. 2024, Wang et al. DrCT1/DrCT2, Yin et al. 2024, Lin et al. 2021,
Pandiyaraju et al. 2024) trains through :func:`fit` and scores through :func:`evaluate` /
:func:`predict`, so seeding, checkpointing, resumption and mixed precision are written once.

Reading order: seeding and loaders -> batch helpers -> optimiser construction -> checkpoints
-> :func:`evaluate` / :func:`predict` -> :func:`fit` -> :func:`kfold_split`.

Conventions
-----------
* A batch is a dict ``{"x": tensor, "y": tensor, "id": list[str] | tensor, ...}``; the model
  input is ``input_fn(batch)`` (default ``batch["x"]``), so multi-input models work.
* A model returns a tensor or a dict of tensors.
* ``losses`` is a list of ``(name, fn(outputs, batch) -> scalar tensor, weight)``; the training
  objective is the weighted sum. Each named loss is logged separately.
* Determinism: on CPU two runs with the same seed are bit-identical. Shuffling order of epoch
  ``e`` depends only on ``(seed, e)`` (:class:`EpochShuffleSampler`), and every RNG state
  (python, numpy, torch, CUDA, loader generators) is stored in the checkpoint, so
  ``resume=True`` after an interruption reproduces the uninterrupted run exactly.
* Interruption: with a ``checkpoint_dir``, :func:`fit` resumes by default. Rerunning the same
  command after a kill continues from the last completed epoch (``last.pt``, written atomically
  after every epoch) and ends with the same weights as an uninterrupted run; a training whose
  checkpoint is already at the final epoch returns at once without training. A checkpoint
  written for another configuration (model parameters, optimiser, schedule, data size,
  ``checkpoint_meta``) is refused with :class:`CheckpointMismatchError`, never half-loaded.
"""
from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from brainlib._atomic import atomic_path, sweep_temp

__all__ = [
    "CheckpointMismatchError",
    "EpochShuffleSampler",
    "FitResult",
    "LossSpec",
    "Predictions",
    "evaluate",
    "fit",
    "kfold_split",
    "load_checkpoint",
    "make_loader",
    "predict",
    "resolve_device",
    "seed_everything",
    "seed_worker",
]

LossFn = Callable[[Any, Mapping[str, Any]], torch.Tensor]
LossSpec = tuple[str, LossFn, float]
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"


# --------------------------------------------------------------------------- seeding, loaders
@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with `n` torch CPU threads (None: unchanged), then restore the count.

    Phases differ (docs/PERFORMANCE.md): small training loops on a shared 2-core CPU run fastest
    on 1 thread, encoders may want 2; the thread count changes float results, so it is a setting.
    """
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Map ``"auto"`` to CUDA when available else CPU; refuse ``"cuda"`` without a GPU."""
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} requested but no CUDA device is available")
    if name == "cpu" or name.startswith("cuda"):
        return torch.device(name)
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices).

    ``deterministic=True`` also asks torch for deterministic kernels (``warn_only``, because
    e.g. torchvision's ``roi_align`` backward on CUDA has none) and turns off cuDNN benchmarking.
    CPU runs are bit-identical per seed without it.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def _epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed derived from (seed, epoch), independent of any global RNG."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]) >> 1


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and python from the worker's torch seed.

    Each worker's torch seed is ``base_seed + worker_id`` with ``base_seed`` drawn from the
    loader's generator, so it differs per worker and per epoch and is reproducible per loader
    seed. Recent torch releases already seed python/numpy in workers; doing it here keeps the
    guarantee explicit and independent of the torch version.
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


class EpochShuffleSampler(Sampler[int]):
    """Random permutation whose order depends only on ``(seed, epoch)``.

    :func:`fit` calls :meth:`set_epoch` before every epoch (like ``DistributedSampler``), so
    a resumed run sees exactly the order an uninterrupted run would have seen.
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose seeded order ``__iter__`` yields (called by :func:`fit`)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    workers: int = 0,
    *,
    drop_last: bool = False,
    collate_fn: Callable | None = None,
    pin_memory: bool | None = None,
) -> DataLoader:
    """A reproducible DataLoader: per-epoch seeded shuffling, seeded workers and generator."""
    generator = torch.Generator().manual_seed(int(seed))
    sampler = EpochShuffleSampler(len(dataset), seed) if shuffle else None  # type: ignore[arg-type]
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        worker_init_fn=seed_worker,
        generator=generator,
        drop_last=drop_last,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        persistent_workers=False,
    )


# --------------------------------------------------------------------------- batch helpers
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


# --------------------------------------------------------------------------- optimiser
def _param_groups(
    model: nn.Module, lr: float, param_groups: Sequence[tuple[nn.Module | str, float]] | None
) -> list[dict[str, Any]]:
    """Split trainable parameters into groups with their own learning rate.

    Each spec is ``(module or parameter-name prefix, lr)``; a parameter goes to the first spec
    that claims it; the rest train at ``lr``. A spec that claims nothing is an error (a typo in
    a prefix must not silently train at the wrong rate).
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not param_groups:
        return [{"params": [p for _, p in named], "lr": lr, "name": "default"}]
    taken: set[int] = set()
    groups: list[dict[str, Any]] = []
    for i, (spec, group_lr) in enumerate(param_groups):
        if isinstance(spec, nn.Module):
            ids = {id(p) for p in spec.parameters()}
            chosen = [p for _, p in named if id(p) in ids and id(p) not in taken]
            label = f"group{i}:{type(spec).__name__}"
        elif isinstance(spec, str):
            chosen = [p for n, p in named
                      if (n == spec or n.startswith(spec.rstrip(".") + ".")) and id(p) not in taken]
            label = spec
        else:
            raise TypeError(f"param_groups entry {i} must be (nn.Module | str, lr), got {spec!r}")
        if not chosen:
            raise ValueError(f"param_groups entry {i} ({label!r}) matches no trainable parameter")
        taken.update(id(p) for p in chosen)
        groups.append({"params": chosen, "lr": float(group_lr), "name": label})
    rest = [p for _, p in named if id(p) not in taken]
    if rest:
        groups.append({"params": rest, "lr": lr, "name": "default"})
    return groups


def _make_optimizer(
    name: str | Callable, groups: list[dict[str, Any]], lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    if callable(name):
        return name(groups, lr=lr, weight_decay=weight_decay)
    key = name.lower()
    if key == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    if key == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if key == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'adam', 'adamw', 'sgd' or a callable, got {name!r}")


# --------------------------------------------------------------------------- checkpoints
def _atomic_save(obj: Any, path: Path) -> None:
    """torch.save through `brainlib._atomic.atomic_path` (temp file, fsync, rename)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _rng_state(loaders: Sequence[DataLoader | None]) -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "loaders": [l.generator.get_state() if l is not None and l.generator is not None
                    else None for l in loaders],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any], loaders: Sequence[DataLoader | None]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for loader, gen_state in zip(loaders, state["loaders"]):
        if loader is not None and loader.generator is not None and gen_state is not None:
            loader.generator.set_state(gen_state)


class CheckpointMismatchError(ValueError):
    """A checkpoint folder holds the training state of a different configuration."""


def _jsonable(obj: Any) -> Any:
    """Plain JSON values (tuples become lists, anything else its repr) for exact comparison."""
    return json.loads(json.dumps(obj, sort_keys=True, default=repr))


def _model_signature(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    return {k: [list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in state_dict.items()
            if isinstance(v, torch.Tensor)}


def _train_config(model: nn.Module, opt: torch.optim.Optimizer, groups: list[dict[str, Any]],
                  loader: DataLoader, **settings: Any) -> dict[str, Any]:
    """What a checkpoint must match to be resumed (:func:`_check_resumable`)."""
    try:
        n_train: int | None = len(loader.dataset)  # type: ignore[arg-type]
    except TypeError:
        n_train = None
    defaults = {k: v for k, v in opt.defaults.items() if k not in ("lr", "foreach", "fused",
                                                                   "capturable", "differentiable")}
    return _jsonable({
        "model": _model_signature(model.state_dict()),
        "optimizer": type(opt).__name__,
        "optimizer_defaults": defaults,
        "param_groups": [[g["name"], [list(p.shape) for p in g["params"]], g["lr"]] for g in groups],
        "train_cases": n_train,
        "batch_size": loader.batch_size,
        **settings,
    })


def _check_resumable(path: Path, state: Mapping[str, Any], config: Mapping[str, Any],
                     epochs: int) -> None:
    """Raise :class:`CheckpointMismatchError` unless `state` was written for `config`."""
    saved = state.get("config")
    if saved is None:  # written before configs were stored: compare weights and meta only
        saved = {"model": _jsonable(_model_signature(state["model"])),
                 "meta": _jsonable(state.get("meta") or {})}
    diffs = []
    for key in sorted(set(saved) | set(config)):
        if key not in saved or key not in config:
            if key in saved or key == "model" or key == "meta":
                diffs.append(f"{key}: checkpoint {saved.get(key)!r}, now {config.get(key)!r}")
            continue
        if saved[key] == config[key]:
            continue
        if key == "model":
            old, new = saved[key], config[key]
            parts = [f"missing {k}" for k in new if k not in old][:3]
            parts += [f"unexpected {k}" for k in old if k not in new][:3]
            parts += [f"{k} {old[k][0]} -> {new[k][0]}" for k in new
                      if k in old and old[k] != new[k]][:3]
            diffs.append("model parameters differ (" + ", ".join(parts) + ")")
        else:
            diffs.append(f"{key}: checkpoint {saved[key]!r}, now {config[key]!r}")
    if int(state["epoch"]) > epochs:
        diffs.append(f"epochs: the checkpoint is at epoch {state['epoch']}, past epochs={epochs}")
    if diffs:
        raise CheckpointMismatchError(
            f"{path}: written for a different training configuration, refusing to resume: "
            + "; ".join(diffs) + f". Delete {path.parent} or pass resume=False to start afresh.")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` (our own files, so full unpickling is allowed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # corrupted / foreign file
        raise RuntimeError(f"{path}: cannot read checkpoint ({exc})") from exc


# --------------------------------------------------------------------------- evaluate / predict
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


# --------------------------------------------------------------------------- fit
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
            run left there are removed first.
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
    dev = resolve_device(device)
    if mode is None:
        mode = "min" if "loss" in monitor else "max"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
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
    loaders = [train_loader, val_loader]

    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume and ckpt_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    if resume is None:
        resume = ckpt_dir is not None
    last_path = ckpt_dir / LAST_CHECKPOINT if ckpt_dir else None
    best_path = ckpt_dir / BEST_CHECKPOINT if ckpt_dir else None
    config = _train_config(
        model, opt, groups, train_loader, lr_step=lr_step, lr_gamma=lr_gamma if lr_step else None,
        amp=amp_mode, channels_last=bool(channels_last), seed=seed, monitor=monitor, mode=mode,
        grad_clip=grad_clip, max_steps_per_epoch=max_steps_per_epoch,
        meta=dict(checkpoint_meta or {}))
    if ckpt_dir is not None:
        sweep_temp(ckpt_dir, recursive=False)  # partial checkpoints of a killed run
        if not resume:
            for path in (last_path, best_path):
                path.unlink(missing_ok=True)  # type: ignore[union-attr]
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
        _set_rng_state(state["rng"], loaders)
    resumed_from = start_epoch

    bar_factory = _tqdm() if progress else None
    group_names = [g["name"] for g in opt.param_groups]
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        for loader in loaders:
            if loader is not None and hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
        lrs = [g["lr"] for g in opt.param_groups]
        row: dict[str, Any] = {"epoch": epoch + 1}
        row.update(_train_one_epoch(
            model, train_loader, opt, scaler, losses, dev, amp_mode, channels_last, input_fn,
            max_steps_per_epoch, grad_clip,
            bar_factory(f"epoch {epoch + 1}/{epochs}", _n_steps(train_loader, max_steps_per_epoch))
            if bar_factory else None))
        if sched is not None:
            sched.step()
        if val_loader is not None:
            preds, val_losses = _run_eval(
                model, val_loader, dev, losses=losses, activation=activation,
                output_key=output_key, input_fn=input_fn, amp=amp_mode,
                channels_last=channels_last, keep_extras=False)
            row.update({f"val_{k}": v for k, v in val_losses.items()})
            if metric_fn is not None:
                for key, value in metric_fn(preds).items():
                    row[key if key not in row else f"val_{key}"] = float(value)
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
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if best_path is not None:
                _atomic_save({"model": best_state, "epoch": best_epoch, "best_score": best_score,
                              "monitor": monitor, "meta": dict(checkpoint_meta or {})}, best_path)
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if last_path is not None:
            _atomic_save({
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "epoch": epoch + 1,
                "best_score": best_score,
                "best_epoch": best_epoch,
                "history": history,
                "rng": _rng_state(loaders),
                "monitor": monitor,
                "meta": dict(checkpoint_meta or {}),
                "config": config,
            }, last_path)

    if best_state is None and best_path is not None and best_path.is_file():
        best_state = load_checkpoint(best_path, map_location=dev)["model"]
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(
        history=pd.DataFrame(history),
        best_epoch=best_epoch,
        best_score=float("nan") if best_score is None else float(best_score),
        model=model,
        last_checkpoint=last_path if last_path is not None and last_path.is_file() else None,
        best_checkpoint=best_path if best_path is not None and best_path.is_file() else None,
        monitor=monitor,
        resumed_from=resumed_from,
    )


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


# --------------------------------------------------------------------------- k-fold
def kfold_split(
    labels: Any, n_splits: int = 5, seed: int = 0, groups: Sequence[Any] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, group-aware k-fold split for single- or multi-label targets.

    Uses the iterative stratification of Sechidis, Tsoumakas & Vlahavas (ECML-PKDD 2011) at
    the level of groups (patients): each group is one unit carrying the sum of its members'
    labels and its size, so a group is never split between folds. The label with the fewest
    units left is placed first, each unit going to the fold that most lacks that label (ties:
    the fold most lacking cases, then random). A 1-D label vector (classes) is one-hot encoded,
    which reduces this to ordinary stratification. NaN (unknown) labels count as 0. Units
    with no positive label are placed last, to the folds most lacking cases.

    Args:
        labels: (N,) class labels or (N, C) binary/NaN matrix.
        groups: (N,) group id per case (e.g. patient); None = every case its own group.

    Returns:
        ``n_splits`` pairs ``(train_idx, test_idx)`` of sorted int arrays; deterministic per seed.
    """
    y = np.asarray(labels)
    if y.ndim == 1:
        _, codes = np.unique(y, return_inverse=True)
        y = np.eye(codes.max() + 1 if codes.size else 0)[codes]
    elif y.ndim != 2:
        raise ValueError(f"labels must be 1-D or 2-D, got shape {y.shape}")
    y = np.nan_to_num(y.astype(float), nan=0.0)
    n = y.shape[0]
    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}")
    if groups is None:
        unit_of = np.arange(n)
    else:
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} entries for {n} labels")
        _, unit_of = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    n_units = int(unit_of.max()) + 1 if n else 0
    if n_units < n_splits:
        raise ValueError(f"cannot make {n_splits} folds from {n_units} "
                         f"{'groups' if groups is not None else 'cases'}")
    unit_labels = np.zeros((n_units, y.shape[1]))
    np.add.at(unit_labels, unit_of, y)
    unit_size = np.bincount(unit_of, minlength=n_units).astype(float)

    rng = np.random.default_rng(seed)
    need_label = np.tile(unit_labels.sum(0) / n_splits, (n_splits, 1))
    need_size = np.full(n_splits, n / n_splits)
    fold_of = np.full(n_units, -1)
    remaining = unit_labels.copy()

    def place(unit: int, label: int | None) -> None:
        candidates = np.arange(n_splits)
        if label is not None:
            col = need_label[:, label]
            candidates = candidates[col == col.max()]
        sizes = need_size[candidates]
        candidates = candidates[sizes == sizes.max()]
        fold = int(rng.choice(candidates))
        fold_of[unit] = fold
        need_label[fold] -= unit_labels[unit]
        need_size[fold] -= unit_size[unit]
        remaining[unit] = 0

    while True:
        counts = (remaining > 0).sum(0)
        active = np.flatnonzero(counts)
        if active.size == 0:
            break
        rarest = active[counts[active] == counts[active].min()]
        label = int(rng.choice(rarest))
        units = np.flatnonzero(remaining[:, label] > 0)
        for unit in rng.permutation(units):
            place(int(unit), label)
    for unit in rng.permutation(np.flatnonzero(fold_of < 0)):
        place(int(unit), None)

    case_fold = fold_of[unit_of]
    folds = []
    for k in range(n_splits):
        test = np.flatnonzero(case_fold == k)
        if test.size == 0:
            raise ValueError(f"fold {k} is empty: too few cases/groups for {n_splits} folds")
        folds.append((np.flatnonzero(case_fold != k), test))
    return folds
