"""One model registry for every paper (the timm / torchvision `_api.py` pattern).

Notebooks choose models by string: ``create_model("he2024_full", num_classes=6)``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_PAPER: dict[str, str] = {}


def register_model(name: str | None = None, *, paper: str = "") -> Callable:
    """Decorator registering a builder under `name` (default: the function's name).

    Refuses duplicate names so two papers cannot silently shadow each other.
    """

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is already registered")
        _REGISTRY[key] = fn
        _PAPER[key] = paper
        return fn

    return wrap


def create_model(name: str, **cfg: Any) -> nn.Module:
    """Build a registered model; unknown names list what exists.

    Every model module is imported only when `name` is not registered yet: a paper's code has
    usually imported its own models already, and the others (timm among them) cost ~1.5 s.
    """
    if name not in _REGISTRY:
        _import_all()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**cfg)


def list_models(paper: str | None = None) -> list[str]:
    """Registered model names, optionally only those of one paper."""
    _import_all()
    return sorted(k for k in _REGISTRY if paper is None or _PAPER[k] == paper)


def _import_all() -> None:
    # Importing the model modules runs their @register_model decorators.
    import importlib
    import pkgutil

    import brainlib.models as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"brainlib.models.{mod.name}")
