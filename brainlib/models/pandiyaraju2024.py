"""Networks of Pandiyaraju et al. (2024), "Multi-attention-enhanced deep learning frameworks for
the segmentation and classification of breast cancer tumours in ultrasound images",
arXiv 2407.02844 (abstract only available to us).

* **Segmentation** — "a spatial channel attention mechanism ... utilizing a novel LinkNet DL
  framework with an InceptionResNet backbone": LinkNet (Chaurasia & Culurciello 2017) from
  ``segmentation_models_pytorch`` with an Inception-ResNet-v2 encoder (Szegedy et al. 2017);
  after every decoder block a concurrent spatial and channel squeeze-and-excitation (scSE,
  Roy et al. 2018; smp's ``SCSEModule``). The abstract does not say where the attention sits:
  after each decoder block is our reading. The last block's spatial map is returned as the
  attention map.
* **Classification** — "a deep convolutional neural network with an integrated multi-attention
  framework (DCNNIMAF)": channel and spatial attention (CBAM, ``brainlib.layers.attention``)
  after each of four convolution stages, and multiscale attention fusing the pooled features
  of the last three stages with learned per-scale weights. The layer sizes are not in the
  abstract: all ours.

Encoders: ``"inceptionresnetv2"`` is smp's exact Inception-ResNet-v2 (55 M parameters, 'same'
padding); ``"inceptionresnetv2_lite"`` is the same topology (stem, Mixed-5b, Block35 x n,
reduction A, Block17 x n, reduction B, Block8 x n, 1x1 conv) with widths scaled by ``width``
and fewer repeats, for CPU profiles (a declared deviation). Random initialisation unless a
local weights file is given (no download).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from brainlib.data.classes import BUSI_CLASSES
from brainlib.layers.attention import CBAM
from brainlib.models._weights import load_weights as load_checked_weights
from brainlib.models._registry import register_model


def _conv(cin: int, cout: int, k: int | tuple[int, int] = 1, s: int = 1) -> nn.Sequential:
    """Conv (no bias, 'same' padding for stride 1, k//2 for stride 2) + BN + ReLU."""
    kk = (k, k) if isinstance(k, int) else k
    pad = (kk[0] // 2, kk[1] // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, kk, s, pad, bias=False),
                         nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    """Inception-ResNet residual block: branches concatenated, 1x1 up, scaled, added."""

    def __init__(self, channels: int, branches: Sequence[nn.Module], cat: int, scale: float,
                 relu: bool = True) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.up = nn.Conv2d(cat, channels, 1)
        self.scale, self.relu = scale, relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.scale * self.up(torch.cat([b(x) for b in self.branches], 1))
        return F.relu(y) if self.relu else y


class _Concat(nn.Module):
    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class InceptionResNetV2Lite(nn.Module):
    """Inception-ResNet-v2 topology with scaled widths and repeats; smp encoder interface.

    ``forward`` returns ``[x, f/2, f/4, f/8, f/16, f/32]`` with channels ``out_channels``.
    ``width=1, repeats=(10, 20, 9)`` is the published network's layout.
    """

    def __init__(self, width: float = 1.0, repeats: tuple[int, int, int] = (10, 20, 9),
                 in_channels: int = 3) -> None:
        super().__init__()
        c = lambda v: max(4, int(round(v * width)))  # noqa: E731
        c5, c6, c7 = c(320), c(320) + c(384) + c(384), 0
        self.stage1 = nn.Sequential(_conv(in_channels, c(32), 3, 2), _conv(c(32), c(32), 3),
                                    _conv(c(32), c(64), 3))
        self.stage2 = nn.Sequential(nn.MaxPool2d(3, 2, 1), _conv(c(64), c(80)), _conv(c(80), c(192), 3))
        mixed_5b = _Concat(_conv(c(192), c(96)), nn.Sequential(_conv(c(192), c(48)), _conv(c(48), c(64), 5)),
                           nn.Sequential(_conv(c(192), c(64)), _conv(c(64), c(96), 3), _conv(c(96), c(96), 3)),
                           nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), _conv(c(192), c(64))))
        c5 = c(96) + c(64) + c(96) + c(64)
        block35 = [_Residual(c5, [_conv(c5, c(32)), nn.Sequential(_conv(c5, c(32)), _conv(c(32), c(32), 3)),
                                  nn.Sequential(_conv(c5, c(32)), _conv(c(32), c(48), 3), _conv(c(48), c(64), 3))],
                             c(32) + c(32) + c(64), 0.17) for _ in range(repeats[0])]
        self.stage3 = nn.Sequential(nn.MaxPool2d(3, 2, 1), mixed_5b, *block35)
        mixed_6a = _Concat(_conv(c5, c(384), 3, 2),
                           nn.Sequential(_conv(c5, c(256)), _conv(c(256), c(256), 3), _conv(c(256), c(384), 3, 2)),
                           nn.MaxPool2d(3, 2, 1))
        c6 = c(384) + c(384) + c5
        block17 = [_Residual(c6, [_conv(c6, c(192)), nn.Sequential(
            _conv(c6, c(128)), _conv(c(128), c(160), (1, 7)), _conv(c(160), c(192), (7, 1)))],
            c(192) * 2, 0.10) for _ in range(repeats[1])]
        self.stage4 = nn.Sequential(mixed_6a, *block17)
        mixed_7a = _Concat(nn.Sequential(_conv(c6, c(256)), _conv(c(256), c(384), 3, 2)),
                           nn.Sequential(_conv(c6, c(256)), _conv(c(256), c(288), 3, 2)),
                           nn.Sequential(_conv(c6, c(256)), _conv(c(256), c(288), 3), _conv(c(288), c(320), 3, 2)),
                           nn.MaxPool2d(3, 2, 1))
        c7 = c(384) + c(288) + c(320) + c6
        block8 = [_Residual(c7, [_conv(c7, c(192)), nn.Sequential(
            _conv(c7, c(192)), _conv(c(192), c(224), (1, 3)), _conv(c(224), c(256), (3, 1)))],
            c(192) + c(256), 0.20, relu=i < repeats[2]) for i in range(repeats[2] + 1)]
        self.stage5 = nn.Sequential(mixed_7a, *block8, _conv(c7, c(1536)))
        self.out_channels = [in_channels, c(64), c(192), c5, c6, c(1536)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [x]
        for stage in (self.stage1, self.stage2, self.stage3, self.stage4, self.stage5):
            feats.append(stage(feats[-1]))
        return feats


class LinkNetSCSE(nn.Module):
    """LinkNet with scSE after every decoder block; returns ``{"logits", "attention"}``.

    ``attention`` is the spatial (sSE) map of the last decoder block, (B, 1, H, W) in (0, 1).
    Input sides must be multiples of 32.
    """

    def __init__(self, encoder: nn.Module, classes: int = 1, reduction: int = 16) -> None:
        super().__init__()
        from segmentation_models_pytorch.base import SegmentationHead
        from segmentation_models_pytorch.base.modules import SCSEModule
        from segmentation_models_pytorch.decoders.linknet.decoder import LinknetDecoder

        self.encoder = encoder
        self.decoder = LinknetDecoder(list(encoder.out_channels), prefinal_channels=32, n_blocks=5)
        outs = [blk.block[-1][0].out_channels for blk in self.decoder.blocks]
        self.scse = nn.ModuleList(SCSEModule(c, reduction=min(reduction, c)) for c in outs)
        self.head = SegmentationHead(32, classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"LinkNet needs sides divisible by 32, got {tuple(x.shape[-2:])}")
        feats = self.encoder(x)[1:][::-1]
        y, skips, spatial = feats[0], feats[1:], None
        for i, (block, att) in enumerate(zip(self.decoder.blocks, self.scse)):
            y = block(y, skips[i] if i < len(skips) else None)
            spatial = att.sSE(y)
            y = y * att.cSE(y) + y * spatial  # = SCSEModule.forward, keeping the spatial map
        return {"logits": self.head(y), "attention": spatial}


class MultiscaleAttention(nn.Module):
    """Fuse pooled features of several scales with learned, input-dependent scale weights."""

    def __init__(self, channels: Sequence[int], dim: int) -> None:
        super().__init__()
        self.project = nn.ModuleList(nn.Linear(c, dim) for c in channels)
        self.score = nn.Sequential(nn.Linear(dim, max(4, dim // 4)), nn.ReLU(inplace=True),
                                   nn.Linear(max(4, dim // 4), 1))

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.stack([p(f.mean((2, 3))) for p, f in zip(self.project, feats)], 1)  # B,S,D
        w = torch.softmax(self.score(torch.tanh(z)).squeeze(-1), dim=1)             # B,S
        return (w.unsqueeze(-1) * z).sum(1), w


class DCNNIMAF(nn.Module):
    """CNN with integrated channel, spatial (CBAM) and multiscale attention; ``{"logits",
    "scale_weights"}`` for ``len(classes)`` classes."""

    def __init__(self, in_channels: int = 3, classes: int = 3, widths: Sequence[int] = (32, 64, 128, 256),
                 dim: int = 128, dropout: float = 0.3, reduction: int = 8) -> None:
        super().__init__()
        stages, cin = [], in_channels
        for w in widths:
            stages.append(nn.Sequential(_conv(cin, w, 3), _conv(w, w, 3), CBAM(w, reduction), nn.MaxPool2d(2)))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.fuse = MultiscaleAttention(widths[-3:], dim)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, classes))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        fused, weights = self.fuse(feats[-3:])
        return {"logits": self.head(fused), "scale_weights": weights}


# --------------------------------------------------------------------------- config + builders
@dataclass(frozen=True)
class ModelInit:
    """How a network was initialised, for the manifest."""

    pretrained: bool
    source: str
    note: str


PANDIYARAJU2024_CONFIG: dict[str, Any] = {
    "paper": "Pandiyaraju et al. 2024, arXiv 2407.02844",
    "classes": BUSI_CLASSES,
    "segmentation": "LinkNet + Inception-ResNet-v2 encoder + scSE after each decoder block",
    "classification": "DCNNIMAF: 4 conv stages with CBAM, multiscale attention over the last 3",
    "encoders": ("inceptionresnetv2", "inceptionresnetv2_lite"),
    "lite": {"width": 0.25, "repeats": (1, 2, 1)},
}


def build_encoder(encoder: str = "inceptionresnetv2", in_channels: int = 3, width: float | None = None,
                  repeats: tuple[int, int, int] | None = None) -> nn.Module:
    """smp's full Inception-ResNet-v2, or the scaled topology (``..._lite``)."""
    if encoder == "inceptionresnetv2":
        from segmentation_models_pytorch.encoders import get_encoder

        return get_encoder("inceptionresnetv2", in_channels=in_channels, depth=5, weights=None)
    if encoder == "inceptionresnetv2_lite":
        lite = PANDIYARAJU2024_CONFIG["lite"]
        return InceptionResNetV2Lite(width or lite["width"], tuple(repeats or lite["repeats"]), in_channels)
    raise ValueError(f"encoder must be one of {PANDIYARAJU2024_CONFIG['encoders']}, got {encoder!r}")


def load_weights(model: nn.Module, weights: str | os.PathLike | None, part: str) -> ModelInit:
    """Load a local state-dict file into ``model`` (strict); say how it was initialised."""
    if not weights:
        return ModelInit(False, "random initialisation",
                         f"{part}: random initialisation (no local weights file given; nothing is downloaded)")
    # weights_only read, names and shapes checked (WeightsMismatchError), sha256 recorded
    loaded = load_checked_weights(model, weights, part)
    return ModelInit(True, os.fspath(weights), f"{part}: weights from the local file {weights} "
                                               f"(sha256 {loaded.sha256[:16]})")


@register_model("pandiyaraju2024_linknet_scse", paper="pandiyaraju2024")
def pandiyaraju2024_linknet_scse(encoder: str = "inceptionresnetv2", in_channels: int = 3,
                                 width: float | None = None, repeats: tuple[int, int, int] | None = None,
                                 encoder_weights: str | None = None) -> LinkNetSCSE:
    """LinkNet-InceptionResNet with scSE decoder attention (1 output: lesion logit)."""
    enc = build_encoder(encoder, in_channels, width, repeats)
    model = LinkNetSCSE(enc, classes=1)
    model.init = load_weights(enc, encoder_weights, f"{encoder} encoder")
    return model


@register_model("pandiyaraju2024_dcnnimaf", paper="pandiyaraju2024")
def pandiyaraju2024_dcnnimaf(in_channels: int = 3, widths: Sequence[int] = (32, 64, 128, 256),
                             dim: int = 128, dropout: float = 0.3, weights: str | None = None) -> DCNNIMAF:
    """DCNNIMAF classifier over BUSI's three classes."""
    model = DCNNIMAF(in_channels, len(BUSI_CLASSES), tuple(widths), dim, dropout)
    model.init = load_weights(model, weights, "DCNNIMAF")
    model.classes = BUSI_CLASSES
    return model
