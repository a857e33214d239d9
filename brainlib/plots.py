"""Figures for every paper in one style: confusion matrices, ROC and PR curves, training
curves, image + heatmap + box overlays, slice grids, and paper-vs-measured claim bars.

Every function returns a `matplotlib.figure.Figure` built without pyplot (no global figure
registry, safe under the Agg backend and in notebooks, where a returned figure displays once).
The style lives in `STYLE` and is applied with `style()` only while a figure is drawn and
saved; importing this module changes no rcParams. `save_figure` writes PNG and PDF atomically.
Every string drawn (titles, class names, slice titles, legend and tick labels) is literal text:
it passes through `literal`, so a ``$`` from a DICOM series description or a file name is shown
as written instead of starting mathtext (which would also fail the draw on a lone ``$``).
Metrics behind the curves come from scikit-learn (`roc_curve`, `precision_recall_curve`).
The style, `literal` and `save_figure` live in :mod:`brainlib.plot_style`, the image figures
(`overlay`, `slice_grid`) in :mod:`brainlib.plot_images`; this module re-exports them.
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import metrics as skm

from brainlib.plot_images import overlay, slice_grid
from brainlib.plot_style import (DPI, HIGHLIGHT_COLOR, PALETTE, PRED_COLOR,  # noqa: F401
                                 STYLE, TRUE_COLOR, figure_grid, literal, save_figure, style)


# -- confusion matrix ---------------------------------------------------------------------------

def confusion_matrix(cm: Any = None, classes: Sequence[str] | None = None, *,
                     y_true: Any = None, y_pred: Any = None, title: str | None = None,
                     cmap: str = "Blues") -> Figure:
    """Counts and row-normalised (recall per true class) matrices side by side.

    Give `cm` (rows = true class, columns = predicted) or `y_true`/`y_pred` labels.
    """
    if cm is None:
        if y_true is None or y_pred is None:
            raise ValueError("confusion_matrix needs cm or both y_true and y_pred")
        labels = list(range(len(classes))) if classes is not None else None
        cm = skm.confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=labels)
    cm = np.asarray(cm, dtype=float)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    k = cm.shape[0]
    classes = [literal(c) for c in classes] if classes is not None else [str(i) for i in range(k)]
    if len(classes) != k:
        raise ValueError(f"{len(classes)} class names for a {k}x{k} matrix")
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    with style():
        fig, axes = figure_grid(1, 2, size=(3.0 + 1.2 * k, 0.6 + 0.6 * k + 0.9))
        for ax, data, label, fmt in ((axes[0, 0], cm, "count", "{:.0f}"),
                                     (axes[0, 1], norm, "fraction of true class", "{:.2f}")):
            vmax = data.max() if data.max() > 0 else 1.0
            im = ax.imshow(data, cmap=cmap, vmin=0, vmax=vmax if label == "count" else 1.0)
            for i in range(k):
                for j in range(k):
                    val = data[i, j]
                    dark = val > (0.6 * (vmax if label == "count" else 1.0))
                    ax.text(j, i, fmt.format(val), ha="center", va="center", fontsize=8,
                            color="white" if dark else "black")
            ax.set_xticks(range(k), classes, rotation=45, ha="right")
            ax.set_yticks(range(k), classes)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title("counts" if label == "count" else "row-normalised")
            fig.colorbar(im, ax=ax, shrink=0.8, label=label)
        if title:
            fig.suptitle(literal(title))
    return fig


# -- ROC and PR curves ----------------------------------------------------------------------------

def _one_vs_rest(y_true: Any, y_score: Any, classes: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(N, C) binary targets (NaN = unlabelled) and (N, C) scores from labels or indicators."""
    score = np.asarray(y_score, dtype=float)
    if score.ndim == 1:
        score = score[:, None]
    y = np.asarray(y_true, dtype=float)
    c = score.shape[1]
    if y.ndim == 1 and c > 1:  # single-label multi-class: one-vs-rest indicators
        if np.isnan(y).any():
            raise ValueError("class labels contain NaN")
        y = (y[:, None] == np.arange(c)[None, :]).astype(float)
    elif y.ndim == 1:
        y = y[:, None]
    if y.shape != score.shape:
        raise ValueError(f"y_true shape {y.shape} does not match y_score shape {score.shape}")
    names = list(classes) if classes is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for {c} score columns")
    return y, score, names


