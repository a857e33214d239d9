"""Shared multi-label helpers against scikit-learn and hand-worked cases."""
from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

from brainlib.metrics import defined_classes, macro_auc, macro_prf, masked_bce, percentile_ci


def test_macro_prf_matches_sklearn_on_classes_with_positives():
    rng = np.random.default_rng(0)
    y = (rng.random((60, 4)) < 0.3).astype(float)
    y[:, 3] = 0  # no positive: left out
    s = rng.random((60, 4))
    got = macro_prf(y, s)
    p, r, f, _ = precision_recall_fscore_support(y[:, :3], s[:, :3] >= 0.5, average="macro",
                                                 zero_division=0)
    assert got["n_classes"] == 3
    assert np.allclose([got["precision"], got["recall"], got["f1"]], [p, r, f])


def test_macro_auc_skips_undefined_columns():
    y = np.array([[1, 0], [0, 0], [1, 0], [0, 0]], dtype=float)
    s = np.array([[0.9, 0.1], [0.2, 0.3], [0.4, 0.2], [0.5, 0.1]])
    assert defined_classes(y).tolist() == [True, False]
    assert math.isclose(macro_auc(y, s), roc_auc_score(y[:, 0], s[:, 0]))
    assert math.isnan(macro_auc(np.zeros((3, 2)), np.ones((3, 2))))


def test_percentile_ci_and_masked_bce():
    lo, hi = percentile_ci(np.arange(101, dtype=float))
    assert np.allclose((lo, hi), (2.5, 97.5))
    assert all(math.isnan(v) for v in percentile_ci(np.array([1.0, np.nan])))
    logits = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([[1.0, float("nan")]])
    assert torch.isclose(masked_bce(logits, y), torch.log(torch.tensor(2.0)))
