"""wang_drct2 pipeline on toy features: cross-validation, tables, claims, provenance."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from brainlib.claims import EVIDENCE_STATUSES, compare
from brainlib.metrics import classification_metrics, macro_auc, macro_prf
from brainlib.models.slice_encoder import SliceEncoder
from brainlib.papers import wang_drct2 as wang
from brainlib.papers.wang_drct2.data import RANDOM_ENCODER_DEVIATION, feature_key, open_dataset

torch.set_num_threads(1)


def _toy_scandata(n_scans=16, m=6, d=8, seed=0):
    """Scans whose lesion slices carry a bright feature; 3 labels, one per lesion kind."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(m, 2 * m + 3, n_scans)
    feats, labels, slice_labels = [], [], []
    for z in lengths:
        f = rng.random((z, 2, d)).astype(np.float32)
        sl = np.zeros((z, 3), np.float32)
        for c in range(1, 3):
            if rng.random() < 0.5:
                start = rng.integers(0, z - 3)
                sl[start:start + 4, c] = 1
                f[start:start + 4, :, c] += 3.0
        sl[:, 0] = sl[:, 1:].max(1)
        feats.append(f)
        labels.append(sl.max(0))
        slice_labels.append(sl)
    return wang.ScanData(
        name="rsna", classes=("any", "a", "b"), dataset=None, features=np.concatenate(feats),
        offsets=np.concatenate([[0], np.cumsum(lengths)]), labels=np.array(labels),
        case_ids=[f"scan{i}" for i in range(n_scans)],
        groups=np.array([f"patient{i // 2}" for i in range(n_scans)]),
        slice_labels=slice_labels, seq_len=m, encoder_note="toy", cache_path=None,
        cached=True, seconds=0.0)


@pytest.fixture(scope="module")
def toy_cv():
    data = _toy_scandata()
    s = wang.settings_for("smoke", epochs=2, hidden=8, fc=(8, 8), m_key=3, n_boot=20)
    variants = wang.variants_for("rsna", s)
    return wang.cross_validate(data, s, seed=0, device="cpu", variants=variants)


def test_cross_validate_toy_data_end_to_end(toy_cv):
    cv, data = toy_cv, toy_cv.data
    assert [v.name for v in cv.variants] == ["drct1", "drct2", "slice_max", "drct2_bce",
                                             "drct2_norm_ablation", "slice_baseline"]
    assert (cv.fold_of >= 0).all()                      # every scan tested exactly once
    per_patient = pd.Series(cv.fold_of).groupby(data.groups).nunique()
    assert (per_patient == 1).all()                     # patients never split across folds
    assert np.isfinite(cv.scores["drct2"]).all() and np.isfinite(cv.attention["drct2"]).all()
    assert np.allclose(cv.attention["drct1"].sum(1), 1, atol=1e-5)
    h = cv.histories[("drct2", 0)]                      # per-module learning rates reached Adam
    assert {"lr_group0:DrCT1", "lr_group1:APSNetwork", "lr_group2:Sequential"} <= set(h.columns)
    assert h["lr_group1:APSNetwork"].iloc[0] == pytest.approx(3e-4)
    assert {"precision", "recall"} <= set(h.columns)    # Fig. 5 curve
    cv2 = wang.cross_validate(data, cv.settings, seed=0, device="cpu", variants=cv.variants[:2])
    assert np.array_equal(cv2.scores["drct2"], cv.scores["drct2"])  # same seed, same numbers


def test_positive_control_reads_the_mean_of_per_fold_aucs(toy_cv):
    """The AUC checks: mean over folds of each fold model's AUC on its own held-out scans
    (scikit-learn's cross_val_score estimate), with the pooled out-of-fold AUC beside it."""
    from brainlib.papers.wang_drct2.controls import fold_mean_auc, positive_controls

    cv, data = toy_cv, toy_cv.data
    mean, folds, pooled = fold_mean_auc(cv, "drct2")
    expected = [macro_auc(data.labels[cv.fold_of == f], cv.scores["drct2"][cv.fold_of == f])
                for f in np.unique(cv.fold_of)]
    assert folds == pytest.approx(expected) and len(folds) == cv.settings.folds_rsna
    assert mean == pytest.approx(np.nanmean(expected))
    assert pooled == pytest.approx(macro_auc(data.labels, cv.scores["drct2"]))
    # one fold model's scores shifted by a constant: its own ranking (so every per-fold AUC)
    # is unchanged, the pooled ROC is not - the reason the check reads the per-fold mean
    shifted = dataclasses.replace(cv, scores={**cv.scores,
                                              "drct2": cv.scores["drct2"] + (cv.fold_of == 0)[:, None]})
    mean2, folds2, pooled2 = fold_mean_auc(shifted, "drct2")
    assert folds2 == pytest.approx(folds) and pooled2 != pytest.approx(pooled)
    rows = positive_controls([cv]).set_index("name")
    assert rows.loc["rsna/drct2/macro_auc", "value"] == pytest.approx(mean)
    assert f"pooled out-of-fold scores of the {len(folds)} models: {pooled:.3f}" in \
        rows.loc["rsna/drct2/macro_auc", "what"]
    assert rows.loc["rsna/slice_max/macro_auc", "value"] == pytest.approx(fold_mean_auc(cv, "slice_max")[0])