def _labelled_columns(y: np.ndarray, score: np.ndarray,
                      names: list[str]) -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
    """Per class: name, its palette colour (same in ROC and PR figures), labelled targets
    and their scores (NaN targets dropped)."""
    for i, name in enumerate(names):
        keep = ~np.isnan(y[:, i])
        yield name, PALETTE[i % len(PALETTE)], y[keep, i], score[keep, i]


def _finish_unit_axes(ax: Any, xlabel: str, ylabel: str, legend_loc: str, title: str) -> None:
    """Common frame of the ROC and PR plots: [0, 1] axes, labels, grid, legend, title."""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True)
    ax.legend(loc=legend_loc)
    ax.set_title(literal(title))


def roc_curves(y_true: Any, y_score: Any, classes: Sequence[str] | None = None, *,
               title: str | None = None) -> Figure:
    """ROC curve per class (one-vs-rest), AUC in the legend; NaN targets are ignored."""
    y, score, names = _one_vs_rest(y_true, y_score, classes)
    with style():
        fig, axes = figure_grid(size=(4.6, 4.2))
        ax = axes[0, 0]
        ax.plot([0, 1], [0, 1], ls=":", color="0.6", lw=1)
        for name, color, yt, ys in _labelled_columns(y, score, [literal(n) for n in names]):
            if len(np.unique(yt)) < 2:
                ax.plot([], [], color=color, label=f"{name} (AUC n/a: one class)")
                continue
            fpr, tpr, _ = skm.roc_curve(yt, ys)
            auc = skm.roc_auc_score(yt, ys)
            ax.plot(fpr, tpr, color=color, label=f"{name} (AUC = {auc:.3f})")
        ax.set_aspect("equal")
        _finish_unit_axes(ax, "false positive rate", "true positive rate", "lower right", title or "ROC")
    return fig


def pr_curves(y_true: Any, y_score: Any, classes: Sequence[str] | None = None, *,
              title: str | None = None) -> Figure:
    """Precision-recall curve per class, average precision (AP) and prevalence in the legend."""
    y, score, names = _one_vs_rest(y_true, y_score, classes)
    with style():
        fig, axes = figure_grid(size=(4.6, 4.2))
        ax = axes[0, 0]
        for name, color, yt, ys in _labelled_columns(y, score, [literal(n) for n in names]):
            if yt.sum() == 0:
                ax.plot([], [], color=color, label=f"{name} (AP n/a: no positives)")
                continue
            prec, rec, _ = skm.precision_recall_curve(yt, ys)
            ap = skm.average_precision_score(yt, ys)
            ax.step(rec, prec, where="post", color=color,
                    label=f"{name} (AP = {ap:.3f}, prev. {yt.mean():.2f})")
            ax.axhline(yt.mean(), color=color, ls=":", lw=0.8)
        _finish_unit_axes(ax, "recall", "precision", "lower left", title or "precision-recall")
    return fig


# -- training curves ------------------------------------------------------------------------------

