"""Uncertainty and paired comparisons: bootstrap CIs, paired bootstrap, McNemar, DeLong, paired t.

* :func:`bootstrap_ci` — seeded percentile bootstrap over cases (or groups such as patients).
* :func:`paired_bootstrap` — the same resamples for two models on the same cases; CI and
  two-sided p-value of the difference.
* :func:`mcnemar` — McNemar's test on paired correctness: exact binomial (default when fewer
  than 25 discordant pairs) or chi-square with continuity correction (scipy.stats; statsmodels
  is not a dependency).
* :func:`delong` — DeLong, DeLong & Clarke-Pearson (Biometrics 1988) test for two correlated
  ROC AUCs, with the midrank formulation of Sun & Xu (IEEE SPL 2014). The AUC values come from
  scikit-learn; the structural components give the (co)variances.
* :func:`paired_t_test` — paired t-test over folds (scipy.stats.ttest_rel), as in Wang et al.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

__all__ = [
    "BootstrapCI",
    "DeLongResult",
    "McNemarResult",
    "PairedBootstrapResult",
    "PairedTTestResult",
    "bootstrap_ci",
    "delong",
    "delong_ci",
    "mcnemar",
    "paired_bootstrap",
    "paired_t_test",
]

MetricFn = Callable[[np.ndarray, np.ndarray], float]


# --------------------------------------------------------------------------- resampling
class _Resampler:
    """Draws bootstrap index sets: cases with replacement, or whole groups with replacement,
    or cases within each class (``stratify``: keeps class counts fixed, so AUC stays defined)."""

    def __init__(self, n: int, seed: int, groups: Sequence[Any] | None,
                 strata: np.ndarray | None) -> None:
        self.rng = np.random.default_rng(seed)
        self.n = n
        self.members: list[np.ndarray] | None = None
        self.strata: list[np.ndarray] | None = None
        if groups is not None:
            if len(groups) != n:
                raise ValueError(f"groups has {len(groups)} entries for {n} cases")
            _, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
            order = np.argsort(codes, kind="stable")
            bounds = np.flatnonzero(np.diff(codes[order])) + 1
            self.members = np.split(order, bounds)
        elif strata is not None:
            self.strata = [np.flatnonzero(strata == v) for v in np.unique(strata)]

    def draw(self) -> np.ndarray:
        if self.members is not None:
            pick = self.rng.integers(0, len(self.members), len(self.members))
            return np.concatenate([self.members[g] for g in pick])
        if self.strata is not None:
            return np.concatenate([s[self.rng.integers(0, s.size, s.size)] for s in self.strata])
        return self.rng.integers(0, self.n, self.n)


def _safe_metric(fn: MetricFn, y: np.ndarray, s: np.ndarray) -> float:
    """The metric, or NaN where it is undefined on a resample (e.g. AUC with one class)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(fn(y, s))
    except ValueError:
        return float("nan")
    return value


def _strata(y_true: np.ndarray, stratify: bool, groups: Any) -> np.ndarray | None:
    if not stratify:
        return None
    if groups is not None:
        raise ValueError("stratify=True and groups cannot be combined")
    if y_true.ndim != 1:
        raise ValueError("stratify=True needs 1-D y_true (class labels)")
    return y_true


def _check_valid(n_valid: int, n_boot: int, what: str) -> None:
    if n_valid == 0:
        raise ValueError(f"{what}: the metric is undefined on every bootstrap resample")
    if n_valid < 0.9 * n_boot:
        warnings.warn(f"{what}: metric undefined on {n_boot - n_valid} of {n_boot} resamples; "
                      "the CI uses the rest (consider stratify=True)", RuntimeWarning,
                      stacklevel=4)  # _check_valid < _percentile_bootstrap < public caller


