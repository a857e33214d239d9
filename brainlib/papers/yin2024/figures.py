"""Figures of the yin2024 notebook: Fig. 8 (training curves), Fig. 9 (confusion matrices,
counts and row-normalised, one per dataset) and example detections with masks."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from brainlib import plots
from brainlib.papers.yin2024.tables import confusion


def fig8_training(history: pd.DataFrame) -> Figure:
    """Training loss and validation accuracy per epoch of every network."""
    import matplotlib.pyplot as plt

    with plots.style():
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for (dataset, net), h in history.groupby(["dataset", "network"], sort=False):
            axes[0].plot(h["epoch"], h["train_loss"], marker=".", label=f"{dataset}: {net}")
            if "accuracy" in h:
                axes[1].plot(h["epoch"], h["accuracy"], marker=".")
        axes[0].set(xlabel="epoch", ylabel="training loss", title="training loss")
        axes[1].set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy", ylim=(0, 1))
        axes[0].legend(fontsize=6, ncol=2)
        fig.tight_layout()
    return fig


def fig9_confusion(frames: dict[str, pd.DataFrame], classes: dict[str, tuple[str, ...]]) -> Figure:
    """Per dataset: counts and row-normalised confusion matrices (rows = true class)."""
    import matplotlib.pyplot as plt

    with plots.style():
        fig, axes = plt.subplots(len(frames), 2, figsize=(8.4, 3.6 * len(frames)), squeeze=False)
        for r, (name, frame) in enumerate(frames.items()):
            cm = confusion(frame, classes[name]).to_numpy()
            norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
            for ax, mat, fmt, title in ((axes[r, 0], cm, "d", "counts"), (axes[r, 1], norm, ".2f", "row-normalised")):
                ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
                for i in range(mat.shape[0]):
                    for j in range(mat.shape[1]):
                        ax.text(j, i, format(mat[i, j], fmt), ha="center", va="center", fontsize=8)
                ax.set_xticks(range(len(classes[name])), classes[name], rotation=30, fontsize=7)
                ax.set_yticks(range(len(classes[name])), classes[name], fontsize=7)
                ax.set(xlabel="predicted", ylabel="true", title=f"{name}: {title}")
        fig.tight_layout()
    return fig


def example_detections(dets: list[dict], classes: tuple[str, ...]) -> Figure:
    """Test images with ground-truth outlines (green) and detections above 0.3 (box, mask, class)."""
    import matplotlib.pyplot as plt

    with plots.style():
        fig, axes = plt.subplots(1, len(dets), figsize=(2.6 * len(dets), 2.9), squeeze=False)
        for ax, d in zip(axes[0], dets):
            ax.imshow(d["image"], cmap="gray", vmin=0, vmax=1)
            for m in d["truth"]["masks"].numpy():
                ax.contour(m, levels=[0.5], colors="lime", linewidths=0.8)
            for box, lab, score, mask in zip(d["boxes"], d["labels"], d["scores"], d.get("masks", [])):
                if score < 0.3:
                    continue
                x1, y1, x2, y2 = box.tolist()
                ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="red", lw=0.8))
                ax.contour(mask[0].numpy(), levels=[0.5], colors="red", linewidths=0.6)
                ax.text(x1, y1, f"{classes[int(lab)]} {score:.2f}", color="yellow", fontsize=6, va="bottom")
            ax.set_title(d["id"], fontsize=7)
            ax.axis("off")
        fig.tight_layout()
    return fig
