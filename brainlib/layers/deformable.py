"""Modulated deformable convolution (DCNv2, Zhu et al. 2019), as used by Yin et al. (2024, Sci Rep,
"Brain CT image classification based on mask RCNN and attention mechanism"), eq. 3:

    y(O_0) = sum_{O_n in R} w(O_n) * x(O_0 + O_n + dO_n) * dm_n

The offsets ``dO_n`` (2 per kernel tap) and the modulation ``dm_n`` (1 per tap) are predicted
from the input by two ordinary convolutions with the same kernel, stride and padding as the
main one. On CUDA the sampling runs in :func:`torchvision.ops.deform_conv2d`; on CPU in
:func:`sampled_deform_conv2d`, the same function written with ``grid_sample`` (bilinear, zero
outside the image) and one contraction: equal to torchvision's to float rounding (about 1e-6
relative, values and gradients; tested) and 5-7x faster forward + backward at the yin2024 quick
sizes on this CPU (torchvision's CPU backward took 40 % of the quick notebook's time).

Shape contract: ``(B, C_in, H, W) -> (B, C_out, H', W')`` with ``H'``, ``W'`` those of
``nn.Conv2d(C_in, C_out, kernel_size, stride, padding, dilation)``.

Initialisation (stated, our reading; the paper gives none): both predictor convolutions start
at zero weight and zero bias, so the offsets start at 0; the modulation is
``2 * sigmoid(m)`` (``mask_init="one"``, default), which starts at exactly 1, so a freshly built
:class:`DeformConv2d` computes the same function as the plain convolution it replaces (a
deformable ResNet starts as its ResNet). ``mask_init="half"`` uses DCNv2's own ``sigmoid(m)``,
which starts at 0.5.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

__all__ = ["DeformConv2d", "MaskInit", "sampled_deform_conv2d"]

MaskInit = Literal["one", "half"]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def sampled_deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor,
                          bias: torch.Tensor | None, stride: tuple[int, int], padding: tuple[int, int],
                          dilation: tuple[int, int], mask: torch.Tensor) -> torch.Tensor:
    """:func:`torchvision.ops.deform_conv2d` (one weight group, one offset group, with ``mask``)
    through ``grid_sample``: every kernel tap samples ``x`` bilinearly at its shifted position
    (zero outside the image), is scaled by its modulation, and a contraction with ``weight``
    sums taps and channels. Offsets are (B, 2 kh kw, H', W') as (dy, dx) per tap, torchvision's
    layout."""
    b, c, h, w = x.shape
    c_out, c_in, kh, kw = weight.shape
    if c_in != c or offset.shape[1] != 2 * kh * kw or mask.shape[1] != kh * kw:
        raise ValueError(f"sampled_deform_conv2d supports one group only: x {tuple(x.shape)}, weight "
                         f"{tuple(weight.shape)}, offset {tuple(offset.shape)}, mask {tuple(mask.shape)}")
    ho, wo = offset.shape[-2:]
    taps = kh * kw
    xp = F.pad(x, (1, 1, 1, 1))  # a zero border: bilinear weights toward outside pixels count 0
    like, shift = dict(device=x.device, dtype=x.dtype), offset.view(b, taps, 2, ho, wo)
    rows = torch.arange(ho, **like) * stride[0] - padding[0] + 1  # +1: the zero border
    cols = torch.arange(wo, **like) * stride[1] - padding[1] + 1
    ky = torch.arange(kh, **like).repeat_interleave(kw) * dilation[0]
    kx = torch.arange(kw, **like).repeat(kh) * dilation[1]
    py = rows.view(1, 1, ho, 1) + ky.view(1, taps, 1, 1) + shift[:, :, 0]
    px = cols.view(1, 1, 1, wo) + kx.view(1, taps, 1, 1) + shift[:, :, 1]
    grid = torch.stack([2 * px / (w + 1) - 1, 2 * py / (h + 1) - 1], -1).view(b, taps * ho, wo, 2)
    sampled = F.grid_sample(xp, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    sampled = sampled.view(b, c, taps, ho, wo) * mask.view(b, 1, taps, ho, wo)
    out = torch.einsum("bckhw,ock->bohw", sampled, weight.reshape(c_out, c, taps))
    return out + bias.view(1, -1, 1, 1) if bias is not None else out


class DeformConv2d(nn.Module):
    """DCNv2 convolution with learned offsets and modulation mask (eq. 3).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, bias: as ``nn.Conv2d``.
        mask_init: ``"one"`` (modulation ``2 sigmoid(m)``, starts at 1: equals the plain conv)
            or ``"half"`` (DCNv2's ``sigmoid(m)``, starts at 0.5).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int] = 3,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 1,
                 dilation: int | tuple[int, int] = 1, bias: bool = True,
                 mask_init: MaskInit = "one") -> None:
        super().__init__()
        if mask_init not in ("one", "half"):
            raise ValueError(f"mask_init must be 'one' or 'half', got {mask_init!r}")
        kh, kw = _pair(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = (kh, kw), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.mask_init = mask_init
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        taps = kh * kw
        geom = dict(kernel_size=(kh, kw), stride=self.stride, padding=self.padding, dilation=self.dilation)
        self.offset = nn.Conv2d(in_channels, 2 * taps, bias=True, **geom)
        self.modulation = nn.Conv2d(in_channels, taps, bias=True, **geom)
        for conv in (self.offset, self.modulation):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, mask_init: MaskInit = "one") -> "DeformConv2d":
        """A deformable copy of ``conv`` (same geometry and weights; groups must be 1)."""
        if conv.groups != 1:
            raise ValueError("grouped convolutions are not supported")
        if isinstance(conv.padding, str):
            raise ValueError("string padding is not supported; give integers")
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                  conv.dilation, bias=conv.bias is not None, mask_init=mask_init)
        with torch.no_grad():
            new.weight.copy_(conv.weight)
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
        return new.to(conv.weight.device)

    def offsets_and_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Offsets (B, 2 kh kw, H', W') and modulation (B, kh kw, H', W') for ``x``."""
        m = torch.sigmoid(self.modulation(x))
        return self.offset(x), (2.0 * m if self.mask_init == "one" else m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset, mask = self.offsets_and_mask(x)
        if x.device.type == "cpu":
            return sampled_deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding,
                                         self.dilation, mask)
        return deform_conv2d(x, offset, self.weight, self.bias, stride=self.stride,
                             padding=self.padding, dilation=self.dilation, mask=mask)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, mask_init={self.mask_init!r}")
