"""Channel and spatial attention blocks (SE / CBAM family).

He et al. 2024 (Heliyon, e30270), section 2.1.2: fused multiscale features are recalibrated by
a channel attention whose squeeze uses *both* global average and global max pooling (eq. 3.2),
fed through one shared two-layer bottleneck with reduction ``r`` (eq. 3.3) and applied per
channel (eq. 3.4); then a spatial attention built from the channel-wise average and maximum,
a 7x7 convolution and a sigmoid (eq. 3.5). This is the CBAM arrangement (Woo et al. 2018)
with the SE bottleneck of Hu et al. 2018, so the blocks are written once here for every paper.
"""
from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["ChannelAttention", "SpatialAttention", "CBAM"]


class ChannelAttention(nn.Module):
    """Channel attention: sigmoid(MLP(avgpool(x)) + MLP(maxpool(x))) * x.

    Args:
        channels: number of input channels C.
        reduction: bottleneck ratio r; the hidden layer has max(1, C // r) units.
        use_max: add the global-max branch (He et al. and CBAM); False gives plain SE.
    """

    def __init__(self, channels: int, reduction: int = 16, use_max: bool = True) -> None:
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(f"channels and reduction must be >= 1, got {channels}, {reduction}")
        hidden = max(1, channels // reduction)
        self.use_max = use_max
        # One bottleneck shared by both pooled descriptors (W1: C -> C/r, W2: C/r -> C).
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=1, bias=True),
        )

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel importance s in (0, 1), shape (B, C, 1, 1)."""
        logits = self.mlp(torch.mean(x, dim=(2, 3), keepdim=True))
        if self.use_max:
            logits = logits + self.mlp(torch.amax(x, dim=(2, 3), keepdim=True))
        return torch.sigmoid(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class SpatialAttention(nn.Module):
    """Spatial attention: sigmoid(conv_kxk([mean_c(x), max_c(x)])) * x (eq. 3.5)."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial map in (0, 1), shape (B, 1, H, W)."""
        desc = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(desc))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class CBAM(nn.Module):
    """Channel attention followed by spatial attention ("what", then "where")."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
