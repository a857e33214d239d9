"""Interactive viewers for students: window width/level, series attention, CAM.

Windowing is learnt by moving it. `WindowExplorer` shows a CT slice through a window
(level, width) in HU with sliders, presets (brain, subdural, soft tissue, bone, plus learned
windows such as the ones He et al. 2024's window module finds), a slice slider, an optional
mask/CAM overlay, a HU histogram with the window drawn on it and a HU readout at a point and
in a small ROI. `SeriesAttentionViewer` browses a DrCT (Wang et al.) series with its slice
attention; `CamViewer` thresholds a CAM into a box as He et al. do (20 % of the maximum).

Rendering is plain numpy + PIL into an `ipywidgets.Image` (no matplotlib in the redraw path),
so a 512 x 512 redraw stays far below 100 ms on a CPU. With no frontend (papermill sets
nothing we can see, so `brainlib run` exports ``BRAINLIB_HEADLESS=1``) the same objects
display a static matplotlib figure instead, so notebooks run headlessly and their HTML export
still shows the picture. The programmatic state (`level`, `width`, `slice_index`, `image()`)
is the same in both modes and is what the tests check.
"""
from __future__ import annotations

import io as _io
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image as PILImage

from brainlib.io import WINDOWS, Window, as_window
from brainlib.io import window as apply_window
from brainlib.localize import cam_box

__all__ = ["WindowExplorer", "SeriesAttentionViewer", "CamViewer", "load_source", "headless",
           "region_contrast"]

Box = tuple[int, int, int, int]
_HIST_RANGE = (-1100.0, 1900.0)  # HU span of the histogram strip (air .. dense bone)


def headless() -> bool:
    """True when no Jupyter frontend will render widgets (papermill, plain Python)."""
    if os.environ.get("BRAINLIB_HEADLESS", "") not in ("", "0"):
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    return shell is None or not hasattr(shell, "kernel")


def load_source(source: Any) -> np.ndarray:
    """A HU volume (Z, H, W) float32 from a 2-D/3-D array, a DICOM file or a series folder.

    A folder must hold exactly one series (else say which ones, so the student can pick);
    its slices are ordered along the slice normal by `brainlib.io.assemble_series`.
    """
    from brainlib.io import assemble_series, read_hu, scan_folder

    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such DICOM file or folder")
        if path.is_file():
            return read_hu(path)[None]
        index, skipped = scan_folder(path)
        series = assemble_series(index) if len(index) else []
        if not series:
            reasons = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:3])
            raise ValueError(f"{path}: no readable CT series in this folder. {reasons}")
        if len(series) > 1:
            names = ", ".join(f"{s.description or s.series_uid} ({len(s.paths)} slices)"
                              for s in series)
            raise ValueError(f"{path}: holds {len(series)} series ({names}); pass one series folder")
        return np.stack([read_hu(p) for p in series[0].paths]).astype(np.float32)
    try:
        import torch

        if isinstance(source, torch.Tensor):
            source = source.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if not isinstance(source, np.ndarray):
        raise TypeError(f"source must be a HU array, a DICOM file or a series folder, "
                        f"got {type(source).__name__}")
    if source.ndim == 2:
        source = source[None]
    if source.ndim != 3 or min(source.shape) == 0:
        raise ValueError(f"source array must be 2-D (H, W) or 3-D (Z, H, W), got shape {source.shape}")
    if not np.issubdtype(source.dtype, np.number):
        raise TypeError(f"source array must be numeric HU, got dtype {source.dtype}")
    return source.astype(np.float32, copy=False)


def region_contrast(hu: np.ndarray, region: np.ndarray, reference: np.ndarray,
                    win: Window | tuple[float, float]) -> float:
    """Difference of mean displayed grey level between two regions through a window.

    Teaching measure for "why subdural blood is easier to see in the subdural window":
    a crescent of blood against the adjacent skull is bright-on-bright in the brain window.
    """
    level, width = as_window(win)
    shown = apply_window(hu, level, width)
    if not region.any() or not reference.any():
        raise ValueError("both regions must contain at least one pixel")
    return float(shown[region].mean() - shown[reference].mean())


# ---------------------------------------------------------------- numpy rendering helpers
def _to_uint8_gray(img01: np.ndarray) -> np.ndarray:
    return (img01 * 255.0 + 0.5).astype(np.uint8)


