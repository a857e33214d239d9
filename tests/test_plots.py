"""brainlib.plots: each figure builds on tiny data and save_figure writes PNG + PDF."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from brainlib import plots


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_import_changes_no_rcparams() -> None:
    before = dict(matplotlib.rcParams)
    fig = plots.roc_curves([0, 1, 0, 1], [0.1, 0.8, 0.3, 0.6])
    assert isinstance(fig, Figure)
    assert dict(matplotlib.rcParams) == before  # style applied locally only


def test_confusion_matrix_counts_and_normalised(tmp_path: Path) -> None:
    fig = plots.confusion_matrix([[5, 1], [2, 7]], ["neg", "pos"], title="toy")
    assert len([ax for ax in fig.axes if ax.get_title() in ("counts", "row-normalised")]) == 2
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "5" in texts and "0.83" in texts  # 5/6 in the normalised panel
    fig2 = plots.confusion_matrix(y_true=[0, 1, 2, 2], y_pred=[0, 2, 2, 1], classes=["a", "b", "c"])
    assert isinstance(fig2, Figure)
    with pytest.raises(ValueError, match="square"):
        plots.confusion_matrix([[1, 2, 3]], ["a"])
    paths = plots.save_figure(fig, tmp_path / "fig9_confusion")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.exists() and p.stat().st_size > 1000 for p in paths)
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"
    assert not list(tmp_path.glob(".*tmp*"))


def test_roc_and_pr_multilabel_with_nan(rng: np.random.Generator) -> None:
    y = rng.integers(0, 2, size=(40, 3)).astype(float)
    y[:5, 2] = np.nan  # unlabelled entries are ignored
    score = np.clip(y + rng.normal(0, 0.6, size=y.shape), 0, 1)
    score = np.nan_to_num(score, nan=0.5)
    fig = plots.roc_curves(y, score, ["any", "epidural", "subdural"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert all("AUC = " in t for t in labels) and labels[0].startswith("any")
    from sklearn.metrics import roc_auc_score

    assert f"{roc_auc_score(y[:, 0], score[:, 0]):.3f}" in labels[0]
    fig = plots.pr_curves(y, score, ["any", "epidural", "subdural"])
    assert all("AP = " in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_roc_multiclass_labels_and_single_class_column() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    score = np.eye(3)[[0, 1, 2, 1, 1, 2]] * 0.8 + 0.1
    fig = plots.roc_curves(y, score, ["normal", "benign", "malignant"])
    assert len(fig.axes[0].get_legend().get_texts()) == 3
    fig = plots.roc_curves(np.zeros((4, 1)), np.linspace(0, 1, 4)[:, None], ["edh"])
    assert "n/a" in fig.axes[0].get_legend().get_texts()[0].get_text()
    with pytest.raises(ValueError, match="does not match"):
        plots.roc_curves(np.zeros((4, 2)), np.zeros((4, 3)))


def test_training_curves_from_history() -> None:
    hist = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.7, 0.5], "val_loss": [1.1, 0.8, 0.75],
                         "val_auc": [0.6, 0.7, 0.72], "lr": [1e-3, 1e-3, 1e-4], "seconds": [3.0, 3.1, 2.9]})
    fig = plots.training_curves(hist, best_epoch=3)
    assert len(fig.axes) == 2
    plotted = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
    assert {"train_loss", "val_loss", "val_auc"} <= plotted and "lr" not in plotted
    with pytest.raises(ValueError, match="no columns"):
        plots.training_curves(hist, metrics=["val_f1"])
    with pytest.raises(ValueError, match="non-empty"):
        plots.training_curves(pd.DataFrame())


def test_overlay_heatmap_and_boxes(rng: np.random.Generator, tmp_path: Path) -> None:
    img = rng.normal(size=(32, 32))
    cam = rng.random((8, 8))  # a coarse CAM is resized to the image
    fig = plots.overlay(img, cam, boxes_true=[(2, 3, 12, 14)], boxes_pred=[[4, 4, 15, 16], [20, 20, 30, 28]],
                        pred_labels=["IPH 0.91", "SDH 0.40"], title="CAM")
    ax = fig.axes[0]
    rects = [p for p in ax.patches]
    assert len(rects) == 3
    edge = [tuple(np.round(r.get_edgecolor()[:3], 2)) for r in rects]
    assert edge[0] != edge[1]  # ground truth and prediction colours differ
    assert rects[0].get_xy() == (2.0, 3.0) and rects[0].get_width() == 10.0
    rgb = plots.overlay(rng.random((3, 16, 16)))  # three-window image, channels first
    assert isinstance(rgb, Figure)
    with pytest.raises(ValueError, match="not \\(x0, y0, x1, y1\\)"):
        plots.overlay(img, boxes_pred=[(10, 10, 5, 20)])
    assert all(p.exists() for p in plots.save_figure(fig, tmp_path / "fig8_cam.png"))


def test_slice_grid_highlights_key_slices(rng: np.random.Generator) -> None:
    vol = rng.normal(size=(7, 16, 16))
    fig = plots.slice_grid(vol, ncols=4, highlight=[2, 5], heatmaps=rng.random((7, 4, 4)), title="series")
    framed = [ax for ax in fig.axes if ax.patches]
    assert len(framed) == 2
    assert len(fig.axes) == 8  # 2 rows x 4 columns, one empty
    with pytest.raises(ValueError, match="outside"):
        plots.slice_grid(vol, highlight=[9])


def test_claims_bars_from_compare_table(tmp_path: Path) -> None:
    from brainlib.claims import compare

    m = pd.DataFrame([
        {"claim_id": "table3/cq500/drct2/precision", "value": 0.93, "ci_low": 0.91, "ci_high": 0.95},
        {"claim_id": "table3/cq500/drct2/f1", "value": 0.90, "ci_low": 0.88, "ci_high": 0.92},
        {"claim_id": "cmp/table3/cq500/drct2_vs_drct1/f1", "value": 0.01, "ci_low": -0.01, "ci_high": 0.03},
    ])
    table = compare("wang_drct2", m, "phantom")
    fig = plots.claims_bars(table)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 2 and any("precision" in t for t in labels)  # comparison left out
    widths = sorted(round(b.get_width(), 4) for b in ax.patches)
    assert 0.9429 in widths and 0.93 in widths  # percent drawn as fraction
    assert "phantom" in ax.get_title()
    with pytest.raises(ValueError, match="no claim"):
        plots.claims_bars(table[table["measured_value"].isna()])
    assert len(plots.save_figure(fig, tmp_path / "claims")) == 2
