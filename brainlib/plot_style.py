"""brainlib's figure style, shared by :mod:`brainlib.plots` and :mod:`brainlib.plot_images`.

The style lives in `STYLE` and is applied with `style()` only while a figure is drawn and
saved; importing this module changes no rcParams. Figures are built without pyplot
(`figure_grid`), and `save_figure` writes PNG and PDF atomically. Every string drawn from data
passes through `literal`, so a ``$`` from a DICOM series description or a file name is shown as
written instead of starting mathtext (which would also fail the draw on a lone ``$``).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from brainlib._atomic import atomic_path

#: Okabe-Ito colour-blind-safe palette, used in order for classes and series.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
TRUE_COLOR = "#00C853"   # ground-truth boxes
PRED_COLOR = "#FF1744"   # predicted boxes
HIGHLIGHT_COLOR = "#FF1744"
DPI = 150

STYLE: dict[str, Any] = {
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.6,
    "image.interpolation": "nearest",
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "pdf.fonttype": 42,  # embed TrueType: editable text in the PDF
}


def literal(text: object) -> str:
    """`text` as matplotlib should show it, character for character: every ``$`` escaped, so
    data strings (series descriptions, file names, IDs) never become mathtext. Use it for any
    string from data that you put into a figure yourself."""
    return str(text).replace("$", r"\$")


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Apply brainlib's figure style for the duration of a block (rcParams restored after)."""
    with matplotlib.rc_context(STYLE):
        yield


def figure_grid(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] | None = None,
                **kw: Any) -> tuple[Figure, np.ndarray]:
    """A constrained-layout Figure (no pyplot) and its (nrows, ncols) array of axes."""
    fig = Figure(figsize=size or (4.2 * ncols, 3.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save_figure(fig: Figure, stem: str | Path) -> list[Path]:
    """Write `stem`.png and `stem`.pdf atomically (temp file + rename); return both paths."""
    stem = Path(stem)
    if stem.suffix in (".png", ".pdf"):
        stem = stem.with_suffix("")
    paths = []
    with style():
        for ext in ("png", "pdf"):
            target = stem.with_name(f"{stem.name}.{ext}")
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format=ext, dpi=DPI, bbox_inches="tight")
            paths.append(target)
    return paths
