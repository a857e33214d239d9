"""Inception-v4 at a channel width < 1, for the CPU profiles of Lin et al. 2021 (Med Phys 48,
doi:10.1002/mp.15196), whose comparison includes Inception-v4.

timm's `InceptionV4` hard-codes its channel counts and has no width multiplier, while the other
classical networks of the comparison (AlexNet, ResNet-18, VGG-16, DenseNet-121) are slimmed by a
width factor to fit the quick profile's CPU budget. `scaled_inception_v4` builds the same network
from timm's own blocks (stem, Mixed-3a/4a/5a, 4 x Inception-A, Reduction-A, 7 x Inception-B,
Reduction-B, 3 x Inception-C; `timm.models.inception_v4`) with every convolution's channel count
multiplied by `width`: the depth, kernels, strides, branches and concatenations are timm's. At
width 1 its tensors have the names and shapes of `timm.create_model("inception_v4")` (tested).
Every channel count of Inception-v4 is a multiple of 32, so widths k/32 scale it exactly; other
widths are refused (a rounded count would break the branch concatenations).
"""
from __future__ import annotations

from functools import partial
from typing import Any

import torch.nn as nn
from timm.layers import ConvNormAct, create_classifier
from timm.models.inception_v4 import (InceptionA, InceptionB, InceptionC, InceptionV4, Mixed3a, Mixed4a,
                                      Mixed5a, ReductionA, ReductionB)

__all__ = ["scaled_inception_v4", "scaled_channels"]

#: Every channel count that occurs in timm's Inception-v4 (convolution outputs and block inputs).
CHANNELS: tuple[int, ...] = (32, 64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512, 1024, 1536)


def scaled_channels(c: int, width: float) -> int:
    """`c` x `width`, which must be a whole number (ValueError otherwise)."""
    v = c * width
    if v < 1 or abs(v - round(v)) > 1e-9:
        raise ValueError(f"Inception-v4 width {width:g} does not scale {c} channels to a whole "
                         f"number; use a multiple of 1/32 in (0, 1]")
    return int(round(v))


class ScaledInceptionV4(InceptionV4):
    """timm's `InceptionV4` (its blocks, forward, tensor names) with channels x `width`."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, width: float = 1.0,
                 drop_rate: float = 0.0) -> None:
        nn.Module.__init__(self)
        for c in CHANNELS:
            scaled_channels(c, width)  # refuse a width that does not scale exactly
        base = partial(ConvNormAct, padding=0, norm_layer="batchnorm2d", act_layer="relu",
                       norm_kwargs=dict(eps=1e-3), act_kwargs=dict(inplace=True))

        def block(in_c: int, out_c: int, **kw: Any) -> nn.Module:
            return base(scaled_channels(in_c, width), scaled_channels(out_c, width), **kw)

        w = partial(scaled_channels, width=width)
        self.width, self.num_classes, self.in_chans = width, num_classes, in_chans
        self.num_features = w(1536)
        features = [base(in_chans, w(32), kernel_size=3, stride=2),
                    block(32, 32, kernel_size=3, stride=1),
                    block(32, 64, kernel_size=3, stride=1, padding=1),
                    Mixed3a(block), Mixed4a(block), Mixed5a(block)]
        features += [InceptionA(block) for _ in range(4)] + [ReductionA(block)]
        features += [InceptionB(block) for _ in range(7)] + [ReductionB(block)]
        features += [InceptionC(block) for _ in range(3)]
        self.features = nn.Sequential(*features)
        self.feature_info = [dict(num_chs=w(c), reduction=r, module=f"features.{i}")
                             for c, r, i in ((64, 2, 2), (160, 4, 3), (384, 8, 9), (1024, 16, 17),
                                             (1536, 32, 21))]
        self.stage_ends = [2, 3, 9, 17, 21]
        self.global_pool, self.head_drop, self.last_linear = create_classifier(
            self.num_features, num_classes, pool_type="avg", drop_rate=drop_rate)
        self.head_hidden_size = self.num_features * self.global_pool.feat_mult()


def scaled_inception_v4(num_classes: int, in_chans: int, width: float) -> nn.Module:
    """Inception-v4 with every channel count x `width` (a multiple of 1/32), random weights."""
    return ScaledInceptionV4(num_classes, in_chans, width)
