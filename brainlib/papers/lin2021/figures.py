"""Figures of the Dscint experiments: example scans, confusion matrices, attention heatmaps.

The heatmaps are Dscint's own spatial attention (the spatial half of its hybrid module),
upsampled to the scan and overlaid on the anterior view; on phantoms the true lesion centres
are marked, so a student can see whether the attention lands on them.
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from brainlib.data.classes import BONESCAN_CLASSES
from brainlib.metrics import confusion
from brainlib.papers.lin2021.settings import EVALUATION_LABELS
from brainlib.papers.lin2021.train import DSCINT, ModelResult


def _first_of_each_class(dataset: Any, rows: np.ndarray | None = None) -> list[int]:
    rows = np.arange(len(dataset)) if rows is None else rows
    out = []
    for k in range(len(BONESCAN_CLASSES)):
        hit = [int(i) for i in rows if dataset.labels[i, k] == 1]
        if hit:
            out.append(hit[0])
    return out


def examples_figure(dataset: Any) -> plt.Figure:
    """One scan per class: anterior and (mirrored) posterior channel as the network sees them."""
    idx = _first_of_each_class(dataset)
    fig, axes = plt.subplots(1, 2 * len(idx), figsize=(1.4 * 2 * len(idx), 5.2))
    for j, i in enumerate(idx):
        x = dataset[i]["x"].numpy()
        for v, name in enumerate(("anterior", "posterior (mirrored)")):
            ax = axes[2 * j + v]
            ax.imshow(x[v], cmap="gray_r", vmin=0, vmax=2)
            ax.set_title(f"{BONESCAN_CLASSES[dataset.targets[i]]}\n{name}", fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    return fig


def confusion_figure(results: dict[tuple[str, str], ModelResult]) -> plt.Figure:
    """Dscint's row-normalised confusion matrix in each evaluation."""
    runs = [r for (e, n), r in results.items() if n == DSCINT]
    fig, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs), 4.2), squeeze=False)
    for ax, r in zip(axes[0], runs):
        cm = confusion(r.y_true, r.y_score, task="multiclass", class_names=list(BONESCAN_CLASSES),
                       normalize="true").to_numpy()
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
        for (a, b), v in np.ndenumerate(cm):
            ax.text(b, a, f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if v > 0.6 else "black")
        short = [c.replace("_", " ")[:10] for c in BONESCAN_CLASSES]
        ax.set_xticks(range(4), short, rotation=30, fontsize=7)
        ax.set_yticks(range(4), short, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"Dscint, {EVALUATION_LABELS[r.evaluation]}", fontsize=8)
    fig.tight_layout()
    return fig


def attention_figure(dataset: Any, model: torch.nn.Module, truth: list[dict] | None,
                     rows: np.ndarray | None = None) -> plt.Figure:
    """Spatial attention of Dscint over one scan per class (true lesions marked on phantoms)."""
    idx = _first_of_each_class(dataset, rows)
    x = torch.stack([dataset[i]["x"] for i in idx])
    with torch.no_grad():
        att = F.interpolate(model.eval().attention_map(x), size=x.shape[-2:], mode="bilinear",
                            align_corners=False)[:, 0].numpy()
        prob = model.predict_proba(x).numpy()
    by_path = {r["path"].rsplit(".", 1)[0]: r for r in (truth or [])}
    fig, axes = plt.subplots(1, len(idx), figsize=(2.0 * len(idx), 5.4), squeeze=False)
    for ax, i, a, p in zip(axes[0], idx, att, prob):
        ax.imshow(x[idx.index(i), 0], cmap="gray_r", vmin=0, vmax=2)
        ax.imshow(a, cmap="jet", alpha=0.35)
        _mark_lesions(ax, by_path.get(dataset.ids[i]), dataset, x.shape[-2:])
        ax.set_title(f"true {BONESCAN_CLASSES[dataset.targets[i]][:10]}\n"
                     f"pred {BONESCAN_CLASSES[int(p.argmax())][:10]} ({p.max():.2f})", fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    return fig


def _mark_lesions(ax: Any, row: dict | None, dataset: Any, size: tuple[int, int]) -> None:
    if not row or not row["lesions"]:
        return
    import json

    shape = json.loads((dataset.root / "_phantom_truth" / "params.json").read_text())["shape"]
    ys = [r * size[0] / shape[0] for r, _ in row["lesions"]]
    xs = [c * size[1] / shape[1] for _, c in row["lesions"]]
    ax.scatter(xs, ys, s=30, facecolors="none", edgecolors="lime", linewidths=0.8)


def history_figure(results: dict[tuple[str, str], ModelResult]) -> plt.Figure:
    """Validation accuracy per epoch of every trained model (one line per fold with
    cross-validation, the model's colour kept)."""
    evaluations = sorted({e for e, _ in results})
    fig, axes = plt.subplots(1, len(evaluations), figsize=(5 * len(evaluations), 3.4), squeeze=False)
    for ax, ev in zip(axes[0], evaluations):
        for k, ((e, _), r) in enumerate((key, r) for key, r in results.items() if key[0] == ev):
            if "accuracy" not in r.history:
                continue
            h = r.history if "fold" in r.history else r.history.assign(fold=0)
            for j, (fold, hf) in enumerate(h.groupby("fold")):
                ax.plot(hf["epoch"], hf["accuracy"], marker=".", color=f"C{k}", alpha=0.8,
                        label=r.label if j == 0 else None)
        ax.set_title(EVALUATION_LABELS[ev], fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
