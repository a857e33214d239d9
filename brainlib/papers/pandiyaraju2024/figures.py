"""Figures of the pandiyaraju2024 notebook: example segmentations with the scSE attention
map, the confusion matrix and per-class ROC curves of DCNNIMAF, and the leakage pairs."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from brainlib import plots
from brainlib.papers.pandiyaraju2024.data import BusiData
from brainlib.papers.pandiyaraju2024.train import SegOutput


def pick_examples(seg: SegOutput, n: int) -> list[int]:
    """Test cases to show: lesion images of each class in turn, then a normal one."""
    order: list[int] = []
    by_class = [list(np.flatnonzero(seg.labels == k)) for k in range(3)]
    while len(order) < n and any(by_class):
        for group in by_class:
            if group and len(order) < n:
                order.append(int(group.pop(0)))
    return order


def example_segmentations(data: BusiData, seg: SegOutput, n: int, threshold: float) -> Figure:
    """Rows: cases; columns: image, ground truth, prediction, spatial attention (last block)."""
    import matplotlib.pyplot as plt

    idx = pick_examples(seg, n)
    ds = data.dataset
    pos = {c: i for i, c in enumerate(ds.ids)}
    with plots.style():
        fig, axes = plt.subplots(len(idx), 4, figsize=(8.4, 2.2 * len(idx)), squeeze=False)
        for r, i in enumerate(idx):
            image = ds.arrays(pos[seg.ids[i]])[0]
            pred = seg.prob[i] >= threshold
            panels = [(image, "gray", f"{seg.ids[i]}"), (seg.truth[i], "gray", "ground truth"),
                      (pred, "gray", "prediction"), (seg.attention[i], "magma", "scSE spatial attention")]
            for ax, (arr, cmap, title) in zip(axes[r], panels):
                ax.imshow(arr, cmap=cmap, vmin=0, vmax=1 if arr.dtype != np.uint8 else 255)
                ax.set_title(title, fontsize=8)
                ax.axis("off")
        fig.tight_layout()
    return fig


def confusion(pred: pd.DataFrame, classes: tuple[str, ...], title: str) -> Figure:
    y = pred[[f"label_{c}" for c in classes]].to_numpy().argmax(1)
    p = pred[[f"score_{c}" for c in classes]].to_numpy().argmax(1)
    return plots.confusion_matrix(classes=list(classes), y_true=y, y_pred=p, title=title)


def roc(pred: pd.DataFrame, classes: tuple[str, ...], title: str) -> Figure:
    y = pred[[f"label_{c}" for c in classes]].to_numpy()
    s = pred[[f"score_{c}" for c in classes]].to_numpy()
    return plots.roc_curves(y, s, list(classes), title=title)


def leakage_pairs(data: BusiData, pairs: pd.DataFrame, n: int = 4) -> Figure | None:
    """The first ``n`` near-duplicate pairs side by side (None when there are none)."""
    import matplotlib.pyplot as plt

    if pairs.empty:
        return None
    ds = data.dataset
    pos = {c: i for i, c in enumerate(ds.ids)}
    rows = pairs.head(n)
    with plots.style():
        fig, axes = plt.subplots(len(rows), 2, figsize=(4.6, 2.2 * len(rows)), squeeze=False)
        for r, row in enumerate(rows.itertuples()):
            for c, (case, split) in enumerate(((row.case_a, row.split_a), (row.case_b, row.split_b))):
                axes[r, c].imshow(ds.arrays(pos[case])[0], cmap="gray", vmin=0, vmax=255)
                axes[r, c].set_title(f"{case} [{split}]", fontsize=8)
                axes[r, c].axis("off")
            axes[r, 0].text(0, -0.12, f"Hamming {row.distance}, r = {row.correlation:.3f}",
                            transform=axes[r, 0].transAxes, fontsize=7, va="top")
        fig.tight_layout()
    return fig
