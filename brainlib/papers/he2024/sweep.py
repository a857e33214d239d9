"""Difficulty sweep of He et al. 2024 on phantoms: test AUC ('any' and the six-class mean) of
the full model and its Table 3 ablations against the phantom difficulty knob.

No paper reports this. It shows where the claimed advantages of the window module and of
multiscale fusion appear, vanish or reverse as lesions get less conspicuous; whatever the
curves show is reported as it comes out (the phantoms are never tuned toward the paper).

Each point is one training per model on the run's phantom set (same study count, size, seed,
label rule and split) generated at that difficulty, through `train_variant` with its own
checkpoints (resumable like every other training). It costs len(difficulties) x len(models)
trainings, so the notebook runs it only with ``difficulty_sweep=True``; for the quick
profile run::

    papermill notebooks/he2024_ich_window_multiscale.ipynb outputs/he2024_sweep/run.ipynb \\
        -p difficulty_sweep True -p out_dir outputs/he2024_sweep
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from brainlib.experiment import Experiment
from brainlib.papers.he2024.data import phantom_data
from brainlib.papers.he2024.tables import auc_with_ci
from brainlib.papers.he2024.train import TABLE3_MODELS, make_loaders, train_variant

SWEEP_DIFFICULTIES: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
SWEEP_MODELS: tuple[str, ...] = tuple(m for m, _ in TABLE3_MODELS)


def difficulty_sweep(exp: Experiment, difficulties: Sequence[float] = SWEEP_DIFFICULTIES,
                     models: Sequence[str] = SWEEP_MODELS) -> pd.DataFrame | None:
    """Test AUC [95 % bootstrap CI over studies] of `models` at each phantom difficulty.

    Returns columns ``difficulty, model, any_auc, any_low, any_high, mean_auc, mean_low,
    mean_high, test_positive_studies, seconds``; None (with a note) on real data.
    """
    if exp.data_root:
        exp.note("Difficulty sweep skipped: it needs the embedded phantoms (no data_root).")
        return None
    rows = []
    with exp.timed("difficulty sweep"):
        for d in difficulties:
            data = phantom_data(exp, float(d))
            loaders = make_loaders(exp, data)
            lab = data.dataset.labels[data.test]
            groups = np.asarray(data.subset("test").groups)
            n_pos = len(set(groups[np.nan_to_num(lab[:, 0]) == 1]))
            for name in models:
                ckpt = exp.checkpoint_dir(f"sweep-{name}", difficulty=float(d))
                r = train_variant(exp, data, name, loaders, checkpoint_dir=ckpt)
                a, mean = auc_with_ci(exp, r, "any"), auc_with_ci(exp, r, None)
                rows.append({"difficulty": float(d), "model": name, "any_auc": a[0],
                             "any_low": a[1], "any_high": a[2], "mean_auc": mean[0],
                             "mean_low": mean[1], "mean_high": mean[2],
                             "test_positive_studies": n_pos,
                             "seconds": round(r.train_seconds, 1)})
    return pd.DataFrame(rows)


def fig_difficulty_sweep(table: pd.DataFrame | None) -> Figure | None:
    """Any and mean AUC (95 % CI bars) of each model against the phantom difficulty."""
    if table is None or table.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    offsets = np.linspace(-0.012, 0.012, table["model"].nunique())
    for off, (name, t) in zip(offsets, table.groupby("model", sort=False)):
        for ax, key in zip(axes, ("any", "mean")):
            y = t[f"{key}_auc"].to_numpy()
            err = np.vstack([y - t[f"{key}_low"].to_numpy(), t[f"{key}_high"].to_numpy() - y])
            ax.errorbar(t["difficulty"] + off, y, yerr=np.nan_to_num(err), marker="o",
                        capsize=3, label=name)
    for ax, title in zip(axes, ("'any' AUC", "mean AUC (six labels)")):
        ax.set_xlabel("phantom difficulty (0 = plain lesions)")
        ax.set_title(title)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test AUC")
    axes[1].legend(fontsize=8, loc="lower left")
    fig.suptitle("Difficulty sweep: full model and Table 3 ablations on phantoms")
    fig.tight_layout()
    return fig
