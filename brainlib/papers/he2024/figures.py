"""Figures of He et al. 2024 as matplotlib Figures (the notebook saves them through
`exp.figure`): Fig. 5 (label proportions), Fig. 6 (ROC of the full model), Fig. 7 (preset
vs learned windows) and Fig. 8 (ground truth, CAM without and with fusion).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from brainlib import plots
from brainlib.data.classes import RSNA_CLASSES, RSNA_SHORT
from brainlib.io import BRAIN, window
from brainlib.localize import cam_box
from brainlib.papers.he2024.data import He2024Data, label_proportions, pick_cases
from brainlib.papers.he2024.localization import Localization, shown_class
from brainlib.papers.he2024.train import VariantResult


def fig5_proportions(data: He2024Data) -> Figure:
    """Fig. 5: percentage of slices with each label in the training and test sets."""
    table = label_proportions(data)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["train_percent"], 0.4, label="training")
    ax.bar(x + 0.2, table["test_percent"], 0.4, label="test")
    ax.set_xticks(x, [RSNA_SHORT[c] for c in table["class"]])
    ax.set_ylabel("slices (%)")
    ax.set_title("Fig. 5: label proportions")
    ax.legend()
    fig.tight_layout()
    return fig


def fig6_roc(results: dict[str, VariantResult], name: str = "he2024_full") -> Figure:
    """Fig. 6: ROC curve and AUC of each class (any + five subtypes) for the full model."""
    r = results[name]
    return plots.roc_curves(r.y_true, r.y_score, [RSNA_SHORT[c] for c in RSNA_CLASSES],
                            title="Fig. 6: ROC, full model (test set)")


def fig7_windows(data: He2024Data, results: dict[str, VariantResult], n_cases: int = 4,
                 name: str = "he2024_full") -> Figure:
    """Fig. 7: the same test slices at the preset windows and at the learned windows."""
    wm = results[name].model.window_module
    presets = list(wm.initial_windows)
    learned = wm.learned_windows()
    cases = pick_cases(data, n_cases)
    ncol = 2 * len(presets)
    fig, axes = plt.subplots(len(cases), ncol, figsize=(1.9 * ncol, 1.9 * len(cases)),
                             squeeze=False)
    for r, i in enumerate(cases):
        hu = data.dataset[i]["x"][0].numpy()
        for k, (p, l) in enumerate(zip(presets, learned)):
            for j, (w, tag) in enumerate(((p, "preset"), (l, "learned"))):
                ax = axes[r, 2 * k + j]
                ax.imshow(window(hu, w.level, abs(w.width)), cmap="gray", vmin=0, vmax=1)
                ax.set_axis_off()
                if r == 0:
                    ax.set_title(f"{tag}\nL {w.level:.0f} W {w.width:.0f}", fontsize=7)
    fig.suptitle("Fig. 7: preset vs learned windows (full model)", fontsize=9)
    fig.tight_layout()
    return fig


def _draw_box(ax, x0: float, y0: float, x1: float, y1: float, color: str) -> None:
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=color,
                           lw=1.2))


def fig8_cam(data: He2024Data, loc: Localization | None) -> Figure | None:
    """Fig. 8: ground-truth box, CAM without fusion, CAM with fusion, on the same slices
    (None when localisation was not run)."""
    if loc is None:
        return None
    cases = loc.fig_cases
    fig, axes = plt.subplots(len(cases), 3, figsize=(6.3, 2.1 * len(cases)), squeeze=False)
    panels = (("ground truth", None), ("CAM w/o fusion", "he2024_no_fusion"),
              ("CAM with fusion", "he2024_full"))
    for r, i in enumerate(cases):
        item = data.dataset[i]
        cid = item["id"]
        img = window(item["x"][0].numpy(), BRAIN.level, BRAIN.width)
        g = loc.boxes[loc.boxes["image_id"] == cid]
        cls, tag = shown_class(g, item["y"].numpy())
        k = list(RSNA_CLASSES).index(cls)
        for c, (title, model) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            if model is None:
                for _, b in g[g["class"] == cls].iterrows():
                    _draw_box(ax, b.x0, b.y0, b.x1, b.y1, "lime")
            else:
                cam = loc.cams[model][cid][k]
                ax.imshow(cam, cmap="jet", alpha=0.4)
                box = cam_box(cam, loc.cam_threshold)
                if box is not None:
                    _draw_box(ax, *box, "red")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title, fontsize=8)
        axes[r, 0].text(1, 4, tag, color="yellow", fontsize=7)
    fig.suptitle("Fig. 8: CAM localisation (test slices)", fontsize=9)
    fig.tight_layout()
    return fig
