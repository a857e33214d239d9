"""The comparative claims of He et al. 2024 as paired tests on the same test slices.

"A beats B" in Table 3 (full model vs its ablations), Table 4 (three windows > one window >
HU; trained > fixed) and the text (fusion localises better) becomes the difference a - b with
a 95 % CI and a two-sided p: DeLong's test for one class's AUC, a paired bootstrap over test
studies for six-class mean AUCs, and a paired bootstrap over test slices for the mAP.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from brainlib.data.classes import RSNA_CLASSES
from brainlib.experiment import Experiment
from brainlib.metrics import defined_classes, delong, paired_bootstrap
from brainlib.metrics.localization import paired_map_difference
from brainlib.papers.he2024.localization import Localization
from brainlib.papers.he2024.tables import mean_auc_metric
from brainlib.papers.he2024.train import VariantResult

# (claim id, model a, model b, class or None for the six-class mean)
COMPARISONS: tuple[tuple[str, str, str, str | None], ...] = (
    ("cmp/table3/full_vs_no_window/average_auc", "he2024_full", "he2024_no_window", None),
    ("cmp/table3/full_vs_no_window/any_auc", "he2024_full", "he2024_no_window", "any"),
    ("cmp/table3/full_vs_no_fusion/average_auc", "he2024_full", "he2024_no_fusion", None),
    ("cmp/table3/full_vs_no_fusion/any_auc", "he2024_full", "he2024_no_fusion", "any"),
    ("cmp/table4/three_vs_brain/fixed_auc", "he2024_t4_three_fixed", "he2024_t4_brain_fixed", None),
    ("cmp/table4/brain_vs_hu/fixed_auc", "he2024_t4_brain_fixed", "he2024_t4_hu", None),
    ("cmp/table4/three_vs_brain/trained_auc", "he2024_full", "he2024_t4_brain_learn", None),
    ("cmp/table4/brain_vs_hu/trained_auc", "he2024_t4_brain_learn", "he2024_t4_random_learn", None),
    ("cmp/table4/trained_vs_fixed/three_windows_auc", "he2024_full", "he2024_t4_three_fixed", None),
    ("cmp/table4/trained_vs_fixed/brain_window_auc", "he2024_t4_brain_learn",
     "he2024_t4_brain_fixed", None),
    ("cmp/table4/trained_vs_fixed/hu_auc", "he2024_t4_random_learn", "he2024_t4_hu", None),
)
FUSION_MAP_CLAIM = "cmp/text/fusion_localization/map"


def _check_same_cases(ra: VariantResult, rb: VariantResult) -> None:
    if ra.ids != rb.ids or not np.array_equal(ra.y_true, rb.y_true, equal_nan=True):
        raise ValueError(f"{ra.name} and {rb.name} were not tested on the same cases")


def _auc_difference(exp: Experiment, ra: VariantResult, rb: VariantResult,
                    cls: str | None) -> Any:
    """DeLong (one class) or paired bootstrap over studies (six-class mean) of a - b.

    Raises ValueError when the AUC is undefined on these cases.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if cls is not None:
            k = list(RSNA_CLASSES).index(cls)
            if not defined_classes(ra.y_true[:, k, None])[0]:
                raise ValueError(f"{cls}: one label value in the test set")
            return delong(ra.y_true[:, k], ra.y_score[:, k], rb.y_score[:, k])
        return paired_bootstrap(mean_auc_metric(ra.y_true), ra.y_true, ra.y_score,
                                rb.y_score, n_boot=exp.settings.n_boot, seed=exp.seed,
                                groups=ra.groups)


def auc_comparison(exp: Experiment, results: dict[str, VariantResult], claim_id: str,
                   a: str, b: str, cls: str | None) -> dict[str, Any]:
    """One row of the paired-tests table for an AUC claim."""
    ra, rb = results[a], results[b]
    _check_same_cases(ra, rb)
    test = "DeLong" if cls is not None else "paired bootstrap (studies resampled)"
    try:
        res = _auc_difference(exp, ra, rb, cls)
        diff, lo, hi, p = (float(res.difference), float(res.low), float(res.high),
                           float(res.p_value))
    except ValueError as err:  # AUC undefined on these cases
        diff = lo = hi = p = float("nan")
        test = f"not computed: {err}"
    return {"claim_id": claim_id, "a": a, "b": b, "metric": f"{cls or 'mean'} AUC",
            "difference": diff, "ci_low": lo, "ci_high": hi, "p_value": p, "test": test}


def map_comparison(loc: Localization, a: str = "he2024_full",
                   b: str = "he2024_no_fusion") -> dict[str, Any]:
    """The fusion claim: mAP(a) - mAP(b) with a paired bootstrap over test slices."""
    lo, hi, p = paired_map_difference(loc.boot[a], loc.boot[b])
    diff = loc.map_ci(a)[0] - loc.map_ci(b)[0]
    return {"claim_id": FUSION_MAP_CLAIM, "a": a, "b": b, "metric": "mAP", "difference": diff,
            "ci_low": lo, "ci_high": hi, "p_value": p,
            "test": "paired bootstrap (slices resampled)"}


def paired_tests(exp: Experiment, results: dict[str, VariantResult],
                 loc: Localization | None = None) -> pd.DataFrame:
    """Each comparative claim as a paired test on the same test slices.

    The one-sided question is "a > b"; the table gives the difference, its 95 % CI and the
    two-sided p-value (NaN with the reason in ``test`` when not computable).
    """
    rows = [auc_comparison(exp, results, cid, a, b, cls) for cid, a, b, cls in COMPARISONS]
    if loc is not None and "he2024_no_fusion" in loc.ap:
        rows.append(map_comparison(loc))
    return pd.DataFrame(rows)
