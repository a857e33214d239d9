"""The frozen VGG-16 slice encoder of Wang et al. (DrCT1/DrCT2, section V.A), a leaf module.

`SliceEncoder`: VGG-16 convolutional layers, frozen, adaptive max-pool -> one D-vector per
slice (D = 512 at width 1). Because it is frozen, features are computed once per slice and
resolution (`brainlib.papers.wang_drct2` caches them) and the DrCT networks
(`brainlib.models.drct`) read features. Phantom pretraining of these weights (the substitute
for ImageNet) lives with the paper (`brainlib.papers.wang_drct2.encoder`); this module imports
neither, so there is no import cycle.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.vgg import make_layers

from brainlib.models._weights import load_weights
from brainlib.models.backbones import BackboneInit, _scaled_cfg, vgg16_features

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: encoder architectures: the paper's VGG-16 conv layers, or a shallow conv + batch-norm
#: encoder (4 blocks of 3x3 conv-BN-ReLU, 16/32/64/64 channels x width/0.125, max-pool between)
#: that trains from scratch on the small phantom pretraining set (VGG-16 without BN did not).
ARCHS: tuple[str, ...] = ("vgg16", "small_bn")


def small_bn_features(width: float = 0.125) -> nn.Sequential:
    """The shallow encoder: conv-BN-ReLU blocks of 16, 32, 64, 64 channels (at width 0.125;
    scaled linearly), 2x2 max-pool between blocks: 64 px slices -> 8 x 8 maps."""
    chans = [max(4, int(round(c * width / 0.125))) for c in (16, 32, 64, 64)]
    layers: list[nn.Module] = []
    prev = 3
    for i, c in enumerate(chans):
        if i:
            layers.append(nn.MaxPool2d(2))
        layers += [nn.Conv2d(prev, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                   nn.ReLU(inplace=True)]
        prev = c
    return nn.Sequential(*layers)


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers (identity of the encoder weights)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


class SliceEncoder(nn.Module):
    """Frozen VGG-16 conv layers + adaptive max-pool (section V.A): (N, 3, H, W) -> (N, D).

    Without a local ImageNet weights file the conv layers get a seeded Kaiming (fan-in)
    random initialisation — a stated substitute (`init.note`), never presented as ImageNet;
    ``weights=False`` forces it even when ``$BRAINLIB_VGG16_WEIGHTS`` is set.
    `from_pretrained` loads weights trained on phantoms
    (`brainlib.papers.wang_drct2.encoder`).
    Inputs are windowed slices in [0, 1], normalised with the ImageNet mean/std VGG expects.
    """

    def __init__(self, width: float = 1.0, weights: str | bool | None = None,
                 seed: int = 0, arch: str = "vgg16") -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
        self.arch = arch
        self.frozen = True
        if arch == "small_bn":
            if weights not in (False, None):
                raise ValueError("the small_bn encoder has no ImageNet weights")
            self.features = small_bn_features(width)
            init = BackboneInit(False, "random initialisation",
                                f"shallow conv+BN encoder (width {width}) from random "
                                "initialisation")
        elif weights is False:  # random initialisation even when $BRAINLIB_VGG16_WEIGHTS is set
            self.features = make_layers(_scaled_cfg(width, 3), batch_norm=False)
            init = BackboneInit(False, "random initialisation",
                                "VGG-16 from random initialisation (asked for)")
        else:
            self.features, init = vgg16_features(width, weights or None)
        if not init.pretrained:
            gen = torch.Generator().manual_seed(int(seed))
            for module in self.features.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_in",
                                            nonlinearity="relu", generator=gen)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
            init = BackboneInit(False, init.source,
                                f"{init.note}; seeded Kaiming-normal (fan-in) conv weights, "
                                f"seed {seed}, frozen")
        self.init = init
        self.out_dim = [m for m in self.features.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    @classmethod
    def from_pretrained(cls, path: str | Path, width: float, note: str,
                        arch: str = "vgg16") -> "SliceEncoder":
        """A frozen encoder with conv weights from `path` (a `features` state dict written by
        `brainlib.papers.wang_drct2.encoder`); `note` says how they were trained."""
        enc = cls(width, weights=False, seed=0, arch=arch)
        load_weights(enc.features, path, f"{arch} slice-encoder (width {width}) features")
        enc.init = BackboneInit(True, str(path), note)
        for p in enc.parameters():
            p.requires_grad_(False)
        return enc.eval()

    def weights_digest(self) -> str:
        """Identity of the conv weights (SHA-256 prefix), for feature-cache keys."""
        return weights_digest(self.features)

    def train(self, mode: bool = True) -> "SliceEncoder":
        # Frozen: stays in eval mode whatever the parent does (batch norm included), except
        # while it is being pretrained (`frozen = False`).
        return super().train(mode and not self.frozen)

    def feature_maps(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> last conv block maps (N, D, h, w)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"encoder expects (N, 3, H, W) images, got {tuple(images.shape)}")
        # channels-last is markedly faster for the narrow CPU profiles; same maths.
        x = ((images - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        return self.features(x).contiguous()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.adaptive_max_pool2d(self.feature_maps(images), 1).flatten(1)
