"""`SeriesAttentionViewer`: browse a series with its slice attention (Wang et al., DrCT1 /
DrCT2: which slices the sequence model attends to, the top-k highlighted as in the paper)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from brainlib.io import WINDOWS, Window, as_window
from brainlib.io import window as apply_window
from brainlib.widgets.base import Viewer
from brainlib.widgets.render import bars, blend, colormap_lut, draw_box, to_uint8_gray, upscale, upscale_factor
from brainlib.widgets.sources import load_source

__all__ = ["SeriesAttentionViewer"]


class SeriesAttentionViewer(Viewer):
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
        self.scale = upscale_factor(self.slices.shape[1:], minimum=384)
        self._lut = colormap_lut("jet")

    def image(self, index: int | None = None) -> np.ndarray:
        """Displayed slice in [0, 1]."""
        s = self.slices[self.slice_index if index is None else index]
        return apply_window(s, *self.window) if self.hu else np.clip(s, 0, 1)

    def render_rgb(self) -> np.ndarray:
        """The selected slice (nearest-neighbour enlarged) with its highlight; a red frame
        marks a top-k slice."""
        ov = None if self.highlight is None else upscale(self.highlight[self.slice_index], self.scale)
        rgb = blend(upscale(to_uint8_gray(self.image()), self.scale), ov, 0.35, self._lut)
        if self.slice_index in self.top_indices:
            h, w = rgb.shape[:2]
            draw_box(rgb, (0, 0, w, h), (220, 30, 30), thick=3)
        return rgb.astype(np.uint8)

    def attention_rgb(self, height: int = 80) -> np.ndarray:
        """Attention bars: top-k in red, the selected slice in blue."""
        colours = np.full((len(self.attention), 3), 150, np.uint8)
        colours[self.top_indices] = (220, 30, 30)
        colours[self.slice_index] = (30, 90, 220)
        return bars(self.attention, height, colours, bar_px=max(4, 480 // len(self.attention)))

    def readout(self) -> str:
        """The selected slice ('12 / 33'), its attention, its rank and the probabilities."""
        rank = (self.top_indices.index(self.slice_index) + 1
                if self.slice_index in self.top_indices else None)
        probs = ", ".join(f"{k} {v:.2f}" for k, v in self.probabilities.items())
        top = f"top-{self.top_k} rank {rank}" if rank else f"not in top-{self.top_k}"
        return (f"slice {self.slice_index + 1} / {len(self.slices)}: attention "
                f"{self.attention[self.slice_index]:.3f} ({top})" + (f" | {probs}" if probs else ""))

    def _pictures(self) -> dict[str, Any]:
        return {"image": self.render_rgb, "bars": self.attention_rgb}

    def _build(self) -> Any:
        import ipywidgets as w

        c = self._controls
        c["slice"] = w.IntSlider(value=self.slice_index, min=0, max=len(self.slices) - 1,
                                 description="slice", readout=False, layout=w.Layout(width="480px"))
        c["top"] = w.ToggleButtons(options=[(str(i + 1), i) for i in self.top_indices],
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
        c["top"].observe(lambda ch: ch["new"] is not None and go(int(ch["new"])), names="value")
        return w.VBox([c["top"], c["slice"], c["bars"], c["image"], c["readout"]])

    def figure(self):
        """Static figure: attention bars and the top-k slices."""
        import matplotlib.pyplot as plt

        k = self.top_k
        fig = plt.figure(figsize=(2.2 * max(k, 3), 4.6))
        grid = fig.add_gridspec(2, k, height_ratios=[1, 1.4])
        ax = fig.add_subplot(grid[0, :])
        colours = ["tab:red" if i in self.top_indices else "0.6" for i in range(len(self.attention))]
        ax.bar(np.arange(1, len(self.attention) + 1), self.attention, color=colours)
        ax.set_xlabel("slice (counted from 1)")
        ax.set_ylabel("attention")
        for j, i in enumerate(self.top_indices):
            a = fig.add_subplot(grid[1, j])
            a.imshow(self.image(i), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if self.highlight is not None:
                a.imshow(self.highlight[i], cmap="jet", alpha=0.35, vmin=0, vmax=1)
            a.set_title(f"#{j + 1}: slice {i + 1} / {len(self.slices)}", fontsize=9)
            a.axis("off")
        fig.tight_layout()
        return fig