def test_max_over_slices_baseline_finds_the_toy_lesions_from_scan_labels():
    """The sanity baseline of the positive controls, through the same cross-validation code."""
    from brainlib.papers.wang_drct2.crossval import SLICE_MAX

    data = _toy_scandata(n_scans=24)
    s = wang.settings_for("smoke", epochs=40, fc=(16, 16), dropout=0.0)
    cv = wang.cross_validate(data, s, seed=0, device="cpu", variants=[SLICE_MAX])
    assert macro_auc(data.labels, cv.scores["slice_max"]) > 0.8
    shuffled = data.labels[np.random.default_rng(0).permutation(len(data.labels))]
    assert macro_auc(shuffled, cv.scores["slice_max"]) < 0.75   # the labels carry the signal


def test_tables_from_toy_results(toy_cv):
    cv, data = toy_cv, toy_cv.data
    pred = wang.predictions_frame(cv, ["drct1", "drct2"])
    t3 = wang.table3(None, [cv])
    for model, label in (("drct1", "DrCT1"), ("drct2", "DrCT2")):
        p = pred[pred.model == model]
        y = p[[f"label_{c}" for c in data.classes]].to_numpy()
        sc = p[[f"score_{c}" for c in data.classes]].to_numpy()
        assert round(macro_prf(y, sc)["f1"], 4) == t3.set_index("model").loc[label, "f1"]
        # the shared macro AUC is the value the old pipeline computed
        old = classification_metrics(data.labels, cv.scores[model], task="multilabel",
                                     per_class=False)["auc_macro"]
        assert macro_auc(data.labels, cv.scores[model]) == old
    t5, t6 = wang.table5(cv), wang.table6(cv)
    assert list(t5["task"]) == ["Easy task", "Difficult task", "Comprehensive task"]
    assert t5["scans"].iloc[2] == int((data.labels[:, 0] == 1).sum())
    assert len(t6) == 3
    assert set(wang.table7(cv)["model"]) >= {"DrCT1", "DrCT2"}
    tt = wang.ttest_folds({"rsna": cv})
    assert list(tt["metric"]) == ["precision", "recall", "f1"] and (tt["folds"] == 2).all()
    assert set(wang.table8(cv, 0.01)["item"]) >= {"Precision", "Time/scan (s)", "Scans"}


def test_claims_on_toy_results(toy_cv, tmp_path):
    exp = wang.setup(profile="smoke", out_dir=tmp_path / "run", device="cpu", dataset="rsna",
                     epochs=2, m_key=3)
    wang.record_claims(exp, [toy_cv], [], seconds_per_scan=0.01)
    measured = exp.claims.frame()
    assert not measured["claim_id"].duplicated().any() and exp.claims.finite() > 50
    # percent claims are recorded as fractions (compare converts to the claim's unit)
    assert 0 <= exp.claims.value("table5/comprehensive/drct2/accuracy") <= 1
    phantom = compare("wang_drct2", measured, "toy", synthetic=True, profile="smoke")
    judged = phantom[phantom["kind"].isin(["result", "data", "comparison"])]
    assert not set(judged["status"]) & EVIDENCE_STATUSES
    real = compare("wang_drct2", measured, "toy", synthetic=False,
                   profile="smoke").set_index("claim_id")
    assert real.loc["table5/comprehensive/drct2/accuracy", "status"] in (
        "consistent", "differs", "inconclusive")
    assert real.loc["text/training/lr_aps", "status"] == "as in paper"   # the paper's 3e-4
    assert real.loc["text/training/epochs", "status"] == "changed"


def test_record_provenance_states_random_encoder_as_deviation(tmp_path):
    data = _toy_scandata(n_scans=4)
    data.encoder_note = "VGG-16 from random initialisation (no local ImageNet weights file)"
    exp = wang.setup(profile="smoke", out_dir=tmp_path / "run", device="cpu", dataset="rsna")
    wang.record_provenance(exp, {"rsna": data})
    assert RANDOM_ENCODER_DEVIATION in exp.deviations
    assert any("random initialisation" in n for n in exp.notes)
    assert any(r.startswith("slice encoder") for r in exp.readings)
    assert exp.synthetic                                # embedded phantoms


def test_feature_cache_key_changes_with_encoder_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path))
    s = wang.settings_for("smoke", max_studies=2)
    import dataclasses

    ds = open_dataset("rsna", None, dataclasses.replace(s, phantom_studies_rsna=2))
    a = SliceEncoder(s.width, False, seed=0)
    b = SliceEncoder(s.width, False, seed=1)
    path = tmp_path / "w.pt"
    torch.save({k: v + 0.01 for k, v in a.features.state_dict().items()}, path)
    c = SliceEncoder.from_pretrained(path, s.width, a.init.note)  # same note, new weights
    keys = {feature_key("rsna", ds, s, 0, e) for e in (a, b, c)}
    assert len(keys) == 3
    assert feature_key("rsna", ds, s, 0, a) == feature_key(
        "rsna", ds, s, 0, SliceEncoder(s.width, False, seed=0))
    assert ds.synthetic                                 # phantom files carry the mark
