"""Checkpoints: atomic writes, RNG state, the configuration a checkpoint must match to be resumed.

Checkpoints hold only tensors and plain Python values (the numpy RNG state is stored as a tensor
and its scalars), so :func:`load_checkpoint` reads them with ``torch.load(weights_only=True)``:
a checkpoint file cannot run code when loaded. Files written before this format (the numpy RNG
state as an ndarray) still load: exactly the numpy types such a state needs are allowed.
"""
from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from brainlib._atomic import atomic_path

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"


def _atomic_save(obj: Any, path: Path) -> None:
    """torch.save through `brainlib._atomic.atomic_path` (temp file, fsync, rename)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _rng_state(loaders: Sequence[DataLoader | None]) -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
        "loaders": [l.generator.get_state() if l is not None and l.generator is not None
                    else None for l in loaders],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any], loaders: Sequence[DataLoader | None]) -> None:
    random.setstate(state["python"])
    _set_numpy_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for loader, gen_state in zip(loaders, state["loaders"]):
        if loader is not None and loader.generator is not None and gen_state is not None:
            loader.generator.set_state(gen_state)


def _numpy_state() -> dict[str, Any]:
    """numpy's legacy global RNG state in weights-only-loadable form."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _set_numpy_state(state: Any) -> None:
    if isinstance(state, Mapping):
        state = (state["name"], state["keys"].numpy().astype(np.uint32), state["pos"],
                 state["has_gauss"], state["cached_gaussian"])
    np.random.set_state(state)  # a tuple: checkpoints written before the tensor form


def _legacy_numpy_globals() -> list[Any]:
    """What an ndarray RNG state of an older checkpoint needs to unpickle (and nothing else)."""
    multiarray = getattr(np, "_core", None) or np.core
    return [multiarray.multiarray._reconstruct, np.ndarray, np.dtype,
            type(np.dtype(np.uint32))]


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
    """Load a checkpoint written by :func:`fit` with ``weights_only=True`` (no code runs).

    Raises:
        FileNotFoundError: no file at ``path``.
        RuntimeError: the file is corrupted, foreign, or holds objects outside tensors and plain
            Python values (the message names the file and torch's reason).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(_legacy_numpy_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupted / foreign file
        raise RuntimeError(f"{path}: cannot read checkpoint ({exc})") from exc

