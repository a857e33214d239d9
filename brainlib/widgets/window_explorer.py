"""`WindowExplorer`: learn CT windowing by moving it.

A CT slice is shown through a window (level, width) in HU, with preset buttons labelled by
their numbers ("subdural 80/200"), learned windows (He et al. 2024's window module) offered
the same way, a slice slider, a ground-truth mask drawn as an outline or a translucent fill
that never hides the pixels below, a HU histogram with the window's edges labelled, and the
HU under a point the student clicks. The state (`level`, `width`, `slice_index`, `point`,
`image()`) is plain Python and is what the tests check; the controls live in
`brainlib.widgets.window_controls`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Mapping

import html as _html
import numpy as np

from brainlib.io import WINDOWS, Window, as_window
from brainlib.io import window as apply_window
from brainlib.widgets.base import Viewer
from brainlib.widgets.render import (HIST_RANGE, HIST_TICKS, draw_box, histogram_rgb, mark_mask, outline,
                                     to_uint8_gray, upscale, upscale_factor)
from brainlib.widgets.sources import describe_skipped, load_volume
from brainlib.widgets.window_controls import preset_label  # noqa: F401 (re-exported)

__all__ = ["WindowExplorer", "preset_label"]

OVERLAY_COLOUR = (0, 230, 255)  # cyan: far from every grey, so an outline is always seen
POINT_COLOUR = (255, 200, 0)


def _state_property(key: str, doc: str, check: Callable[[Any, Any], Any]) -> Any:
    """A property over ``self._state[key]``; setting it stores ``check(self, value)`` (which
    validates and converts, raising on a bad value) through ``_set`` (controls synced, redrawn)."""

    def get(self: Any) -> Any:
        return self._state[key]

    def set_(self: Any, value: Any) -> None:
        self._set(key, check(self, value))

    return property(get, set_, doc=doc)


class WindowExplorer(Viewer):
    """Window width/level explorer over a HU slice or volume.

    Args:
        source: HU array (2-D or 3-D), a DICOM file, or a DICOM series folder.
        level, width: initial window in HU (default: the brain window).
        learned: extra named windows offered as presets, e.g. ``{"learned 1": (52.0, 95.0)}``.
        overlay: optional mask (or map thresholded at 0.5), same shape as the volume or one slice.
        overlay_mode: "outline" (a ring just outside the mask), "fill" (translucent) or "off".
        roi: half-size in pixels of the square ROI whose mean HU is read out.
        slice_index: first slice shown (0-based; the widget counts slices from 1).
    """

    def __init__(self, source: Any, *, level: float = WINDOWS["brain"].level,
                 width: float = WINDOWS["brain"].width,
                 learned: Mapping[str, Window | tuple[float, float]] | None = None,
                 overlay: np.ndarray | None = None, overlay_mode: str = "outline",
                 overlay_alpha: float = 0.3, roi: int = 5, slice_index: int | None = None) -> None:
        super().__init__()
        loaded = load_volume(source)
        self.volume, self.description, self.skipped = loaded.volume, loaded.description, loaded.skipped
        as_window((level, width))  # validates width > 0
        self.presets: dict[str, Window] = dict(WINDOWS)
        for name, spec in (learned or {}).items():
            self.presets[name] = as_window(spec)
        self.overlay = self._check_overlay(overlay)
        mark_mask(np.zeros((1, 1, 3)), np.zeros((1, 1), bool), overlay_mode, (0, 0, 0))  # validates
        self.overlay_mode = overlay_mode
        self.overlay_alpha = float(overlay_alpha)
        self.roi = int(roi)
        z, h, w = self.volume.shape
        self.scale = upscale_factor((h, w))
        self._state = {"level": float(level), "width": float(width),
                       "slice_index": z // 2 if slice_index is None else int(slice_index),
                       "point": (h // 2, w // 2)}
        self._check_slice(self._state["slice_index"])
        self._hist_counts = np.histogram(self.volume, bins=320, range=HIST_RANGE)[0]
        self._mask_cache: dict[int, np.ndarray] = {}

    # -- state ------------------------------------------------------------------------
    def _check_overlay(self, overlay: np.ndarray | None) -> np.ndarray | None:
        if overlay is None:
            return None
        ov = np.asarray(overlay, dtype=np.float32)
        if ov.ndim == 2:
            ov = ov[None]
        if ov.shape[1:] != self.volume.shape[1:] or ov.shape[0] not in (1, self.volume.shape[0]):
            raise ValueError(f"overlay shape {ov.shape} does not match the volume {self.volume.shape}")
        return ov

    def _check_slice(self, i: int) -> None:
        if not 0 <= i < self.volume.shape[0]:
            raise IndexError(f"slice_index {i} outside 0..{self.volume.shape[0] - 1}")

    def _set(self, key: str, value: Any) -> None:
        self._state[key] = value
        if self._widget is not None:
            from brainlib.widgets.window_controls import sync_controls

            sync_controls(self)
            self.redraw()

    def _checked_width(self, value: float) -> float:
        as_window((self.level, value))  # width > 0
        return float(value)

    def _checked_slice(self, value: int) -> int:
        self._check_slice(int(value))
        return int(value)

    def _checked_point(self, value: tuple[int, int]) -> tuple[int, int]:
        y, x = (int(v) for v in value)
        h, w = self.volume.shape[1:]
        if not (0 <= y < h and 0 <= x < w):
            raise IndexError(f"point {(y, x)} outside the {h} x {w} slice")
        return (y, x)

    level: float = _state_property("level", "Window level (centre) in HU.", lambda self, v: float(v))
    width: float = _state_property("width", "Window width in HU (> 0).", _checked_width)
    slice_index: int = _state_property("slice_index", "Index (0-based) of the displayed slice along the "
                                       "series.", _checked_slice)
    point: tuple[int, int] = _state_property("point", "(row, column) of the HU readout.", _checked_point)

    def click(self, row_fraction: float, col_fraction: float) -> None:
        """Move the readout point to where the picture was clicked (fractions of its size)."""
        h, w = self.volume.shape[1:]
        self.point = (min(h - 1, max(0, int(row_fraction * h))), min(w - 1, max(0, int(col_fraction * w))))

    @property
    def active_preset(self) -> str | None:
        """Name of the preset equal to the current window, None when none is."""
        for name, win in self.presets.items():
            if (win.level, win.width) == (self.level, self.width):
                return name
        return None

    def set_preset(self, name: str) -> None:
        """Apply a named window (brain, subdural, soft_tissue, bone, or a learned one)."""
        if name not in self.presets:
            raise KeyError(f"unknown window preset {name!r}; have {sorted(self.presets)}")
        level, width = self.presets[name]
        as_window((level, width))
        self._state["level"] = float(level)
        self._set("width", float(width))

    def hu_slice(self) -> np.ndarray:
        """The current slice in HU."""
        return self.volume[self.slice_index]

    def image(self) -> np.ndarray:
        """The displayed 2-D array in [0, 1]: exactly `window()` of the current slice."""
        return apply_window(self.hu_slice(), self.level, self.width)

    def hu_at(self, y: int | None = None, x: int | None = None) -> float:
        """HU at (row, column) of the current slice (default: the readout point)."""
        py, px = self.point if y is None or x is None else (int(y), int(x))
        return float(self.hu_slice()[py, px])

    def roi_mean(self, y: int | None = None, x: int | None = None) -> float:
        """Mean HU in the (2*roi+1)^2 square around (row, column), clipped to the slice."""
        py, px = self.point if y is None or x is None else (int(y), int(x))
        r = self.roi
        return float(self.hu_slice()[max(0, py - r):py + r + 1, max(0, px - r):px + r + 1].mean())

    def slice_label(self) -> str:
        """'12 / 33': the slice counted from 1, of how many."""
        return f"{self.slice_index + 1} / {self.volume.shape[0]}"

    def readout(self) -> str:
        """One-line text of the window and the HU readout."""
        y, x = self.point
        lo, hi = self.level - self.width / 2, self.level + self.width / 2
        return (f"level {self.level:g} HU, width {self.width:g} HU: black below {lo:g}, white above "
                f"{hi:g} | slice {self.slice_label()} | HU at (row {y}, col {x}): {self.hu_at():.0f} | "
                f"ROI mean ({2 * self.roi + 1}x{2 * self.roi + 1}): {self.roi_mean():.0f}")

    def readout_html(self) -> str:
        """The readout split into lines, with the dropped files (if any) below it."""
        parts = self.readout().split(" | ")
        html = "<br>".join(f"<code>{p}</code>" for p in [parts[0], " | ".join(parts[1:3]), parts[3]])
        if self.skipped:
            html += f"<br><small>not shown: {_html.escape(describe_skipped(self.skipped))}</small>"
        return html

    # -- rendering ----------------------------------------------------------------------
    def _mask_up(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The current slice's mask at display size and its outside outline (cached)."""
        if self.overlay is None:
            return None
        i = self.slice_index if self.overlay.shape[0] > 1 else 0
        if i not in self._mask_cache:
            up = upscale(self.overlay[i] >= 0.5, self.scale)
            self._mask_cache[i] = (up, outline(up))
        return self._mask_cache[i]

    def render_rgb(self) -> np.ndarray:
        """The displayed picture as uint8 RGB at display size (nearest-neighbour upscaled):
        window, mask outline or fill, and the readout square."""
        k = self.scale
        rgb = np.repeat(upscale(to_uint8_gray(self.image()), k)[..., None], 3, axis=2).astype(np.float32)
        cached = self._mask_up()
        if cached is not None and self.overlay_mode == "outline":
            rgb[cached[1]] = OVERLAY_COLOUR
        elif cached is not None:
            mark_mask(rgb, cached[0], self.overlay_mode, OVERLAY_COLOUR, self.overlay_alpha)
        y, x = self.point
        r = self.roi
        draw_box(rgb, ((x - r) * k - 1, (y - r) * k - 1, (x + r + 1) * k + 1, (y + r + 1) * k + 1),
                 POINT_COLOUR, thick=1)
        return rgb.astype(np.uint8)

    def histogram_rgb(self, width: int = 580, height: int = 140) -> np.ndarray:
        """HU histogram of the whole volume (log counts) with the window shaded and labelled."""
        return histogram_rgb(self._hist_counts, self.level - self.width / 2,
                             self.level + self.width / 2, width=width, height=height)

    def _pictures(self) -> dict[str, Any]:
        return {"image": self.render_rgb, "hist": self.histogram_rgb}

    def _build(self) -> Any:
        from brainlib.widgets.window_controls import build_controls

        return build_controls(self)

    def figure(self):
        """Static matplotlib figure of the current state (headless runs, HTML export)."""
        import matplotlib.pyplot as plt

        fig, (ax, axh) = plt.subplots(1, 2, figsize=(11, 5), gridspec_kw={"width_ratios": [1, 1.1]})
        ax.imshow(self.render_rgb(), interpolation="nearest")
        ax.set_title(f"level {self.level:g} / width {self.width:g} HU, slice {self.slice_label()}")
        ax.axis("off")
        edges = np.linspace(*HIST_RANGE, len(self._hist_counts) + 1)
        axh.stairs(self._hist_counts, edges, color="0.4", fill=True)
        axh.set_yscale("log")
        lo, hi = self.level - self.width / 2, self.level + self.width / 2
        axh.axvspan(lo, hi, color="tab:red", alpha=0.25)
        for hu, ha in ((lo, "right"), (hi, "left")):
            axh.axvline(hu, color="tab:red", lw=1)
            axh.annotate(f"{hu:g}", (hu, 1), xycoords=("data", "axes fraction"), ha=ha, va="bottom",
                         color="tab:red", xytext=(-3 if ha == "right" else 3, 2), textcoords="offset points")
        axh.set_xticks(HIST_TICKS)
        axh.set_xlim(*HIST_RANGE)
        axh.set_xlabel("HU")
        axh.set_ylabel("voxels (log scale)")
        axh.set_title(f"HU at point {self.hu_at():.0f}, ROI mean {self.roi_mean():.0f}", pad=16)
        fig.tight_layout()
        return fig
