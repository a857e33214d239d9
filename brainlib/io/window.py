"""CT display windows and the sigmoid window of He et al. (2024).

A window maps Hounsfield units linearly onto [0, 1] over [level - width/2, level + width/2]
and clips outside it. Presets are always written (level, width), in that order.

He, Zhang, Li et al. 2024, "Multiscale window-setting optimisation ... CAM", Heliyon,
eq. 3.1: F(x) = U / (1 + exp(-(W x + b))) with W = 2/WW ln(U/eps - 1) and
b = -2 WL/WW ln(U/eps - 1). With U = 255 and eps = 1 the brain, subdural and soft-tissue
presets give the paper's Table 2 (which prints the brain b without its minus sign).
Inverting trained (W, b) gives the learned window (their Fig. 7).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, TypeVar, Union

import numpy as np
import torch


class Window(NamedTuple):
    """A CT display window in HU: centre `level`, full `width`."""

    level: float
    width: float

    @property
    def low(self) -> float:
        """HU mapped to 0 (level - width / 2)."""
        return self.level - self.width / 2.0

    @property
    def high(self) -> float:
        """HU mapped to 1 (level + width / 2)."""
        return self.level + self.width / 2.0


BRAIN = Window(level=40.0, width=80.0)
SUBDURAL = Window(level=80.0, width=200.0)
SOFT_TISSUE = Window(level=40.0, width=380.0)
BONE = Window(level=600.0, width=2800.0)

WINDOWS: dict[str, Window] = {
    "brain": BRAIN,
    "subdural": SUBDURAL,
    "soft_tissue": SOFT_TISSUE,
    "bone": BONE,
}

WindowLike = Union[Window, tuple[float, float], str]
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def as_window(spec: WindowLike) -> Window:
    """Accept a `Window`, a `(level, width)` pair or a preset name from `WINDOWS`."""
    if isinstance(spec, str):
        try:
            return WINDOWS[spec.lower()]
        except KeyError:
            raise KeyError(f"unknown window {spec!r}; presets are {sorted(WINDOWS)}") from None
    level, width = spec
    if not width > 0:
        raise ValueError(f"window width must be positive, got {width!r}")
    return Window(float(level), float(width))


def window(hu: ArrayT, level: float, width: float) -> ArrayT:
    """Map HU onto [0, 1] through the window (level, width); numpy in, numpy out (float32
    unless the input is float64), torch in, torch out (differentiable, same device)."""
    if not width > 0:
        raise ValueError(f"window width must be positive, got {width!r}")
    low = level - width / 2.0
    if isinstance(hu, torch.Tensor):
        x = hu if hu.is_floating_point() else hu.float()
        return ((x - low) / width).clamp(0.0, 1.0)
    x = np.asarray(hu)
    if x.dtype != np.float64:
        x = x.astype(np.float32, copy=False)
    out = (x - x.dtype.type(low)) / x.dtype.type(width)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def stack_windows(hu: ArrayT, windows: Sequence[WindowLike]) -> ArrayT:
    """Window `hu[..., H, W]` with each window and stack channels first: `[..., C, H, W]`."""
    if len(windows) == 0:
        raise ValueError("stack_windows needs at least one window")
    chans = [window(hu, *as_window(w)) for w in windows]
    if isinstance(hu, torch.Tensor):
        return torch.stack(chans, dim=-3)
    return np.stack(chans, axis=-3)


def _log_ratio(upper: float, eps: float) -> float:
    if not (0 < eps < upper / 2):
        raise ValueError(f"need 0 < eps < upper/2, got upper={upper}, eps={eps}")
    return math.log(upper / eps - 1.0)


def sigmoid_window_params(
    level: float, width: float, upper: float = 255.0, eps: float = 1.0
) -> tuple[float, float]:
    """He et al. eq. 3.1: the (W, b) making U/(1+exp(-(W x + b))) equal eps at the window's
    low edge and U - eps at its high edge."""
    if not width > 0:
        raise ValueError(f"window width must be positive, got {width!r}")
    k = _log_ratio(upper, eps)
    return 2.0 / width * k, -2.0 * level / width * k


def window_from_sigmoid_params(
    W: float, b: float, upper: float = 255.0, eps: float = 1.0
) -> tuple[float, float]:
    """Invert eq. 3.1: (W, b) -> (level, width). Used to read the learned window (Fig. 7)."""
    if W == 0:
        raise ValueError("W = 0 has no window (the sigmoid is flat)")
    k = _log_ratio(upper, eps)
    return -b / W, 2.0 * k / W


def sigmoid_window(
    hu: ArrayT, level: float, width: float, upper: float = 255.0, eps: float = 1.0
) -> ArrayT:
    """Eq. 3.1 evaluated at the preset's (W, b): a smooth window with values in (0, upper)."""
    W, b = sigmoid_window_params(level, width, upper, eps)
    if isinstance(hu, torch.Tensor):
        x = hu if hu.is_floating_point() else hu.float()
        return upper * torch.sigmoid(W * x + b)
    x = np.asarray(hu, dtype=np.float64)
    return (upper / (1.0 + np.exp(-(W * x + b)))).astype(np.float32)
