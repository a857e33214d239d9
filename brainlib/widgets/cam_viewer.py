"""`CamViewer`: an image, its class activation map and the box obtained by thresholding the
CAM, as He et al. 2024 localise haemorrhage without box labels (20 % of the CAM maximum)."""
from __future__ import annotations

from typing import Any

import numpy as np

from brainlib.io import Window, as_window
from brainlib.io import window as apply_window
from brainlib.localize import box_iou, cam_box
from brainlib.widgets.base import Viewer
from brainlib.widgets.render import Box, blend, colormap_lut, draw_box, resize, to_uint8_gray, upscale, upscale_factor

__all__ = ["CamViewer"]


class CamViewer(Viewer):
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
        self.cam = resize(cam, img.shape)
        span = float(self.cam.max() - self.cam.min())
        self.cam01 = (self.cam - self.cam.min()) / span if span > 0 else np.zeros_like(self.cam)
        self.truth = box
        self.threshold = float(threshold)
        self.alpha = float(alpha)
        self.scale = upscale_factor(img.shape, minimum=384)
        self._lut = colormap_lut("jet")

    @property
    def predicted_box(self) -> Box | None:
        """Box of the largest component above the threshold."""
        return cam_box(self.cam, self.threshold)

    def render_rgb(self) -> np.ndarray:
        """Image with the CAM overlay, the true box (green) and the predicted box (red),
        enlarged by whole pixels for the screen."""
        rgb = blend(to_uint8_gray(self.base), self.cam01, self.alpha, self._lut)
        draw_box(rgb, self.truth, (40, 220, 40))
        draw_box(rgb, self.predicted_box, (255, 40, 40))
        return upscale(rgb.astype(np.uint8), self.scale)

    def readout(self) -> str:
        """Threshold, predicted and true boxes and their IoU."""
        pred = self.predicted_box
        iou = box_iou(pred, self.truth) if (pred and self.truth) else float("nan")
        return f"threshold {self.threshold:.2f} | predicted box {pred} | ground truth {self.truth} | IoU {iou:.2f}"

    def _pictures(self) -> dict[str, Any]:
        return {"image": self.render_rgb}

    def _build(self) -> Any:
        import ipywidgets as w

        c = self._controls
        c["threshold"] = w.FloatSlider(value=self.threshold, min=0.05, max=0.95, step=0.05,
                                       description="threshold", layout=w.Layout(width="420px"))
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
        ax.imshow(self.render_rgb(), interpolation="nearest")
        ax.set_title(self.readout().split(" | ")[0] + f", IoU {self.readout().rsplit(' ', 1)[-1]}",
                     fontsize=9)
        ax.axis("off")
        fig.tight_layout()
        return fig
