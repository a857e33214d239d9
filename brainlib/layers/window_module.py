"""Window-setting optimisation module (He et al. 2024, Heliyon e30270, section 2.1.1, Fig. 2).

A 1x1 convolution maps the HU image to ``k`` channels and a scaled sigmoid
``F(x) = U / (1 + exp(-(W x + b)))`` (eq. 3.1) turns each channel into a soft CT window.
Initialised from a (level, width) preset with `brainlib.io.sigmoid_window_params`, the
module reproduces that window (the value is ``eps`` at the window's lower edge and
``U - eps`` at its upper edge); trained with the network it learns a task-specific window,
which `learned_windows` reads back with `brainlib.io.window_from_sigmoid_params` (Fig. 7).
Frozen, it is the paper's "fixed window" input of Table 4.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from brainlib.io import Window, sigmoid_window_params, window_from_sigmoid_params

__all__ = ["WindowModule"]


class WindowModule(nn.Module):
    """HU (B, 1, H, W) -> k soft windows (B, k, H, W) in (0, U).

    Args:
        windows: (level, width) per output channel used for the initialisation (eq. 3.1).
            ``None`` means PyTorch's default initialisation of the 1x1 convolution
            (Table 4, "learnable from random init"); then ``channels`` gives k.
        channels: number of output channels when ``windows`` is None.
        upper: U, the upper grey level of the mapping (paper: 255).
        eps: the margin epsilon of eq. 3.1 (paper: 1).
        trainable: False freezes W and b (Table 4's fixed-window rows).
    """

    def __init__(
        self,
        windows: Sequence[tuple[float, float]] | None = None,
        channels: int | None = None,
        *,
        upper: float = 255.0,
        eps: float = 1.0,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        if windows is not None and len(windows) == 0:
            raise ValueError("windows must name at least one (level, width) preset")
        if windows is None and (channels is None or channels < 1):
            raise ValueError("give either windows or a positive number of channels")
        k = len(windows) if windows is not None else int(channels)  # type: ignore[arg-type]
        if windows is not None and channels is not None and channels != k:
            raise ValueError(f"channels={channels} disagrees with {k} windows")
        self.upper = float(upper)
        self.eps = float(eps)
        self.conv = nn.Conv2d(1, k, kernel_size=1, bias=True)
        self.initial_windows: tuple[Window, ...] | None = None
        if windows is not None:
            self.initial_windows = tuple(Window(float(lv), float(wd)) for lv, wd in windows)
            params = [sigmoid_window_params(w.level, w.width, upper=upper, eps=eps)
                      for w in self.initial_windows]
            with torch.no_grad():
                self.conv.weight.copy_(
                    torch.tensor([float(p[0]) for p in params], dtype=torch.float32).view(k, 1, 1, 1)
                )
                self.conv.bias.copy_(torch.tensor([float(p[1]) for p in params],
                                                  dtype=torch.float32))
        self.set_trainable(trainable)

    @property
    def channels(self) -> int:
        return self.conv.out_channels

    @property
    def trainable(self) -> bool:
        return bool(self.conv.weight.requires_grad)

    def set_trainable(self, trainable: bool) -> None:
        """Freeze or unfreeze W and b."""
        for p in self.conv.parameters():
            p.requires_grad_(trainable)

    def params(self) -> tuple[list[float], list[float]]:
        """Current (W, b) per channel as Python floats."""
        w = self.conv.weight.detach().flatten().double().tolist()
        b = self.conv.bias.detach().double().tolist()
        return w, b

    def learned_windows(self) -> list[Window]:
        """Current (level, width) per channel, recovered by inverting eq. 3.1."""
        out = []
        for w, b in zip(*self.params()):
            level, width = window_from_sigmoid_params(w, b, upper=self.upper, eps=self.eps)
            out.append(Window(float(level), float(width)))
        return out

    def forward(self, hu: torch.Tensor) -> torch.Tensor:
        if hu.dim() != 4 or hu.shape[1] != 1:
            raise ValueError(f"WindowModule expects HU of shape (B, 1, H, W), got {tuple(hu.shape)}")
        return self.upper * torch.sigmoid(self.conv(hu))