def _percentile_bootstrap(
    statistic: Callable[[np.ndarray], float], sampler: _Resampler, n_boot: int, alpha: float,
    what: str,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``statistic(idx)`` on `n_boot` resamples: (all replicates, the finite ones, and the
    percentile CI of those). Shared by :func:`bootstrap_ci` and :func:`paired_bootstrap`."""
    reps = np.empty(n_boot)
    for b in range(n_boot):
        reps[b] = statistic(sampler.draw())
    valid = reps[np.isfinite(reps)]
    _check_valid(valid.size, n_boot, what)
    low, high = np.percentile(valid, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return reps, valid, float(low), float(high)


@dataclass
class BootstrapCI:
    """Point estimate on all cases and percentile CI; unpacks as ``est, low, high``."""

    estimate: float
    low: float
    high: float
    n_boot: int
    n_valid: int
    alpha: float
    replicates: np.ndarray = field(repr=False)

    def __iter__(self) -> Iterator[float]:
        return iter((self.estimate, self.low, self.high))


def bootstrap_ci(
    metric_fn: MetricFn,
    y_true: Any,
    y_score: Any,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    groups: Sequence[Any] | None = None,
    stratify: bool = False,
) -> BootstrapCI:
    """Seeded percentile bootstrap CI of ``metric_fn(y_true, y_score)``.

    Resamples cases with replacement (or whole ``groups``, e.g. patients, so correlated slices
    move together; or cases within each class with ``stratify=True``). Resamples on which the
    metric is undefined are dropped and counted (``n_valid``); a warning is raised above 10%.
    """
    yt, ys = np.asarray(y_true), np.asarray(y_score)
    if len(yt) != len(ys):
        raise ValueError(f"y_true has {len(yt)} cases but y_score has {len(ys)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    estimate = float(metric_fn(yt, ys))
    sampler = _Resampler(len(yt), seed, groups, _strata(yt, stratify, groups))
    reps, valid, low, high = _percentile_bootstrap(
        lambda idx: _safe_metric(metric_fn, yt[idx], ys[idx]), sampler, n_boot, alpha, "bootstrap_ci")
    return BootstrapCI(estimate, low, high, n_boot, int(valid.size), alpha, reps)


@dataclass
class PairedBootstrapResult:
    """Model A minus model B on the same resamples."""

    metric_a: float
    metric_b: float
    difference: float
    low: float
    high: float
    p_value: float
    n_boot: int
    n_valid: int
    alpha: float
    replicates: np.ndarray = field(repr=False)


def paired_bootstrap(
    metric_fn: MetricFn,
    y_true: Any,
    score_a: Any,
    score_b: Any,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    groups: Sequence[Any] | None = None,
    stratify: bool = False,
) -> PairedBootstrapResult:
    """Bootstrap of ``metric(A) - metric(B)`` with both models scored on the same resamples.

    CI: percentile. p-value (two-sided, H0: no difference): the share of resampled
    differences, centred on the observed one, at least as far from 0 as the observed
    difference, ``(1 + #{|d*_b - d| >= |d|}) / (1 + B)`` (Efron & Tibshirani 1993, §16.4).
    """
    yt, sa, sb = np.asarray(y_true), np.asarray(score_a), np.asarray(score_b)
    if not len(yt) == len(sa) == len(sb):
        raise ValueError(f"lengths differ: y_true {len(yt)}, score_a {len(sa)}, score_b {len(sb)}")
    ma, mb = float(metric_fn(yt, sa)), float(metric_fn(yt, sb))
    diff = ma - mb
    sampler = _Resampler(len(yt), seed, groups, _strata(yt, stratify, groups))
    reps, valid, low, high = _percentile_bootstrap(
        lambda idx: _safe_metric(metric_fn, yt[idx], sa[idx]) - _safe_metric(metric_fn, yt[idx], sb[idx]),
        sampler, n_boot, alpha, "paired_bootstrap")
    p = (1 + np.sum(np.abs(valid - diff) >= abs(diff))) / (1 + valid.size)
    return PairedBootstrapResult(ma, mb, diff, low, high, float(min(p, 1.0)),
                                 n_boot, int(valid.size), alpha, reps)


# --------------------------------------------------------------------------- McNemar
@dataclass
class McNemarResult:
    """``b`` = cases only A got right, ``c`` = cases only B got right."""

    b: int
    c: int
    statistic: float
    p_value: float
    method: str


def mcnemar(
    correct_a: Any, correct_b: Any, exact: bool | None = None, correction: bool = True
) -> McNemarResult:
    """McNemar's test for paired correctness of two classifiers on the same cases.

    ``exact=None`` picks the exact binomial test when ``b + c < 25``, else chi-square
    (``(|b - c| - 1)^2 / (b + c)`` with ``correction``, 1 degree of freedom). Exact:
    statistic ``min(b, c)``, two-sided ``binomtest(b, b + c, 0.5)``.
    """
    a = np.asarray(correct_a)
    bb = np.asarray(correct_b)
    if a.shape != bb.shape or a.ndim != 1:
        raise ValueError(f"correct_a {a.shape} and correct_b {bb.shape} must be equal 1-D shapes")
    if not (np.isin(a, (0, 1)).all() and np.isin(bb, (0, 1)).all()):
        raise ValueError("correct_a / correct_b must be booleans (or 0/1)")
    a, bb = a.astype(bool), bb.astype(bool)
    b = int(np.sum(a & ~bb))
    c = int(np.sum(~a & bb))
    n = b + c
    if exact is None:
        exact = n < 25
    if n == 0:
        return McNemarResult(b, c, 0.0, 1.0, "exact" if exact else "chi2")
    if exact:
        p = stats.binomtest(b, n, 0.5, alternative="two-sided").pvalue
        return McNemarResult(b, c, float(min(b, c)), float(p), "exact")
    num = max(abs(b - c) - (1.0 if correction else 0.0), 0.0) ** 2
    stat = num / n
    return McNemarResult(b, c, float(stat), float(stats.chi2.sf(stat, df=1)),
                         "chi2 (continuity corrected)" if correction else "chi2")


# --------------------------------------------------------------------------- DeLong
def _binary_labels(y_true: Any) -> np.ndarray:
    y = np.asarray(y_true).reshape(-1)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must be binary 0/1 for DeLong")
    if y.min() == y.max():
        raise ValueError("y_true has only one class: AUC undefined")
    return y.astype(int)


def structural_components(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placement values for each model (rows of ``scores``, shape (k, N)).

    ``V10[r, i]`` (positive i): share of negatives scored below it (ties count 1/2);
    ``V01[r, j]`` (negative j): share of positives scored above it. Computed with midranks
    (Sun & Xu 2014) in O(N log N). Their means both equal the AUC.
    """
    y = _binary_labels(y_true)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    pos, neg = s[:, y == 1], s[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    v10 = np.empty((s.shape[0], m))
    v01 = np.empty((s.shape[0], n))
    for r in range(s.shape[0]):
        tz = stats.rankdata(np.concatenate([pos[r], neg[r]]))
        v10[r] = (tz[:m] - stats.rankdata(pos[r])) / n
        v01[r] = 1.0 - (tz[m:] - stats.rankdata(neg[r])) / m
    return v10, v01


def delong_covariance(y_true: Any, scores: Any) -> np.ndarray:
    """DeLong covariance matrix of the AUCs of the models in ``scores`` (k, N)."""
    v10, v01 = structural_components(y_true, scores)
    m, n = v10.shape[1], v01.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least 2 positives and 2 negatives (got {m}, {n})")
    return np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n


@dataclass
class DeLongResult:
    """AUCs of two models on the same cases, their DeLong (co)variances, the test of A - B."""

    auc_a: float
    auc_b: float
    difference: float
    var_a: float
    var_b: float
    covariance: float
    se: float
    z: float
    p_value: float
    low: float
    high: float


def delong(y_true: Any, score_a: Any, score_b: Any, alpha: float = 0.05) -> DeLongResult:
    """DeLong test of ``AUC(A) - AUC(B)`` for two models scored on the same binary cases.

    Returns the AUCs (scikit-learn), variances and covariance, the normal-approximation
    ``z``, two-sided p-value and a (1 - alpha) CI of the difference.
    """
    y = _binary_labels(y_true)
    sa, sb = np.asarray(score_a, dtype=float).reshape(-1), np.asarray(score_b, dtype=float).reshape(-1)
    if not len(y) == len(sa) == len(sb):
        raise ValueError(f"lengths differ: y_true {len(y)}, score_a {len(sa)}, score_b {len(sb)}")
    cov = delong_covariance(y, np.vstack([sa, sb]))
    auc_a, auc_b = float(roc_auc_score(y, sa)), float(roc_auc_score(y, sb))
    diff = auc_a - auc_b
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = float(np.sqrt(max(var, 0.0)))
    if se > 0:
        z = diff / se
        p = float(2 * stats.norm.sf(abs(z)))
    else:  # identical rankings: no evidence of a difference
        z, p = (0.0, 1.0) if diff == 0 else (float("inf") * np.sign(diff), 0.0)
    q = stats.norm.ppf(1 - alpha / 2)
    return DeLongResult(auc_a, auc_b, diff, float(cov[0, 0]), float(cov[1, 1]), float(cov[0, 1]),
                        se, float(z), p, diff - q * se, diff + q * se)


def delong_ci(y_true: Any, y_score: Any, alpha: float = 0.05) -> tuple[float, float, float]:
    """AUC with a DeLong normal-approximation CI, clipped to [0, 1]: ``(auc, low, high)``."""
    y = _binary_labels(y_true)
    s = np.asarray(y_score, dtype=float).reshape(-1)
    auc = float(roc_auc_score(y, s))
    se = float(np.sqrt(delong_covariance(y, s[None, :])[0, 0]))
    q = stats.norm.ppf(1 - alpha / 2)
    return auc, max(0.0, auc - q * se), min(1.0, auc + q * se)


# --------------------------------------------------------------------------- paired t
@dataclass
class PairedTTestResult:
    """Paired t-test of per-fold scores (A - B)."""

    mean_difference: float
    t: float
    p_value: float
    df: int
    low: float
    high: float


def paired_t_test(scores_a: Any, scores_b: Any, alpha: float = 0.05) -> PairedTTestResult:
    """Paired t-test over folds or repeats (scipy.stats.ttest_rel), with a CI of the mean
    difference. Fold scores are not independent (training sets overlap), so the p-value is
    optimistic (Nadeau & Bengio 2003); it is reported because the papers use it."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError(f"need two equal-length 1-D score vectors of >= 2 folds, got {a.shape}, {b.shape}")
    res = stats.ttest_rel(a, b)
    ci = res.confidence_interval(confidence_level=1 - alpha)
    return PairedTTestResult(float(np.mean(a - b)), float(res.statistic), float(res.pvalue),
                             int(res.df), float(ci.low), float(ci.high))