def _colormap_lut(name: str) -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.float32)


def _blend(gray_u8: np.ndarray, overlay: np.ndarray | None, alpha: float, lut: np.ndarray,
           mask_only: bool) -> np.ndarray:
    rgb = np.repeat(gray_u8[..., None], 3, axis=2).astype(np.float32)
    if overlay is not None and alpha > 0:
        ov = np.clip(overlay, 0.0, 1.0)
        colour = lut[(ov * 255).astype(np.uint8)]
        weight = alpha * (ov > 0 if mask_only else ov)[..., None]
        rgb = rgb * (1 - weight) + colour * weight
    return rgb


def _draw_box(rgb: np.ndarray, box: Box | None, colour: Sequence[float], thick: int = 2) -> None:
    if box is None:
        return
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, x1 = max(0, x0), min(w, x1)
    y0, y1 = max(0, y0), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return
    rgb[y0:y0 + thick, x0:x1] = colour
    rgb[max(y0, y1 - thick):y1, x0:x1] = colour
    rgb[y0:y1, x0:x0 + thick] = colour
    rgb[y0:y1, max(x0, x1 - thick):x1] = colour


def _png(rgb_or_gray: np.ndarray) -> bytes:
    buf = _io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(rgb_or_gray.astype(np.uint8))).save(
        buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if a.shape == shape:
        return a.astype(np.float32, copy=False)
    img = PILImage.fromarray(a.astype(np.float32), mode="F")
    return np.asarray(img.resize((shape[1], shape[0]), PILImage.BILINEAR), dtype=np.float32)


def _bars(values: np.ndarray, height: int, colours: np.ndarray, bar_px: int) -> np.ndarray:
    """Bar chart as an RGB array: one bar of `bar_px` pixels per value, white background."""
    n = len(values)
    img = np.full((height, n * bar_px, 3), 255, np.uint8)
    top = values.max() if len(values) and values.max() > 0 else 1.0
    for i, v in enumerate(values):
        h = int(round((height - 2) * v / top))
        if h > 0:
            img[height - h:, i * bar_px:(i + 1) * bar_px - (1 if bar_px > 2 else 0)] = colours[i]
    return img


# ---------------------------------------------------------------- shared viewer logic
class _Viewer:
    """What every viewer shares: an ipywidgets box built once on first use, redrawn from
    `_pictures()` + `readout()`, and a static `figure()` instead when no frontend renders."""

    def __init__(self) -> None:
        self._controls: dict[str, Any] = {}
        self._widget: Any = None

    def _build(self) -> Any:  # the ipywidgets box; fills self._controls
        raise NotImplementedError

    def _pictures(self) -> dict[str, Any]:  # control key -> function returning an RGB array
        raise NotImplementedError

    def readout(self) -> str:
        raise NotImplementedError

    def figure(self) -> Any:
        raise NotImplementedError

    def widget(self) -> Any:
        """The ipywidgets box (built once)."""
        if self._widget is None:
            self._widget = self._build()
            self.redraw()
        return self._widget

    def redraw(self) -> None:
        """Refresh pictures and readout (the < 100 ms path); a no-op before `widget()`."""
        if self._widget is None:
            return
        for key, render in self._pictures().items():
            self._controls[key].value = _png(render())
        self._controls["readout"].value = f"<code>{self.readout()}</code>"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if headless():
            import matplotlib.pyplot as plt

            fig = self.figure()
            display(fig)
            plt.close(fig)
        else:
            display(self.widget())


# ---------------------------------------------------------------- WindowExplorer
class WindowExplorer(_Viewer):
    """Window width/level explorer over a HU slice or volume.

    Args:
        source: HU array (2-D or 3-D), a DICOM file, or a DICOM series folder.
        level, width: initial window in HU (default: the brain window).
        learned: extra named windows for preset buttons, e.g. ``{"learned 1": (52.0, 95.0)}``.
        overlay: optional mask or CAM, same shape as the volume (or one slice), values in [0, 1].
        overlay_alpha: opacity of the overlay.
        roi: half-size in pixels of the square ROI whose mean HU is read out.
    """

    def __init__(self, source: Any, *, level: float = WINDOWS["brain"].level,
                 width: float = WINDOWS["brain"].width,
                 learned: Mapping[str, Window | tuple[float, float]] | None = None,
                 overlay: np.ndarray | None = None, overlay_alpha: float = 0.4,
                 roi: int = 5, slice_index: int | None = None) -> None:
        super().__init__()
        self.volume = load_source(source)
        as_window((level, width))  # validates width > 0
        self.presets: dict[str, Window] = {k: v for k, v in WINDOWS.items()}
        for name, spec in (learned or {}).items():
            self.presets[name] = as_window(spec)
        self.overlay = self._check_overlay(overlay)
        self.overlay_alpha = float(overlay_alpha)
        self.roi = int(roi)
        z, h, w = self.volume.shape
        self._state = {"level": float(level), "width": float(width),
                       "slice_index": z // 2 if slice_index is None else int(slice_index),
                       "point": (h // 2, w // 2)}
        self._check_slice(self._state["slice_index"])
        self._lut = _colormap_lut("jet")
        self._hist_counts = np.histogram(self.volume, bins=300, range=_HIST_RANGE)[0]

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
        control = self._controls.get(key)
        if control is not None and control.value != value:
            control.value = value  # triggers the observer, which redraws
        elif self._widget is not None:
            self.redraw()

    @property
    def level(self) -> float:
        """Window level (centre) in HU."""
        return self._state["level"]

    @level.setter
    def level(self, value: float) -> None:
        self._set("level", float(value))

    @property
    def width(self) -> float:
        """Window width in HU (> 0)."""
        return self._state["width"]

    @width.setter
    def width(self, value: float) -> None:
        as_window((self.level, value))
        self._set("width", float(value))

    @property
    def slice_index(self) -> int:
        """Index of the displayed slice along the series."""
        return self._state["slice_index"]

    @slice_index.setter
    def slice_index(self, value: int) -> None:
        self._check_slice(int(value))
        self._set("slice_index", int(value))

    @property
    def point(self) -> tuple[int, int]:
        """(row, column) of the HU readout."""
        return self._state["point"]

    @point.setter
    def point(self, value: tuple[int, int]) -> None:
        y, x = (int(v) for v in value)
        h, w = self.volume.shape[1:]
        if not (0 <= y < h and 0 <= x < w):
            raise IndexError(f"point {(y, x)} outside the {h} x {w} slice")
        self._state["point"] = (y, x)
        for key, v in (("point_y", y), ("point_x", x)):
            if key in self._controls:
                self._controls[key].value = v
        if self._widget is not None:
            self.redraw()

    def set_preset(self, name: str) -> None:
        """Apply a named window (brain, subdural, soft_tissue, bone, or a learned one)."""
        if name not in self.presets:
            raise KeyError(f"unknown window preset {name!r}; have {sorted(self.presets)}")
        level, width = self.presets[name]
        self.width = width
        self.level = level

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

    def readout(self) -> str:
        """One-line text of the window and the HU readout (shown under the image)."""
        y, x = self.point
        return (f"level {self.level:g} HU, width {self.width:g} HU "
                f"[{self.level - self.width / 2:g} .. {self.level + self.width / 2:g}] | "
                f"slice {self.slice_index} | HU at (row {y}, col {x}): {self.hu_at():.1f} | "
                f"ROI mean ({2 * self.roi + 1}x{2 * self.roi + 1}): {self.roi_mean():.1f}")

    # -- rendering ----------------------------------------------------------------------
    def render_rgb(self) -> np.ndarray:
        """The displayed picture as uint8 RGB: window, overlay and readout marker."""
        gray = _to_uint8_gray(self.image())
        ov = None
        if self.overlay is not None:
            ov = self.overlay[self.slice_index if self.overlay.shape[0] > 1 else 0]
        rgb = _blend(gray, ov, self.overlay_alpha, self._lut, mask_only=False)
        y, x = self.point
        r = self.roi
        _draw_box(rgb, (x - r, y - r, x + r + 1, y + r + 1), (255, 200, 0), thick=1)
        return rgb.astype(np.uint8)

    def histogram_rgb(self, height: int = 90) -> np.ndarray:
        """HU histogram (log counts) with the current window shaded."""
        counts = np.log1p(self._hist_counts.astype(np.float64))
        lo, hi = _HIST_RANGE
        edges = np.linspace(lo, hi, len(counts) + 1)
        inside = (edges[1:] > self.level - self.width / 2) & (edges[:-1] < self.level + self.width / 2)
        colours = np.where(inside[:, None], [[200, 60, 30]], [[120, 120, 120]]).astype(np.uint8)
        img = _bars(counts, height, colours, bar_px=2)
        img[:, np.repeat(inside, 2) & (img == 255).all(axis=2).all(axis=0)] = (255, 235, 225)
        return img

    def _pictures(self) -> dict[str, Any]:
        return {"image": self.render_rgb, "hist": self.histogram_rgb}

    def _build(self) -> Any:
        import ipywidgets as w

        z, h, wd = self.volume.shape
        c = self._controls
        c["level"] = w.FloatSlider(value=self.level, min=-1000, max=2000, step=1,
                                   description="level (HU)", continuous_update=True)
        c["width"] = w.FloatSlider(value=self.width, min=1, max=4000, step=1,
                                   description="width (HU)", continuous_update=True)
        c["slice_index"] = w.IntSlider(value=self.slice_index, min=0, max=z - 1,
                                       description="slice", disabled=z == 1)
        c["point_y"] = w.IntSlider(value=self.point[0], min=0, max=h - 1, description="row")
        c["point_x"] = w.IntSlider(value=self.point[1], min=0, max=wd - 1, description="column")
        c["alpha"] = w.FloatSlider(value=self.overlay_alpha, min=0, max=1, step=0.05,
                                   description="overlay", disabled=self.overlay is None)
        c["image"] = w.Image(format="png", layout=w.Layout(width=f"{min(512, wd)}px"))
        c["hist"] = w.Image(format="png", layout=w.Layout(width="600px", height="90px"))
        c["readout"] = w.HTML()
        buttons = []
        for name in self.presets:
            b = w.Button(description=name, tooltip=f"level {self.presets[name].level:g}, "
                                                   f"width {self.presets[name].width:g}")
            b.on_click(lambda _b, n=name: self.set_preset(n))
            buttons.append(b)

        def on_change(key: str):
            def handler(change: dict) -> None:
                self._state[key] = change["new"]
                self.redraw()
            return handler

        for key in ("level", "width", "slice_index"):
            c[key].observe(on_change(key), names="value")
        c["point_y"].observe(lambda ch: self._move_point(y=ch["new"]), names="value")
        c["point_x"].observe(lambda ch: self._move_point(x=ch["new"]), names="value")
        c["alpha"].observe(lambda ch: (setattr(self, "overlay_alpha", ch["new"]), self.redraw()),
                           names="value")
        return w.VBox([
            w.HBox(buttons), c["level"], c["width"], c["slice_index"],
            w.HBox([c["point_y"], c["point_x"], c["alpha"]]), c["image"], c["readout"], c["hist"],
        ])

    def _move_point(self, y: int | None = None, x: int | None = None) -> None:
        py, px = self.point
        self._state["point"] = (py if y is None else int(y), px if x is None else int(x))
        self.redraw()

    def figure(self):
        """Static matplotlib figure of the current state (headless runs, reports)."""
        import matplotlib.pyplot as plt

        fig, (ax, axh) = plt.subplots(1, 2, figsize=(10, 4.4), gridspec_kw={"width_ratios": [1, 1.3]})
        ax.imshow(self.render_rgb())
        ax.set_title(f"level {self.level:g} / width {self.width:g} HU, slice {self.slice_index}")
        ax.axis("off")
        axh.stairs(self._hist_counts, np.linspace(*_HIST_RANGE, len(self._hist_counts) + 1),
                   color="0.4", fill=True)
        axh.set_yscale("log")
        axh.axvspan(self.level - self.width / 2, self.level + self.width / 2, color="tab:red", alpha=0.25)
        axh.set_xlabel("HU")
        axh.set_ylabel("voxels")
        axh.set_title(f"HU at point {self.hu_at():.1f}, ROI mean {self.roi_mean():.1f}")
        fig.tight_layout()
        return fig


# ---------------------------------------------------------------- SeriesAttentionViewer
class SeriesAttentionViewer(_Viewer):
    """Browse a series with its slice attention (Wang et al. DrCT1/DrCT2 outputs).

    Args:
        slices: HU volume (Z, H, W) (windowed with `window`) or images already in [0, 1].
        attention: (Z,) slice-attention weights.
        top_k: how many top-attention slices to highlight (the paper shows 5).
        window: (level, width) used when `slices` are HU.
        highlight: optional (Z, H, W) maps in [0, 1] (e.g. feature attention) drawn as overlay.
        probabilities: optional {class: probability} shown under the picture.
    """

    def __init__(self, slices: np.ndarray, attention: Sequence[float], *, top_k: int = 5,
                 window: Window | tuple[float, float] = WINDOWS["brain"],
                 highlight: np.ndarray | None = None,
                 probabilities: Mapping[str, float] | None = None, hu: bool = True) -> None:
        super().__init__()
        self.slices = load_source(np.asarray(slices))
        self.attention = np.asarray(attention, dtype=np.float64).ravel()
        if len(self.attention) != len(self.slices):
            raise ValueError(f"attention has {len(self.attention)} values for {len(self.slices)} slices")
        self.window = as_window(window)
        self.hu = hu
        self.highlight = None if highlight is None else np.asarray(highlight, np.float32)
        if self.highlight is not None and self.highlight.shape != self.slices.shape:
            raise ValueError(f"highlight shape {self.highlight.shape} != slices {self.slices.shape}")
        self.probabilities = dict(probabilities or {})
        self.top_k = int(min(top_k, len(self.slices)))
        self.top_indices = [int(i) for i in np.argsort(-self.attention, kind="stable")[:self.top_k]]
        self.slice_index = self.top_indices[0]
        self._lut = _colormap_lut("jet")

    def image(self, index: int | None = None) -> np.ndarray:
        """Displayed slice in [0, 1]."""
        s = self.slices[self.slice_index if index is None else index]
        return apply_window(s, *self.window) if self.hu else np.clip(s, 0, 1)

    def render_rgb(self) -> np.ndarray:
        """The selected slice with its highlight; a red frame marks a top-k slice."""
        ov = None if self.highlight is None else self.highlight[self.slice_index]
        rgb = _blend(_to_uint8_gray(self.image()), ov, 0.35, self._lut, mask_only=False)
        if self.slice_index in self.top_indices:
            h, w = rgb.shape[:2]
            _draw_box(rgb, (0, 0, w, h), (220, 30, 30), thick=3)
        return rgb.astype(np.uint8)

    def attention_rgb(self, height: int = 80) -> np.ndarray:
        """Attention bars: top-k in red, the selected slice in blue."""
        colours = np.full((len(self.attention), 3), 150, np.uint8)
        colours[self.top_indices] = (220, 30, 30)
        colours[self.slice_index] = (30, 90, 220)
        return _bars(self.attention, height, colours, bar_px=max(4, 480 // len(self.attention)))

    def readout(self) -> str:
        """The selected slice's attention, its rank and the predicted probabilities."""
        rank = (self.top_indices.index(self.slice_index) + 1
                if self.slice_index in self.top_indices else None)
        probs = ", ".join(f"{k} {v:.2f}" for k, v in self.probabilities.items())
        top = f"top-{self.top_k} rank {rank}" if rank else f"not in top-{self.top_k}"
        return (f"slice {self.slice_index}: attention {self.attention[self.slice_index]:.3f} "
                f"({top})" + (f" | {probs}" if probs else ""))

    def _pictures(self) -> dict[str, Any]:
        return {"image": self.render_rgb, "bars": self.attention_rgb}

    def _build(self) -> Any:
        import ipywidgets as w

        c = self._controls
        c["slice"] = w.IntSlider(value=self.slice_index, min=0, max=len(self.slices) - 1,
                                 description="slice")
        c["top"] = w.ToggleButtons(options=[str(i) for i in self.top_indices],
                                   description=f"top-{self.top_k}")
        c["image"] = w.Image(format="png")
        c["bars"] = w.Image(format="png")
        c["readout"] = w.HTML()

        def go(index: int) -> None:
            self.slice_index = int(index)
            if c["slice"].value != self.slice_index:
                c["slice"].value = self.slice_index
            self.redraw()

        c["slice"].observe(lambda ch: go(ch["new"]), names="value")
        c["top"].observe(lambda ch: go(int(ch["new"])), names="value")
        return w.VBox([c["top"], c["slice"], c["bars"], c["image"], c["readout"]])

    def figure(self):
        """Static figure: attention bars and the top-k slices."""
        import matplotlib.pyplot as plt

        k = self.top_k
        fig = plt.figure(figsize=(2.2 * max(k, 3), 4.6))
        grid = fig.add_gridspec(2, k, height_ratios=[1, 1.4])
        ax = fig.add_subplot(grid[0, :])
        colours = ["tab:red" if i in self.top_indices else "0.6" for i in range(len(self.attention))]
        ax.bar(np.arange(len(self.attention)), self.attention, color=colours)
        ax.set_xlabel("slice")
        ax.set_ylabel("attention")
        for j, i in enumerate(self.top_indices):
            a = fig.add_subplot(grid[1, j])
            a.imshow(self.image(i), cmap="gray", vmin=0, vmax=1)
            if self.highlight is not None:
                a.imshow(self.highlight[i], cmap="jet", alpha=0.35, vmin=0, vmax=1)
            a.set_title(f"#{j + 1}: slice {i}", fontsize=9)
            a.axis("off")
        fig.tight_layout()
        return fig


# ---------------------------------------------------------------- CamViewer
class CamViewer(_Viewer):
    """Image, CAM and the box obtained by thresholding it (He et al.: 20 % of the maximum).

    Args:
        image: 2-D image in [0, 1] (or HU with `window` given).
        cam: 2-D class activation map of any size (resized bilinearly to the image).
        box: optional ground-truth box (x0, y0, x1, y1), drawn in green.
        threshold: fraction of the CAM maximum a pixel must reach (`brainlib.localize.cam_box`).
    """

    def __init__(self, image: np.ndarray, cam: np.ndarray, box: Box | None = None, *,
                 threshold: float = 0.2, window: Window | tuple[float, float] | None = None,
                 alpha: float = 0.4) -> None:
        super().__init__()
        img = np.asarray(image, dtype=np.float32)
        if img.ndim != 2:
            raise ValueError(f"image must be 2-D, got shape {img.shape}")
        self.base = apply_window(img, *as_window(window)) if window is not None else np.clip(img, 0, 1)
        cam = np.asarray(cam, dtype=np.float32)
        if cam.ndim != 2:
            raise ValueError(f"cam must be 2-D, got shape {cam.shape}")
        self.cam = _resize(cam, img.shape)
        span = float(self.cam.max() - self.cam.min())
        self.cam01 = (self.cam - self.cam.min()) / span if span > 0 else np.zeros_like(self.cam)
        self.truth = box
        self.threshold = float(threshold)
        self.alpha = float(alpha)
        self._lut = _colormap_lut("jet")

    @property
    def predicted_box(self) -> Box | None:
        """Box of the largest component above the threshold."""
        return cam_box(self.cam, self.threshold)

    def render_rgb(self) -> np.ndarray:
        """Image with the CAM overlay, the true box (green) and the predicted box (red)."""
        rgb = _blend(_to_uint8_gray(self.base), self.cam01, self.alpha, self._lut, mask_only=False)
        _draw_box(rgb, self.truth, (40, 220, 40))
        _draw_box(rgb, self.predicted_box, (255, 40, 40))
        return rgb.astype(np.uint8)

    def readout(self) -> str:
        """Threshold, predicted and true boxes and their IoU."""
        from brainlib.localize import box_iou

        pred = self.predicted_box
        iou = box_iou(pred, self.truth) if (pred and self.truth) else float("nan")
        return f"threshold {self.threshold:.2f} | predicted box {pred} | ground truth {self.truth} | IoU {iou:.2f}"

    def _pictures(self) -> dict[str, Any]:
        return {"image": self.render_rgb}

    def _build(self) -> Any:
        import ipywidgets as w

        c = self._controls
        c["threshold"] = w.FloatSlider(value=self.threshold, min=0.05, max=0.95, step=0.05,
                                       description="threshold")
        c["image"] = w.Image(format="png")
        c["readout"] = w.HTML()

        def on(ch: dict) -> None:
            self.threshold = float(ch["new"])
            self.redraw()

        c["threshold"].observe(on, names="value")
        return w.VBox([c["threshold"], c["image"], c["readout"]])

    def figure(self):
        """Static figure of the current threshold (headless runs)."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 4.8))
        ax.imshow(self.render_rgb())
        ax.set_title(self.readout().split(" | ")[0] + f", IoU {self.readout().rsplit(' ', 1)[-1]}",
                     fontsize=9)
        ax.axis("off")
        fig.tight_layout()
        return fig

