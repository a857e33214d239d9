"""wang_drct2 difficulty sweep: DrCT1 vs DrCT2 on smoke phantoms at two difficulties."""
from __future__ import annotations

import numpy as np
import pytest

from brainlib.papers import wang_drct2


@pytest.mark.slow
def test_difficulty_sweep_rows_and_estimates(tmp_path):
    exp = wang_drct2.setup(profile="smoke", out_dir=str(tmp_path / "run"), seed=0)
    sweep = wang_drct2.difficulty_sweep(exp, difficulties=(0.0, 0.75), dataset="rsna", n_boot=20)
    assert list(sweep[["difficulty", "model"]].itertuples(index=False, name=None)) == [
        (0.0, "DrCT1"), (0.0, "DrCT2"), (0.75, "DrCT1"), (0.75, "DrCT2")]
    assert (sweep["dataset"] == "RSNA").all() and (sweep["scans"] > 0).all()
    for col in ("macro_auc", "fold_mean_auc"):
        assert sweep[col].between(0, 1).all()
    ci = sweep.dropna(subset=["ci_low", "ci_high"])
    assert (ci["ci_low"] <= ci["ci_high"]).all()
    # each difficulty trained its own checkpoints under the run's folder (a rerun resumes)
    names = {p.name.split("-fold")[0] for p in (tmp_path / "run" / "checkpoints").iterdir()}
    assert {"sweep-d0.0-drct1-rsna", "sweep-d0.75-drct2-rsna"} <= names
    again = wang_drct2.difficulty_sweep(exp, difficulties=(0.0,), dataset="rsna", n_boot=20)
    assert np.allclose(again[["macro_auc", "fold_mean_auc"]].to_numpy(),
                       sweep.iloc[:2][["macro_auc", "fold_mean_auc"]].to_numpy())
    fig = wang_drct2.fig_difficulty_sweep(sweep)
    assert len(fig.axes[0].lines) >= 2
