"""Figures of Wang et al. (DrCT1/DrCT2): Fig. 2 (per-scan report), 5, 6, 7, 8.

Each function returns a matplotlib figure and saves nothing; the notebook saves it through
the experiment (`exp.figure`).
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from brainlib.layers.sequence_attention import zoom_slices
from brainlib.data.classes import RSNA_SHORT
from brainlib.papers.wang_drct2.crossval import CVResult
from brainlib.papers.wang_drct2.scans import report_model, sequence_images
from brainlib.papers.wang_drct2.settings import LAYOUT_LABEL, WangDrct2Settings
from brainlib.papers.wang_drct2.tables import (fig6_table, label_name, per_class_accuracy,
                                               top5_positions)


def report_outputs(cv: CVResult, scan: int, s: WangDrct2Settings, seed: int = 0,
                   weights: str | None = None) -> dict[str, Any]:
    """What Fig. 2 shows for one scan: images (M, 3, S, S), slice attention (M,), predicted
    probabilities (C,), the top-5 slices and their feature-attention heat maps (5, S, S)."""
    model, enc = report_model(cv, scan, s, seed, weights)
    imgs = sequence_images(cv, scan)
    with torch.no_grad():
        z = enc(imgs)
        feats = torch.stack([z, enc(zoom_slices(imgs, s.zoom_size))], 1)[None]
        out = model(feats)
        w_slice = out["slice_attention"][0].numpy()
        w_feat = out["feature_attention"][0]
        prob = torch.sigmoid(out["logits"][0]).numpy()
        top = np.argsort(-w_slice, kind="stable")[:min(5, len(w_slice))]
        maps = enc.feature_maps(imgs[top])  # (5, D, h, w)
        heat = torch.relu((maps * w_feat[top][:, :, None, None]).sum(1, keepdim=True))
        heat = F.interpolate(heat, size=imgs.shape[-2:], mode="bilinear")[:, 0]
        heat = heat / heat.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    sl = cv.data.slice_labels[scan]
    key = (np.nan_to_num(sl[cv.positions[scan], 0]) > 0) if sl is not None else None
    return {"imgs": imgs, "w_slice": w_slice, "prob": prob, "top": top, "heat": heat,
            "key": key}


def fig2_report(cv: CVResult, scan: int, s: WangDrct2Settings, seed: int = 0,
                weights: str | None = None) -> Any:
    """Fig. 2: the per-scan diagnostic report of DrCT2: every slice, the slice-attention
    histogram, the top-5 slices with regions highlighted by slice and feature attention,
    and the predicted probabilities beside the labels."""
    r = report_outputs(cv, scan, s, seed, weights)
    imgs, w_slice, prob, top, heat, key = (r[k] for k in ("imgs", "w_slice", "prob", "top",
                                                          "heat", "key"))
    m = len(w_slice)
    cols = max(min(m, 14), 12)  # >= 12 leaves room for the probability panel
    rows_all = int(np.ceil(m / cols))
    fig = plt.figure(figsize=(14, 2.2 + 1.1 * rows_all + 5.6))
    gs = fig.add_gridspec(rows_all + 3, cols, height_ratios=[1] * rows_all + [1.3, 1.6, 1.6],
                          hspace=0.45)
    for i in range(m):
        ax = fig.add_subplot(gs[i // cols, i % cols])
        ax.imshow(imgs[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(str(i + 1), fontsize=7, color="red" if i in top else "black")
        if i in top:
            for sp in ax.spines.values():
                sp.set_edgecolor("red"), sp.set_linewidth(2)
    ax = fig.add_subplot(gs[rows_all, :])
    colors = ["tab:red" if i in top else "tab:blue" for i in range(m)]
    ax.bar(np.arange(1, m + 1), w_slice, color=colors)
    if key is not None and key.any():
        ax.plot(np.flatnonzero(key) + 1, np.full(int(key.sum()), w_slice.max() * 1.05), "kv",
                ms=4, label="slice shows a lesion (truth)")
        ax.legend(fontsize=7, loc="upper left")
    ax.set_xlabel("slice"), ax.set_ylabel("slice attention")
    ax.set_xlim(0.4, m + 0.6), ax.set_ylim(0, 1.15 * float(w_slice.max()))
    for j, i in enumerate(top):
        a1 = fig.add_subplot(gs[rows_all + 1, j])
        a1.imshow(imgs[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        a1.set_title(f"#{i + 1}  w={w_slice[i]:.3f}", fontsize=7)
        a1.axis("off")
        a2 = fig.add_subplot(gs[rows_all + 2, j])
        a2.imshow(imgs[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        a2.imshow(heat[j].numpy(), cmap="jet", alpha=0.4, vmin=0, vmax=1)
        a2.axis("off")
        if j == 0:
            a1.text(-0.1, 0.5, "top-5 by\nslice attention", transform=a1.transAxes, ha="right",
                    va="center", fontsize=7)
            a2.text(-0.1, 0.5, "feature\nattention map", transform=a2.transAxes, ha="right",
                    va="center", fontsize=7)
    ax = fig.add_subplot(gs[rows_all + 1:, min(max(len(top) + 2, cols // 2 + 1), cols - 3):])
    names = [label_name(cv.name, c) for c in cv.data.classes]
    ypos = np.arange(len(names))
    ax.barh(ypos, prob, color="tab:orange")
    for yy, t in zip(ypos, cv.data.labels[scan]):
        if t == 1:
            ax.text(1.02, yy, "label +", va="center", fontsize=7, color="darkred")
    ax.axvline(0.5, color="gray", ls="--", lw=0.8)
    ax.set_yticks(ypos, names, fontsize=7), ax.set_xlim(0, 1.2), ax.invert_yaxis()
    ax.set_xlabel("predicted probability (DrCT2)")
    fig.suptitle(f"DrCT2 report, scan {cv.data.case_ids[scan]} ({LAYOUT_LABEL[cv.name]} layout, "
                 f"fold {int(cv.fold_of[scan]) + 1} model)", fontsize=10)
    return fig


def fig5_curves(cv: CVResult, fold: int = 0) -> Any:
    """Fig. 5: held-out precision and recall of DrCT2 per epoch (no model selection on them)."""
    h = cv.histories[("drct2", fold)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(h["epoch"], 100 * h["precision"], label="precision (macro)")
    ax.plot(h["epoch"], 100 * h["recall"], label="recall (macro)")
    ax.set_xlabel("epoch"), ax.set_ylabel("%"), ax.set_ylim(0, 100), ax.legend()
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"DrCT2 on {LAYOUT_LABEL[cv.name]} layout, fold {fold + 1} held out", fontsize=9)
    return fig


def fig6_mkey(cv: CVResult) -> Any:
    """Fig. 6: macro F1 by m_key, attention-chosen vs random APS slices."""
    t = fig6_table(cv)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(t["m_key"], t["attention_f1"], "o-", label="selected by slice attention")
    ax.plot(t["m_key"], t["random_f1"], "s--", label="selected at random")
    ax.set_xlabel("m_key (slices fed to the APS network)"), ax.set_ylabel("macro F1")
    ax.set_xticks(t["m_key"]), ax.legend()
    return fig


def fig7_positions(cv: CVResult) -> Any:
    """Fig. 7: histogram of the top-5 attended positions over diseased scans."""
    counts, n = top5_positions(cv)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(np.arange(1, len(counts) + 1), counts)
    ax.set_xlabel("slice position in the sampled sequence"), ax.set_ylabel("count in top 5")
    ax.set_title(f"{n} diseased scans ({LAYOUT_LABEL[cv.name]} layout)", fontsize=9)
    return fig


def fig8_accuracy(cv: CVResult) -> Any:
    """Fig. 8: per-disease accuracy of the slice-level baseline, DrCT1 and DrCT2."""
    spec = [(v, lab) for v, lab in (("slice_baseline", "slice-level baseline"),
                                    ("drct1", "DrCT1"), ("drct2", "DrCT2")) if v in cv.scores]
    names = [RSNA_SHORT.get(c, c) for c in cv.data.classes]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    wdt = 0.8 / len(spec)
    for k, (v, lab) in enumerate(spec):
        ax.bar(x + (k - (len(spec) - 1) / 2) * wdt, 100 * per_class_accuracy(cv, v), wdt,
               label=lab)
    ax.set_xticks(x, names), ax.set_ylabel("accuracy (%)"), ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    return fig
