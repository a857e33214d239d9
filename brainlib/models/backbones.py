"""Backbones shared by the papers' models (VGG-16 for He et al. 2024 and Wang et al. DrCT).

ImageNet weights cannot be downloaded on our machines. `vgg16_features` loads them from a
local file when one is given (or `BRAINLIB_VGG16_WEIGHTS` names one) and otherwise builds a
randomly initialised network and *says so* through the returned `init` note, which callers
put in the run manifest. It never fails for lack of weights and never pretends to have them.
`width` < 1 scales every channel count for CPU profiles (a recorded deviation).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torchvision.models.vgg import cfgs, make_layers

from brainlib.models._weights import load_weights, read_state_dict

# torchvision's VGG-16 layer list ("D"): channel counts and "M" for max-pool.
VGG16_CFG: list = list(cfgs["D"])


@dataclass(frozen=True)
class BackboneInit:
    """How a backbone was initialised, for the manifest."""

    pretrained: bool
    source: str  # path of the weights file, or "random initialisation"
    note: str


def _scaled_cfg(width: float, in_channels: int) -> list:
    return [v if v == "M" else max(4, int(round(v * width))) for v in VGG16_CFG]


def vgg16_features(
    width: float = 1.0,
    weights: str | os.PathLike | None = None,
    batch_norm: bool = False,
) -> tuple[nn.Sequential, BackboneInit]:
    """VGG-16 convolutional layers (torchvision's `features`), 3 input channels.

    Args:
        width: channel multiplier (1.0 = the paper's VGG-16). Pretrained weights need 1.0.
        weights: path of a torchvision `vgg16` state dict (full model or `features.*` keys;
            `vgg16_bn` with ``batch_norm=True``). Defaults to `$BRAINLIB_VGG16_WEIGHTS` when set.
        batch_norm: a BatchNorm2d after every convolution (torchvision's `vgg16_bn` layout);
            not the papers' VGG-16, so callers declare it as a deviation.
    Returns:
        (features, init) where `init.note` says plainly which initialisation was used.
    """
    features = make_layers(_scaled_cfg(width, 3), batch_norm=batch_norm)
    weights = weights or os.environ.get("BRAINLIB_VGG16_WEIGHTS") or None
    if weights is None:
        note = "VGG-16 from random initialisation (no local ImageNet weights file given)"
        return features, BackboneInit(False, "random initialisation", note)
    path = Path(weights)
    if width != 1.0:
        raise ValueError(f"{path}: ImageNet weights need width=1.0, got width={width}")
    # weights_only read, names and shapes checked, sha256 recorded (brainlib.models._weights)
    state = read_state_dict(path)
    if any(k.startswith("features.") for k in state):
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    kind = "vgg16_bn" if batch_norm else "VGG-16"
    loaded = load_weights(features, path, f"{kind} features", state=state)
    return features, BackboneInit(True, str(path), f"VGG-16 with ImageNet weights from {path} "
                                                   f"(sha256 {loaded.sha256[:16]})")


def vgg16_stage_slices(width: float = 1.0, batch_norm: bool = False) -> dict[str, slice]:
    """Layer ranges of `vgg16_features(width, batch_norm=...)` ending at pool3 (C3), pool4 (C4)
    and pool5 (C5)."""
    pools = [i for i, v in enumerate(_layer_kinds(width, batch_norm)) if v == "pool"]
    return {"C1_3": slice(0, pools[2] + 1), "C4": slice(pools[2] + 1, pools[3] + 1),
            "C5": slice(pools[3] + 1, pools[4] + 1)}


def vgg16_channels(width: float = 1.0) -> dict[str, int]:
    """Output channels of C3, C4, C5 for a given width."""
    convs = [v for v in _scaled_cfg(width, 3) if v != "M"]
    return {"C3": convs[6], "C4": convs[9], "C5": convs[12]}


def _layer_kinds(width: float, batch_norm: bool = False) -> list[str]:
    kinds: list[str] = []
    for v in _scaled_cfg(width, 3):
        kinds += ["pool"] if v == "M" else (["conv", "bn", "relu"] if batch_norm else ["conv", "relu"])
    return kinds
