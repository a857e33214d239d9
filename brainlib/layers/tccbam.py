"""Two-channel convolutional block attention module (TCCBAM) of Yin et al. (2024, Sci Rep,
"Brain CT image classification based on mask RCNN and attention mechanism"), eqs. 4-6.

Unlike CBAM (channel, then spatial: ``brainlib.layers.attention.CBAM``), the two branches run
in parallel on the same input ``f`` and their outputs are summed element-wise (eq. 4)::

    f_out = f * M_c(f) + f * M_s(f)                                           (4)
    M_c(f) = sigmoid(F_c(maxpool(f)) + F_c(avgpool(f)) + F_c(deform_c(f)))   (5)
    M_s(f) = sigmoid(conv7x7([max_c(f); mean_c(f); deform_s(f)]))            (6)

Shape contract: ``(B, C, H, W) -> (B, C, H, W)``; ``M_c`` is (B, C, 1, 1), ``M_s`` (B, 1, H, W).

Readings (the paper does not say): ``F_c`` is CBAM's shared bottleneck MLP (reduction 16,
:class:`brainlib.layers.attention.ChannelAttention`'s ``mlp``); the channel branch's deformable
convolution is a 3x3 :class:`~brainlib.layers.deformable.DeformConv2d` C -> C followed by global
average pooling (to reach the stated C x 1 x 1); the spatial branch's is a 3x3 deformable
convolution C -> 1 (the stated 1 x H x W). The "residual skip connection" the paper mentions
is read as the residual block's own identity path (TCCBAM sits before the addition);
``residual=True`` adds ``f`` to eq. 4 instead.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from brainlib.layers.attention import ChannelAttention
from brainlib.layers.deformable import DeformConv2d, MaskInit

__all__ = ["TCCBAM"]


class TCCBAM(nn.Module):
    """Parallel channel and spatial attention, each with a deformable-convolution branch.

    Args:
        channels: C.
        reduction: bottleneck ratio of the shared channel MLP ``F_c``.
        kernel_size: side of the spatial convolution ``F_s`` (7 in the paper).
        deform_kernel: side of the two deformable convolutions (3, ours).
        residual: add the input to eq. 4's output (False: eq. 4 as printed).
        mask_init: modulation initialisation of the deformable convolutions.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7,
                 deform_kernel: int = 3, residual: bool = False, mask_init: MaskInit = "one") -> None:
        super().__init__()
        if kernel_size % 2 != 1 or deform_kernel % 2 != 1:
            raise ValueError("kernel sizes must be odd")
        self.residual = residual
        self.mlp = ChannelAttention(channels, reduction).mlp  # F_c, shared by the three inputs
        pad = deform_kernel // 2
        self.channel_deform = DeformConv2d(channels, channels, deform_kernel, padding=pad, mask_init=mask_init)
        self.spatial_deform = DeformConv2d(channels, 1, deform_kernel, padding=pad, mask_init=mask_init)
        self.spatial = nn.Conv2d(3, 1, kernel_size, padding=kernel_size // 2, bias=False)  # F_s

    def channel_weights(self, f: torch.Tensor) -> torch.Tensor:
        """M_c(f), eq. 5: (B, C, 1, 1) in (0, 1)."""
        pooled = (torch.amax(f, dim=(2, 3), keepdim=True), torch.mean(f, dim=(2, 3), keepdim=True),
                  torch.mean(self.channel_deform(f), dim=(2, 3), keepdim=True))
        return torch.sigmoid(sum(self.mlp(p) for p in pooled))

    def spatial_weights(self, f: torch.Tensor) -> torch.Tensor:
        """M_s(f), eq. 6: (B, 1, H, W) in (0, 1)."""
        maps = torch.cat([f.amax(dim=1, keepdim=True), f.mean(dim=1, keepdim=True),
                          self.spatial_deform(f)], dim=1)
        return torch.sigmoid(self.spatial(maps))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        out = f * self.channel_weights(f) + f * self.spatial_weights(f)
        return out + f if self.residual else out
