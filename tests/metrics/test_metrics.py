"""Tests for brainlib.metrics: agreement with scikit-learn, bootstrap, McNemar, DeLong, t-test."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from brainlib.metrics import (
    bootstrap_ci,
    classification_metrics,
    classification_table,
    confusion,
    delong,
    delong_ci,
    infer_task,
    make_metric_fn,
    mcnemar,
    paired_bootstrap,
    paired_t_test,
    pr_curves,
    roc_auc_per_class,
    roc_curves,
)
from brainlib.metrics.stats import structural_components


def _multiclass(seed: int, n: int = 200, c: int = 4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 1.2 * np.eye(c)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, p


def _multilabel(seed: int, n: int = 200, c: int = 5):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.3).astype(float)
    s = 1 / (1 + np.exp(-(rng.normal(size=(n, c)) + 1.5 * (y - 0.5))))
    return y, s


# ----------------------------------------------------------------------------- classification
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 150)
    s = np.clip(0.5 * y + rng.normal(0.25, 0.3, 150), 0, 1)
    m = classification_metrics(y, s)
    pred = (s >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == m["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
    assert m["specificity"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred))
    assert m["auc"] == m["auc_macro"] == pytest.approx(skm.roc_auc_score(y, s))
    assert m["ap"] == pytest.approx(skm.average_precision_score(y, s))
    # (N, 2) softmax input gives the same as its positive column
    m2 = classification_metrics(y, np.stack([1 - s, s], 1))
    assert m2 == m


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multiclass_equals_sklearn(seed):
    y, p = _multiclass(seed)
    names = ["a", "b", "c", "d"]
    m = classification_metrics(y, p, class_names=names)
    pred = p.argmax(1)
    assert infer_task(y, p) == "multiclass"
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    for avg in ("macro", "micro"):
        assert m[f"precision_{avg}"] == pytest.approx(skm.precision_score(y, pred, average=avg))
        assert m[f"recall_{avg}"] == pytest.approx(skm.recall_score(y, pred, average=avg))
        assert m[f"f1_{avg}"] == pytest.approx(skm.f1_score(y, pred, average=avg))
    f1_each = skm.f1_score(y, pred, average=None)
    for k, name in enumerate(names):
        assert m[f"f1_{name}"] == pytest.approx(f1_each[k])
        assert m[f"auc_{name}"] == pytest.approx(skm.roc_auc_score(y == k, p[:, k]))
        # specificity of class k = recall of "not k"
        assert m[f"specificity_{name}"] == pytest.approx(skm.recall_score(y != k, pred != k))
    assert m["kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred))
    assert m["auc_macro"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr",
                                                              average="macro"))
    cm = confusion(y, p, class_names=names)
    assert (cm.to_numpy() == skm.confusion_matrix(y, pred)).all()
    assert list(cm.index) == names
    assert np.allclose(confusion(y, p, normalize="true").sum(axis=1), 1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_multilabel_equals_sklearn(seed):
    y, s = _multilabel(seed)
    m = classification_metrics(y, s)
    pred = (s >= 0.5).astype(int)
    assert infer_task(y, s) == "multilabel"
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))  # exact match
    for avg in ("macro", "micro"):
        assert m[f"precision_{avg}"] == pytest.approx(skm.precision_score(y, pred, average=avg))
        assert m[f"recall_{avg}"] == pytest.approx(skm.recall_score(y, pred, average=avg))
        assert m[f"f1_{avg}"] == pytest.approx(skm.f1_score(y, pred, average=avg))
    assert m["auc_macro"] == pytest.approx(skm.roc_auc_score(y, s, average="macro"))
    assert m["ap_macro"] == pytest.approx(skm.average_precision_score(y, s, average="macro"))
    for k in range(y.shape[1]):
        assert m[f"kappa_{k}"] == pytest.approx(skm.cohen_kappa_score(y[:, k], pred[:, k]))
    mcm = skm.multilabel_confusion_matrix(y, pred)
    spec = mcm[:, 0, 0] / (mcm[:, 0, 0] + mcm[:, 0, 1])
    assert m["specificity_macro"] == pytest.approx(spec.mean())
    # per-class thresholds
    thr = np.array([0.3, 0.4, 0.5, 0.6, 0.7])
    m_thr = classification_metrics(y, s, threshold=thr)
    assert m_thr["f1_micro"] == pytest.approx(skm.f1_score(y, (s >= thr).astype(int),
                                                            average="micro"))


def test_multilabel_nan_labels_are_masked_per_class():
    y, s = _multilabel(3)
    y_nan = y.copy()
    y_nan[:20, 0] = np.nan
    m = classification_metrics(y_nan, s)
    assert m["auc_0"] == pytest.approx(skm.roc_auc_score(y[20:, 0], s[20:, 0]))
    assert m["auc_1"] == pytest.approx(skm.roc_auc_score(y[:, 1], s[:, 1]))
    # exact-match accuracy only on complete rows
    pred = (s >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y[20:], pred[20:]))


def test_one_valued_class_gives_nan_auc_with_reason():
    y, s = _multilabel(4, n=60, c=3)
    y[:, 2] = 0  # class 2 has no positive case
    table = roc_auc_per_class(y, s, class_names=["x", "y", "z"])
    assert math.isnan(table.loc[2, "auc"]) and "only negatives" in table.loc[2, "note"]
    assert table.loc[:1, "note"].eq("").all()
    m = classification_metrics(y, s)
    assert m["auc_macro"] == pytest.approx(np.mean(table["auc"][:2]))
    assert "z" not in roc_curves(y, s, class_names=["x", "y", "z"])


def test_curves_match_sklearn():
    y, p = _multiclass(5, c=3)
    rocs = roc_curves(y, p, class_names=["a", "b", "c"])
    fpr, tpr, _ = skm.roc_curve(y == 1, p[:, 1])
    assert np.allclose(rocs["b"]["fpr"], fpr) and np.allclose(rocs["b"]["tpr"], tpr)
    prs = pr_curves(y, p)
    prec, rec, thr = skm.precision_recall_curve(y == 2, p[:, 2])
    assert np.allclose(prs["2"]["precision"], prec) and np.allclose(prs["2"]["recall"], rec)
    assert len(prs["2"]) == len(thr) + 1


def test_classification_table_and_metric_fn():
    y, p = _multiclass(6, c=3)
    table = classification_table(y, p, class_names=["n", "b", "m"])
    assert list(table["class"]) == ["n", "b", "m", "macro", "micro"]
    assert table.loc[3, "f1"] == pytest.approx(skm.f1_score(y, p.argmax(1), average="macro"))
    assert table.loc[3, "accuracy"] == pytest.approx(skm.accuracy_score(y, p.argmax(1)))
    assert table.loc[0, "n_pos"] == (y == 0).sum()
    long = classification_table(y, p, long=True)
    assert set(long.columns) == {"class", "metric", "value"} and long["value"].notna().all()

    class Pred:  # duck-typed brainlib.engine.Predictions
        y_true, y_score = y, p

    fn = make_metric_fn(keys=["auc_macro", "f1_macro"])
    assert set(fn(Pred())) == {"auc_macro", "f1_macro"}
    with pytest.raises(KeyError):
        make_metric_fn(keys=["nope"])(Pred())


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="cases"):
        classification_metrics([0, 1, 1], [0.2, 0.9])
    with pytest.raises(ValueError, match="0 and 1"):
        classification_metrics([0, 2, 1], [0.2, 0.9, 0.5], task="binary")
    with pytest.raises(ValueError, match="integers"):
        classification_metrics([0, 5], np.eye(3)[:2])
    with pytest.raises(ValueError, match="NaN"):
        classification_metrics([0, 1], [np.nan, 0.3])


# ----------------------------------------------------------------------------- bootstrap
def _auc(y, s):
    return skm.roc_auc_score(y, s)


def test_bootstrap_ci_seeded_and_contains_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = y * 0.8 + rng.normal(size=300)
    a = bootstrap_ci(_auc, y, s, n_boot=300, seed=11)
    b = bootstrap_ci(_auc, y, s, n_boot=300, seed=11)
    c = bootstrap_ci(_auc, y, s, n_boot=300, seed=12)
    assert tuple(a) == tuple(b) and tuple(a) != tuple(c)
    est, low, high = a
    assert est == pytest.approx(skm.roc_auc_score(y, s))
    assert low < est < high and 0.03 < high - low < 0.2
    # percentile interval: ~95% of replicates inside it
    inside = np.mean((a.replicates >= low) & (a.replicates <= high))
    assert 0.94 <= inside <= 0.96


def test_bootstrap_groups_move_together_and_widen_ci():
    """Duplicated cases (4 slices per patient) look like 4x the data unless resampled by group."""
    rng = np.random.default_rng(1)
    y0 = rng.integers(0, 2, 80)
    s0 = y0 + rng.normal(size=80)
    y, s = np.repeat(y0, 4), np.repeat(s0, 4)
    patients = np.repeat(np.arange(80), 4)
    acc = lambda yt, ys: float(np.mean((ys > 0.5) == yt))  # noqa: E731
    by_case = bootstrap_ci(acc, y, s, n_boot=400, seed=0)
    by_patient = bootstrap_ci(acc, y, s, n_boot=400, seed=0, groups=patients)
    assert (by_patient.high - by_patient.low) > 1.5 * (by_case.high - by_case.low)
    assert by_patient.low <= by_patient.estimate <= by_patient.high


def test_bootstrap_undefined_resamples_are_counted():
    y = np.array([0] * 40 + [1, 1])
    s = np.linspace(0, 1, 42)
    with pytest.warns(RuntimeWarning, match="undefined"):
        res = bootstrap_ci(_auc, y, s, n_boot=200, seed=0)
    assert res.n_valid < 200
    strat = bootstrap_ci(_auc, y, s, n_boot=200, seed=0, stratify=True)
    assert strat.n_valid == 200


def test_paired_bootstrap():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 400)
    good = y * 1.5 + rng.normal(size=400)
    weak = y * 0.5 + rng.normal(size=400)
    res = paired_bootstrap(_auc, y, good, weak, n_boot=200, seed=0)
    assert res.difference == pytest.approx(_auc(y, good) - _auc(y, weak))
    assert res.low > 0 and res.p_value < 0.01
    same = paired_bootstrap(_auc, y, good, good + 1e-3 * rng.normal(size=400), n_boot=100, seed=0)
    assert same.low <= 0 <= same.high and same.p_value > 0.05
    again = paired_bootstrap(_auc, y, good, weak, n_boot=200, seed=0)
    assert (again.low, again.high, again.p_value) == (res.low, res.high, res.p_value)


# ----------------------------------------------------------------------------- McNemar
def test_mcnemar_exact_hand_example():
    # b = 1 (only A right), c = 9 (only B right): p = 2 * P(X <= 1 | n=10, 1/2) = 2 * 11 / 1024
    a = np.array([1] * 1 + [0] * 9 + [1] * 20 + [0] * 5, bool)
    b = np.array([0] * 1 + [1] * 9 + [1] * 20 + [0] * 5, bool)
    res = mcnemar(a, b)
    assert (res.b, res.c, res.method) == (1, 9, "exact")
    assert res.p_value == pytest.approx(22 / 1024)
    assert mcnemar(a, a).p_value == 1.0


def test_mcnemar_chi2_matches_normal_route():
    # b = 121, c = 59: uncorrected chi2 = (b - c)^2 / (b + c) = 3844 / 180
    a = np.array([1] * 121 + [0] * 59 + [1] * 101 + [0] * 33, bool)
    b = np.array([0] * 121 + [1] * 59 + [1] * 101 + [0] * 33, bool)
    plain = mcnemar(a, b, exact=False, correction=False)
    assert plain.statistic == pytest.approx(3844 / 180)
    z = (121 - 59) / math.sqrt(180)
    assert plain.p_value == pytest.approx(2 * stats.norm.sf(z))
    corrected = mcnemar(a, b)  # 180 discordant pairs -> chi2 with continuity correction
    assert corrected.method.startswith("chi2") and corrected.statistic == pytest.approx(61**2 / 180)


# ----------------------------------------------------------------------------- DeLong
def _psi_variance(y, sa, sb):
    """DeLong (co)variances the slow way: Mann-Whitney kernel psi over all (pos, neg) pairs."""
    def comps(s):
        x, z = s[y == 1][:, None], s[y == 0][None, :]
        psi = (x > z) + 0.5 * (x == z)
        return psi.mean(1), psi.mean(0)  # V10 (per positive), V01 (per negative)

    (a10, a01), (b10, b01) = comps(sa), comps(sb)
    m, n = len(a10), len(a01)
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    return s10 / m + s01 / n, a10.mean(), b10.mean()


def test_delong_hand_checked_small_case():
    # positives A: .9 .8 .4, negatives A: .7 .3 -> AUC_A = 5/6, var_A = 1/36 + 1/36 = 1/18
    # positives B: .6 .2 .8, negatives B: .5 .7 -> AUC_B = 1/2, var_B = 1/12 + 1/36 = 1/9
    # cov = -1/24 - 1/36 = -5/72 -> var(A - B) = 11/36, z = (1/3) / sqrt(11/36) = 2 / sqrt(11)
    y = np.array([1, 0, 1, 1, 0])
    sa = np.array([0.9, 0.7, 0.8, 0.4, 0.3])
    sb = np.array([0.6, 0.5, 0.2, 0.8, 0.7])
    r = delong(y, sa, sb)
    assert r.auc_a == pytest.approx(5 / 6) and r.auc_b == pytest.approx(1 / 2)
    assert r.var_a == pytest.approx(1 / 18) and r.var_b == pytest.approx(1 / 9)
    assert r.covariance == pytest.approx(-5 / 72)
    assert r.z == pytest.approx(2 / math.sqrt(11))
    assert r.p_value == pytest.approx(2 * stats.norm.sf(2 / math.sqrt(11)))


def test_delong_equals_mann_whitney_route_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 150)
    sa = np.round(y * 0.7 + rng.normal(size=150), 1)  # rounding creates ties
    sb = np.round(0.5 * sa + y * 0.3 + rng.normal(size=150), 1)
    cov, auc_a, auc_b = _psi_variance(y, sa, sb)
    r = delong(y, sa, sb)
    assert r.auc_a == pytest.approx(auc_a) and r.auc_b == pytest.approx(auc_b)
    assert r.var_a == pytest.approx(cov[0, 0]) and r.var_b == pytest.approx(cov[1, 1])
    assert r.covariance == pytest.approx(cov[0, 1])
    v10, v01 = structural_components(y, np.vstack([sa, sb]))
    assert v10[0].mean() == pytest.approx(skm.roc_auc_score(y, sa))
    assert v01[1].mean() == pytest.approx(skm.roc_auc_score(y, sb))


def test_delong_agrees_with_paired_bootstrap_on_large_sample():
    rng = np.random.default_rng(4)
    n = 1500
    y = rng.integers(0, 2, n)
    shared = rng.normal(size=n)
    sa = y * 1.0 + shared + 0.7 * rng.normal(size=n)
    sb = y * 0.8 + shared + 0.7 * rng.normal(size=n)
    r = delong(y, sa, sb)
    boot = paired_bootstrap(_auc, y, sa, sb, n_boot=300, seed=1)
    assert r.difference == pytest.approx(boot.difference)
    assert np.std(boot.replicates, ddof=1) == pytest.approx(r.se, rel=0.15)
    assert r.low == pytest.approx(boot.low, abs=0.4 * r.se)
    assert r.high == pytest.approx(boot.high, abs=0.4 * r.se)
    assert (r.p_value < 0.05) == (boot.p_value < 0.05)
    # single-model CI: the DeLong SE matches the bootstrap SD too
    auc, low, high = delong_ci(y, sa)
    single = bootstrap_ci(_auc, y, sa, n_boot=300, seed=1)
    assert (high - low) == pytest.approx(single.high - single.low, rel=0.2)


def test_delong_identical_models_and_errors():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.7])
    r = delong(y, s, s)
    assert r.difference == 0 and r.p_value == 1.0
    with pytest.raises(ValueError, match="one class"):
        delong(np.zeros(4), s[:4], s[:4])


# ----------------------------------------------------------------------------- paired t
def test_paired_t_test_equals_scipy():
    a = np.array([0.81, 0.79, 0.85, 0.83, 0.80])
    b = np.array([0.78, 0.77, 0.80, 0.82, 0.79])
    r = paired_t_test(a, b)
    ref = stats.ttest_rel(a, b)
    assert r.t == pytest.approx(ref.statistic) and r.p_value == pytest.approx(ref.pvalue)
    assert r.df == 4 and r.low < r.mean_difference < r.high
    d = a - b
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    assert (r.low, r.high) == pytest.approx((d.mean() - half, d.mean() + half))