def training_curves(history: pd.DataFrame, *, metrics: Sequence[str] | None = None,
                    best_epoch: int | None = None, title: str | None = None) -> Figure:
    """Losses (train vs val) and validation metrics per epoch from `engine.fit().history`.

    Loss columns are those containing "loss"; metrics default to the other numeric columns
    except epoch, learning rates and timings. `best_epoch` draws a marker line.
    """
    if not isinstance(history, pd.DataFrame) or history.empty:
        raise ValueError("training_curves needs a non-empty history DataFrame")
    x = history["epoch"] if "epoch" in history.columns else pd.Series(np.arange(1, len(history) + 1))
    numeric = [c for c in history.columns if pd.api.types.is_numeric_dtype(history[c])]
    skip = {"epoch", "seconds"}
    losses = [c for c in numeric if "loss" in c and c not in skip]
    if metrics is None:
        metrics = [c for c in numeric if c not in skip and "loss" not in c and not c.startswith("lr")]
    else:
        missing = [m for m in metrics if m not in history.columns]
        if missing:
            raise ValueError(f"history has no columns {missing}; it has {list(history.columns)}")
    panels = [p for p in (("loss", losses), ("metrics", list(metrics))) if p[1]]
    if not panels:
        raise ValueError(f"history has nothing to plot: columns {list(history.columns)}")
    with style():
        fig, axes = figure_grid(1, len(panels), size=(4.4 * len(panels), 3.4))
        for ax, (label, cols) in zip(axes[0], panels):
            for i, col in enumerate(cols):
                ls = "--" if col.startswith("train") else "-"
                ax.plot(x, history[col], ls=ls, marker="o", ms=3, label=literal(col),
                        color=PALETTE[i % len(PALETTE)])
            if best_epoch is not None:
                ax.axvline(best_epoch, color="0.5", ls=":", lw=1, label=f"best epoch {best_epoch}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(True)
            ax.legend()
        if title:
            fig.suptitle(literal(title))
    return fig


# -- images: overlays and slice grids -------------------------------------------------------------

# -- claims: paper vs measured ------------------------------------------------------------------

_STATUS_MARK = {"as in paper": "=", "changed": "~", "phantom run": "φ", "consistent": "✓",
                "differs": "≠", "inconclusive": "?", "supported": "✓", "contradicted": "≠",
                "quoted, not re-run": "q", "not reproducible offline": "×", "not run": "-"}


def claims_bars(table: pd.DataFrame, *, max_rows: int = 40, title: str | None = None) -> Figure:
    """Paper value vs measured value (with 95 % CI error bars), one row per claim.

    `table` is the output of `brainlib.claims.compare` (or a subset). Proportions are drawn
    on the fraction scale so percent and fraction claims share an axis; comparisons and rows
    without a measured value are left out. The status is marked beside each label.
    """
    need = {"claim_id", "paper_value", "measured_value", "ci_low", "ci_high"}
    missing = need - set(table.columns)
    if missing:
        raise ValueError(f"claims table lacks columns {sorted(missing)}")
    t = table.copy()
    if "kind" in t.columns:
        t = t[t["kind"] != "comparison"]
    t = t[t["measured_value"].notna() & t["paper_value"].notna()]
    if t.empty:
        raise ValueError("no claim has both a paper value and a measured value to plot")
    t = t.head(max_rows)
    scale = np.where(t.get("unit", pd.Series("fraction", index=t.index)) == "percent", 0.01, 1.0)
    paper = t["paper_value"].to_numpy(float) * scale
    ours = t["measured_value"].to_numpy(float) * scale
    lo = t["ci_low"].to_numpy(float) * scale
    hi = t["ci_high"].to_numpy(float) * scale
    err = np.vstack([np.where(np.isnan(lo), 0, ours - lo), np.where(np.isnan(hi), 0, hi - ours)])
    err = np.clip(err, 0, None)
    status = t["status"] if "status" in t.columns else pd.Series("", index=t.index)
    labels = [literal(f"{_STATUS_MARK.get(s, '')} {cid}".strip()) for cid, s in zip(t["claim_id"], status)]
    n = len(t)
    pos = np.arange(n)
    with style():
        fig, axes = figure_grid(size=(7.0, 0.8 + 0.32 * n))
        ax = axes[0, 0]
        h = 0.38
        ax.barh(pos - h / 2, paper, height=h, color=PALETTE[1], label="paper")
        ax.barh(pos + h / 2, ours, height=h, color=PALETTE[0], xerr=err,
                error_kw={"ecolor": "0.2", "capsize": 2, "lw": 1}, label="measured (95% CI)")
        ax.set_yticks(pos, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("value (proportions as fractions)")
        ax.grid(True, axis="x")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.text(1.01, 0.0, "\n".join(f"{m} {s}" for s, m in _STATUS_MARK.items()),
                transform=ax.transAxes, fontsize=7, va="bottom", color="0.3")
        data_source = t["data_source"].iloc[0] if "data_source" in t.columns else None
        ax.set_title(literal(title or ("paper vs measured" + (f" — on {data_source}" if data_source else ""))))
    return fig


__all__ = ["PALETTE", "STYLE", "claims_bars", "confusion_matrix", "literal", "overlay", "pr_curves",
           "roc_curves", "save_figure", "slice_grid", "style", "training_curves"]
