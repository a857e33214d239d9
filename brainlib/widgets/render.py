"""Numpy + PIL drawing for the viewers: greyscale, overlays, boxes, bars, a HU histogram.

No matplotlib in the redraw path, so a slider move redraws a 512 x 512 picture in a few tens
of milliseconds. Small matrices are enlarged by whole-pixel (nearest-neighbour) repetition,
so what is on screen is still one grey square per CT pixel, only bigger.
"""
from __future__ import annotations

import io as _io
import math
from typing import Sequence

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont
from scipy import ndimage

Box = tuple[int, int, int, int]
#: HU span of the histogram (air .. dense bone) and its labelled ticks.
HIST_RANGE = (-1100.0, 2100.0)
HIST_TICKS = (-1000, 0, 1000, 2000)
#: smallest on-screen side of the picture, in screen pixels.
MIN_DISPLAY = 512


def to_uint8_gray(img01: np.ndarray) -> np.ndarray:
    """[0, 1] -> uint8 grey levels (rounded)."""
    return (img01 * 255.0 + 0.5).astype(np.uint8)


def colormap_lut(name: str) -> np.ndarray:
    """256 x 3 float32 RGB lookup table of a matplotlib colour map."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.float32)


def blend(gray_u8: np.ndarray, heat: np.ndarray | None, alpha: float, lut: np.ndarray) -> np.ndarray:
    """Grey picture with a heat map (CAM, attention in [0, 1]) blended in, as float RGB."""
    rgb = np.repeat(gray_u8[..., None], 3, axis=2).astype(np.float32)
    if heat is not None and alpha > 0:
        h = np.clip(heat, 0.0, 1.0)
        weight = alpha * h[..., None]
        rgb = rgb * (1 - weight) + lut[(h * 255).astype(np.uint8)] * weight
    return rgb


def upscale_factor(shape: tuple[int, int], minimum: int = MIN_DISPLAY) -> int:
    """Whole-number enlargement that brings the longer side to at least `minimum` pixels."""
    return max(1, math.ceil(minimum / max(shape)))


def upscale(a: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor (each pixel becomes k x k)."""
    return a if k == 1 else np.repeat(np.repeat(a, k, axis=0), k, axis=1)


def outline(mask: np.ndarray) -> np.ndarray:
    """The one-pixel ring just outside a mask: drawing it never covers the masked pixels."""
    mask = mask.astype(bool)
    return ndimage.binary_dilation(mask) & ~mask


def mark_mask(rgb: np.ndarray, mask_up: np.ndarray, mode: str, colour: Sequence[int],
              fill_alpha: float = 0.3) -> None:
    """Show a mask (already at display size) in one colour: its outside outline or a
    translucent fill (at most 50 % opaque, so the grey below stays readable)."""
    if mode == "outline":
        rgb[outline(mask_up)] = colour
    elif mode == "fill":
        a = min(float(fill_alpha), 0.5)
        m = mask_up.astype(bool)
        rgb[m] = rgb[m] * (1 - a) + np.asarray(colour, np.float32) * a
    elif mode != "off":
        raise ValueError(f"overlay mode must be 'outline', 'fill' or 'off', got {mode!r}")


def draw_box(rgb: np.ndarray, box: Box | None, colour: Sequence[float], thick: int = 2) -> None:
    """Rectangle (x0, y0, x1, y1), clipped to the picture, drawn in place."""
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


def png(rgb_or_gray: np.ndarray) -> bytes:
    """PNG bytes (fast compression: the redraw path)."""
    buf = _io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(rgb_or_gray.astype(np.uint8))).save(
        buf, format="PNG", compress_level=1)
    return buf.getvalue()


def resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float map (CAMs come at the network's feature-map size)."""
    if a.shape == shape:
        return a.astype(np.float32, copy=False)
    img = PILImage.fromarray(a.astype(np.float32), mode="F")
    return np.asarray(img.resize((shape[1], shape[0]), PILImage.BILINEAR), dtype=np.float32)


def bars(values: np.ndarray, height: int, colours: np.ndarray, bar_px: int) -> np.ndarray:
    """Bar chart as an RGB array: one bar of `bar_px` pixels per value, white background."""
    n = len(values)
    img = np.full((height, n * bar_px, 3), 255, np.uint8)
    top = values.max() if len(values) and values.max() > 0 else 1.0
    for i, v in enumerate(values):
        h = int(round((height - 2) * v / top))
        if h > 0:
            img[height - h:, i * bar_px:(i + 1) * bar_px - (1 if bar_px > 2 else 0)] = colours[i]
    return img


def _font(size: int = 11) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def histogram_rgb(counts: np.ndarray, lo_hu: float, hi_hu: float, *, width: int = 440,
                  height: int = 150, hu_range: tuple[float, float] = HIST_RANGE) -> np.ndarray:
    """HU histogram with an HU axis (ticks at -1000/0/1000/2000), log counts, and the window
    [lo_hu, hi_hu] shaded with its two edges labelled in HU."""
    left, right, top, bottom = 34, 8, 18, 30
    img = PILImage.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    font = _font()
    pw, ph = width - left - right, height - top - bottom
    x_of = lambda hu: left + (hu - hu_range[0]) / (hu_range[1] - hu_range[0]) * pw  # noqa: E731
    logc = np.log10(1 + counts.astype(np.float64))
    ymax = max(1.0, math.ceil(logc.max()))
    # window band first, the bars over it
    wx0, wx1 = max(left, x_of(lo_hu)), min(left + pw, x_of(hi_hu))
    if wx1 > wx0:
        d.rectangle([wx0, top, max(wx0 + 1, wx1), top + ph], fill=(255, 226, 214))
    edges = np.linspace(*hu_range, len(counts) + 1)
    for i, v in enumerate(logc):
        if v <= 0:
            continue
        x0, x1 = x_of(edges[i]), x_of(edges[i + 1])
        inside = edges[i + 1] > lo_hu and edges[i] < hi_hu
        d.rectangle([x0, top + ph * (1 - v / ymax), max(x0, x1 - 0.5), top + ph],
                    fill=(200, 60, 30) if inside else (110, 110, 110))
    # axes, ticks and labels
    d.line([left, top + ph, left + pw, top + ph], fill="black")
    d.line([left, top, left, top + ph], fill="black")
    for t in HIST_TICKS:
        x = x_of(t)
        if left <= x <= left + pw:
            d.line([x, top + ph, x, top + ph + 4], fill="black")
            d.text((x, top + ph + 5), f"{t}", fill="black", font=font, anchor="ma")
    d.text((left + pw, height - 1), "HU", fill="black", font=font, anchor="rd")
    for p in range(0, int(ymax) + 1, max(1, int(ymax) // 3)):
        y = top + ph * (1 - p / ymax)
        d.line([left - 3, y, left, y], fill="black")
        d.text((left - 4, y), f"1e{p}", fill="black", font=font, anchor="rm")
    d.text((2, 2), "voxels (log scale)", fill="black", font=font, anchor="la")
    # window edges: vertical lines labelled with their HU, low edge left-aligned to its line
    for hu, anchor, dx in ((lo_hu, "rs", -2), (hi_hu, "ls", 2)):
        x = x_of(hu)
        if left <= x <= left + pw:
            d.line([x, top, x, top + ph], fill=(200, 30, 30), width=1)
        xc = min(max(x, left), left + pw)
        d.text((xc + dx, top - 3), f"{hu:g}", fill=(200, 30, 30), font=font, anchor=anchor)
    return np.asarray(img)
