"""Measurements through a window (what the student sees, in grey levels)."""
from __future__ import annotations

import numpy as np

from brainlib.io import Window, as_window
from brainlib.io import window as apply_window

__all__ = ["region_contrast"]


def region_contrast(hu: np.ndarray, region: np.ndarray, reference: np.ndarray,
                    win: Window | tuple[float, float]) -> float:
    """Mean displayed grey level (0 black .. 1 white) of `region` minus that of `reference`.

    Positive: the region looks brighter than its reference; near 0: the eye cannot tell them
    apart in that window. Teaching measure for "why subdural blood is easier to see in the
    subdural window" (blood against bone is white on white in the brain window).
    """
    level, width = as_window(win)
    if not region.any() or not reference.any():
        raise ValueError("both regions must contain at least one pixel")
    shown = apply_window(hu, level, width)
    return float(shown[region].mean() - shown[reference].mean())
