"""Image figures: an image with heatmap and box overlays, and a grid of slices with key slices
framed (:mod:`brainlib.plots` re-exports both).

Boxes are (x0, y0, x1, y1) in pixels: ground truth solid green, predictions dashed red.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from matplotlib import patches
from matplotlib.figure import Figure

from brainlib.plot_style import HIGHLIGHT_COLOR, PRED_COLOR, TRUE_COLOR, figure_grid, literal, style


def _resize_to(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if a.shape == shape:
        return a
    from skimage.transform import resize

    return resize(a, shape, order=1, preserve_range=True, anti_aliasing=False)


def _draw_boxes(ax: Any, boxes: Any, color: str, ls: str, labels: Sequence[str] | None = None) -> None:
    if boxes is None:
        return
    arr = np.asarray(boxes, dtype=float).reshape(-1, 4)
    for i, (x0, y0, x1, y1) in enumerate(arr):
        if x1 < x0 or y1 < y0:
            raise ValueError(f"box {i} = {(x0, y0, x1, y1)} is not (x0, y0, x1, y1) with x0<=x1, y0<=y1")
        ax.add_patch(patches.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=color, lw=1.5, ls=ls))
        if labels is not None and i < len(labels) and labels[i]:
            ax.text(x0, y0 - 1, literal(labels[i]), color=color, fontsize=7, va="bottom")


def _show_overlay(ax: Any, image: np.ndarray, heatmap: Any, boxes_true: Any, boxes_pred: Any,
                  alpha: float, cmap: str, vmin: float | None, vmax: float | None,
                  pred_labels: Sequence[str] | None = None) -> Any:
    img = np.asarray(image, dtype=float)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)  # channels-first -> channels-last
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 3:
        lo, hi = np.nanmin(img), np.nanmax(img)
        ax.imshow((img - lo) / (hi - lo) if hi > lo else np.zeros_like(img))
    else:
        ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax)
    mappable = None
    if heatmap is not None:
        h = _resize_to(np.asarray(heatmap, dtype=float), img.shape[:2])
        mappable = ax.imshow(h, cmap=cmap, alpha=alpha)
    _draw_boxes(ax, boxes_true, TRUE_COLOR, "-")
    _draw_boxes(ax, boxes_pred, PRED_COLOR, "--", pred_labels)
    ax.set_axis_off()
    return mappable


def overlay(image: Any, heatmap: Any = None, boxes_true: Any = None, boxes_pred: Any = None, *,
            alpha: float = 0.45, cmap: str = "jet", vmin: float | None = None,
            vmax: float | None = None, pred_labels: Sequence[str] | None = None,
            title: str | None = None) -> Figure:
    """Image (grey, or RGB/3-window), optional heatmap (resized to the image) and boxes.

    Boxes are (x0, y0, x1, y1) in pixels: ground truth solid green, predictions dashed red
    (with optional `pred_labels`, e.g. class and score).
    """
    with style():
        fig, axes = figure_grid(size=(4.2, 4.2))
        ax = axes[0, 0]
        mappable = _show_overlay(ax, np.asarray(image), heatmap, boxes_true, boxes_pred, alpha, cmap,
                                 vmin, vmax, pred_labels)
        if mappable is not None:
            fig.colorbar(mappable, ax=ax, shrink=0.75, label="activation")
        handles = []
        if boxes_true is not None:
            handles.append(patches.Patch(fill=False, ec=TRUE_COLOR, label="ground truth"))
        if boxes_pred is not None:
            handles.append(patches.Patch(fill=False, ec=PRED_COLOR, ls="--", label="predicted"))
        if handles:
            ax.legend(handles=handles, loc="lower right", fontsize=7)
        if title:
            ax.set_title(literal(title))
    return fig


def slice_grid(slices: Any, *, titles: Sequence[str] | None = None, ncols: int = 6,
               highlight: Sequence[int] = (), heatmaps: Any = None, alpha: float = 0.4,
               vmin: float | None = None, vmax: float | None = None,
               title: str | None = None) -> Figure:
    """A grid of slices (Z, H, W) — e.g. a CT series — with key slices framed in red.

    `highlight` lists slice indices to frame (DrCT2's top-attention slices); optional
    `heatmaps` (Z, h, w) are overlaid per slice.
    """
    vol = [np.asarray(s, dtype=float) for s in slices]
    if not vol:
        raise ValueError("slice_grid needs at least one slice")
    if any(s.ndim != 2 for s in vol):
        raise ValueError("slice_grid expects 2-D slices (Z, H, W)")
    z = len(vol)
    ncols = max(1, min(ncols, z))
    nrows = math.ceil(z / ncols)
    if titles is not None and len(titles) != z:
        raise ValueError(f"{len(titles)} titles for {z} slices")
    bad = [i for i in highlight if not 0 <= i < z]
    if bad:
        raise ValueError(f"highlight indices {bad} outside 0..{z - 1}")
    with style():
        fig, axes = figure_grid(nrows, ncols, size=(1.6 * ncols, 1.7 * nrows + (0.3 if title else 0)))
        for i, ax in enumerate(axes.ravel()):
            if i >= z:
                ax.set_axis_off()
                continue
            hm = None if heatmaps is None else heatmaps[i]
            _show_overlay(ax, vol[i], hm, None, None, alpha, "jet", vmin, vmax)
            ax.set_title(literal(titles[i]) if titles is not None else str(i), fontsize=7)
            if i in highlight:
                h, w = vol[i].shape
                ax.add_patch(patches.Rectangle((0, 0), w - 1, h - 1, fill=False,
                                               ec=HIGHLIGHT_COLOR, lw=2.5))
        if title:
            fig.suptitle(literal(title))
    return fig
