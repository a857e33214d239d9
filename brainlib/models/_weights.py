"""Local weights files given by the user: read without running code, checked, identified.

No pretrained weights can be downloaded here, so a user may point brainlib at a local file
(``BRAINLIB_VGG16_WEIGHTS``, ``weights=`` of a model builder). Such a file is untrusted input:

- it is read with ``torch.load(weights_only=True)``, which unpickles tensors and plain
  containers only (a pickle that would import or call anything is refused);
- it must hold a state dict (``{name: tensor}``, or one under ``state_dict`` / ``model``) whose
  names and shapes match the network, else :class:`WeightsMismatchError` says what differs;
- its sha256 is recorded (:func:`loaded_weights`), and the run manifest lists every weights file
  the process loaded (:meth:`brainlib.report.manifest.Run.finish`), so a result names the exact
  weights it came from.

Every failure is a :class:`WeightsError` whose message starts with the file's path.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

_WRAPPERS = ("state_dict", "model", "model_state_dict", "module")  # common checkpoint layouts
_LOADED: list["WeightsFile"] = []  # every weights file this process loaded, in order


class WeightsError(ValueError):
    """A weights file that cannot be used (not found, not a state dict, mismatched)."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{self.path}: {reason}")


class WeightsMismatchError(WeightsError):
    """The file's tensors do not fit the network: names missing or unexpected, shapes differ."""

    def __init__(self, path: str | os.PathLike[str], what: str, missing: list[str],
                 unexpected: list[str], shapes: list[tuple[str, tuple[int, ...], tuple[int, ...]]]) -> None:
        self.missing, self.unexpected, self.shapes = missing, unexpected, shapes
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensor(s) missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])}"
                         f"{', ...' if len(unexpected) > 3 else ''})")
        if shapes:
            shown = ", ".join(f"{k}: file {list(a)}, network {list(b)}" for k, a, b in shapes[:3])
            parts.append(f"{len(shapes)} of another shape ({shown}{', ...' if len(shapes) > 3 else ''})")
        super().__init__(path, f"refused: not {what} weights for this network: " + "; ".join(parts))


@dataclass(frozen=True)
class WeightsFile:
    """A weights file as loaded: identity (sha256, size) and how much of the network it set."""

    path: str
    sha256: str
    bytes: int
    what: str
    loaded: int  # tensors copied into the network
    total: int  # tensors of the network

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The ``{name: tensor}`` dict in a local file, read with ``weights_only=True``.

    Raises:
        WeightsError: missing file, not a torch file, a pickle that would run code, or no
            state dict of tensors inside.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(p, "weights file not found")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError (code in the pickle), RuntimeError (not a torch file), ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(p, f"not a plain PyTorch weights file (loaded with weights_only=True: "
                              f"{type(exc).__name__}: {first[:200]})") from exc
    for key in _WRAPPERS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(p, f"holds a {type(obj).__name__}, not a state dict of named tensors")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(p, f"not a state dict of tensors ({len(bad)} entries are not named tensors, "
                              f"e.g. {bad[0][:80]!r})")
    return dict(obj)


def check_state_dict(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor],
                     path: str | os.PathLike[str], what: str, *, allow_missing: Iterable[str] = (),
                     allow_unexpected: bool = False, allow_shape: Iterable[str] = ()) -> None:
    """Raise :class:`WeightsMismatchError` unless `state`'s names and shapes fit `expected`.

    ``allow_missing`` / ``allow_shape``: names the caller re-initialises anyway (a first
    convolution rebuilt for two channels, a classifier for four classes).
    """
    may_miss, may_differ = set(allow_missing), set(allow_shape)
    missing = [k for k in expected if k not in state and k not in may_miss]
    unexpected = [] if allow_unexpected else [k for k in state if k not in expected]
    shapes = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape) and k not in may_differ]
    if missing or unexpected or shapes:
        raise WeightsMismatchError(path, what, missing, unexpected, shapes)


def load_weights(module: nn.Module, path: str | os.PathLike[str], what: str, *,
                 state: Mapping[str, torch.Tensor] | None = None, allow_missing: Iterable[str] = (),
                 allow_unexpected: bool = False, allow_shape: Iterable[str] = ()) -> WeightsFile:
    """Check and load a local weights file into `module`; record it (:func:`loaded_weights`).

    ``state``: the file's tensors already read (and renamed) by the caller with
    :func:`read_state_dict`. Tensors whose names are allowed to be missing or of another
    shape are left as initialised; everything else must match exactly.
    """
    p = Path(path)
    tensors = read_state_dict(p) if state is None else dict(state)
    own = module.state_dict()
    check_state_dict(own, tensors, p, what, allow_missing=allow_missing,
                     allow_unexpected=allow_unexpected, allow_shape=allow_shape)
    use = {k: v for k, v in tensors.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    module.load_state_dict(use, strict=False)
    record = WeightsFile(str(p.resolve()), sha256_file(p), p.stat().st_size, what, len(use), len(own))
    _LOADED.append(record)
    return record


def loaded_weights() -> list[dict[str, Any]]:
    """Every weights file loaded by this process (a notebook kernel runs one notebook), once each."""
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in _LOADED:
        seen[(record.path, record.sha256, record.what)] = record.to_dict()
    return list(seen.values())
