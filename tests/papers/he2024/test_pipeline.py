"""he2024 pipeline pieces without training: tables, claims recording, helpers."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from brainlib.data.classes import RSNA_CLASSES
from brainlib.papers import he2024
from brainlib.papers.he2024 import claims as he_claims
from brainlib.papers.he2024.train import _bce
from brainlib.report import validate_predictions


def _result(name: str, seed: int, n: int = 24) -> he2024.VariantResult:
    rng = np.random.default_rng(0)
    y = (rng.random((n, len(RSNA_CLASSES))) < 0.4).astype(float)
    y[:, 0] = y[:, 1:].max(axis=1)
    score = np.clip(0.6 * y + np.random.default_rng(seed).random(y.shape) * 0.7, 0, 1)
    return he2024.VariantResult(name, torch.nn.Identity(), pd.DataFrame({"epoch": [1]}), 1,
                                [f"c{i}" for i in range(n)], y, score, 0.0,
                                np.repeat(np.arange(n // 4), 4))


@pytest.fixture()
def exp(tmp_path):
    session = he2024.setup(profile="smoke", out_dir=tmp_path / "he2024")
    # few resamples: sklearn's roc_auc_score costs ~1-20 ms a call on a shared 2-core machine
    session.settings = dataclasses.replace(session.settings, n_boot=12)
    return session


@pytest.fixture()
def results():
    return {name: _result(name, k) for k, name in enumerate(he2024.TRAINED_VARIANTS)}


def test_table2_is_exact_with_the_sign_of_b():
    t = he2024.table2().set_index("parameter")
    assert list(t.columns) == ["Brain window", "Subdural window", "Soft tissue window"]
    # The printed values are eq. 3.1 held in float32 (the module's parameter type), rounded to
    # the printed decimals; the brain b is printed without its minus sign.
    W = t.loc["W (module)"].astype(float).to_numpy()
    b = t.loc["b (module)"].astype(float).to_numpy()
    assert np.round(W, 8).tolist() == [0.13843335, 0.05537334, 0.02914386]
    assert np.round(b, 7).tolist() == [-5.5373344, -4.4298673, -1.1657546]
    exact = t.loc["W"].astype(float).to_numpy()
    np.testing.assert_allclose(exact, W, rtol=1e-7)
    assert exact[0] == 2 / 80 * np.log(254.0)


def test_bce_ignores_unknown_labels():
    out = torch.tensor([[2.0, -1.0]])
    y = torch.tensor([[1.0, float("nan")]])
    want = torch.nn.functional.binary_cross_entropy_with_logits(out[:, :1], y[:, :1])
    torch.testing.assert_close(_bce(out, {"y": y}), want)


def test_predictions_frame_has_the_report_columns():
    r = he2024.VariantResult("he2024_full", torch.nn.Identity(), pd.DataFrame(), 1,
                             ["a", "b"], np.eye(2, 6), np.full((2, 6), 0.3), 0.0)
    df = he2024.predictions_frame({"he2024_full": r})
    validate_predictions(df)
    assert {"case_id", "model", "label_any", "score_subdural"} <= set(df.columns)
    assert df["label_any"].tolist() == [1.0, 0.0]


def test_scale_boxes_keeps_every_lesion():
    native = pd.DataFrame([("a", "subdural", 10, 20, 11, 21, 128, 128),
                           ("b", "epidural", 0, 0, 128, 64, 128, 128)],
                          columns=["image_id", "class", "x0", "y0", "x1", "y1", "rows", "columns"])
    out = he2024.scale_boxes(native, 64)
    assert out.iloc[0][["x0", "y0", "x1", "y1"]].tolist() == [5, 10, 6, 11]  # 1 px stays 1 px
    assert out.iloc[1][["x0", "y0", "x1", "y1"]].tolist() == [0, 0, 64, 32]


def test_setup_opens_a_phantom_run_with_derived_deviations(exp):
    assert exp.synthetic and exp.profile == "smoke"
    # settings sharing the smoke reason are one text: "<reason>: epochs: 1 (paper: 20, ...); ..."
    assert any("epochs: 1 (paper: " in d for d in exp.deviations)
    assert any("random initialisation" in d for d in exp.deviations)
    assert any("random initialisation" in n for n in exp.notes)
    assert "ap_localization" in exp.captions


@pytest.mark.slow  # hundreds of roc_auc_score calls: seconds to tens of seconds here
def test_tables_and_claims_agree(exp, results):
    from sklearn.metrics import roc_auc_score

    t3 = he2024.table3(exp, results).set_index("class")
    he_claims.record_table3_claims(exp, results)
    he_claims.record_table4_claims(exp, results)
    full = results["he2024_full"]
    auc = roc_auc_score(full.y_true[:, 0], full.y_score[:, 0])
    assert exp.claims.value("table3/full/any/auc") == pytest.approx(auc, abs=1e-12)
    assert t3.at["Any", "Our method (here)"].startswith(f"{auc:.3f} [")
    assert exp.claims.value("abstract/bleeding/auc") == exp.claims.value("table3/full/average/auc")
    assert exp.claims.value("table4/three_windows/trained/auc") == \
        exp.claims.value("table3/full/average/auc")
    t4 = he2024.table4(exp, results)
    assert list(t4["model"]) == [r[0] for r in he2024.TABLE4_ROWS]


@pytest.mark.slow
def test_paired_tests_and_setting_claims(exp, results):
    paired = he2024.paired_tests(exp, results)
    assert list(paired["claim_id"]) == [c[0] for c in he2024.COMPARISONS]
    assert paired["p_value"].between(0, 1).all()
    he_claims.record_comparison_claims(exp, paired)
    he_claims.record_setting_claims(exp)
    he_claims.record_table2_claims(exp)
    frame = exp.claims.frame().set_index("claim_id")
    assert frame.at["text/training/epochs", "value"] == 1
    assert "smoke" in frame.at["text/training/epochs", "note"]
    assert frame.at["text/cam/threshold", "value"] == 0.2
    assert frame.at["text/windows/subdural/width", "value"] == 200
    assert frame.at["table2/brain/b", "value"] == pytest.approx(-5.5373344, abs=1e-6)
    with pytest.raises(ValueError, match="twice"):
        he_claims.record_setting_claims(exp)


def test_rank_auc_equals_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    from brainlib.papers.he2024.tables import rank_auc

    rng = np.random.default_rng(3)
    for n, decimals in ((5, 1), (40, 1), (300, 2), (700, 6)):
        y = (rng.random(n) < 0.3).astype(float)
        y[:2] = (0.0, 1.0)
        score = np.round(rng.random(n), decimals)  # coarse scores: many ties
        assert rank_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert rank_auc(np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.1, 0.9, 0.9, 0.1])) == 0.5
