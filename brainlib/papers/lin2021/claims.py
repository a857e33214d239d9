"""The measured numbers for `brainlib/claims/lin2021.yaml`.

* settings: Dscint's outline counted on the built model (`count_structure`);
* data: the number of classes present in the data read;
* results: Dscint's five metrics in the paper's evaluation (augmented test) when it was run,
  else the leakage-free one (said in the note), with bootstrap CIs over patients;
* comparisons: Dscint minus the best classical network in accuracy (paired bootstrap CI and
  p-value), and thyroid-carcinoma recall minus the mean recall of metastasis and arthritis
  (bootstrap CI, p-value as for the paired bootstrap). On phantoms compare() marks all of them
  "phantom run".
"""
from __future__ import annotations

from typing import Any

import numpy as np

from brainlib.metrics import paired_bootstrap
from brainlib.models.dscint import BASELINES, count_structure
from brainlib.papers.lin2021.settings import EVALUATION_LABELS
from brainlib.papers.lin2021.tables import (METRICS, gap_test, head_notes, metric_fn, thyroid_gap,
                                            with_ci)
from brainlib.papers.lin2021.train import DSCINT, ModelResult

STRUCTURE_CLAIMS: dict[str, str] = {
    "abstract/model/weight_layers": "weight_layers",
    "abstract/model/attention_modules": "hybrid_attention_modules",
    "abstract/model/normalization_modules": "normalization_modules",
    "abstract/model/fc_layers": "fully_connected_layers",
    "abstract/model/softmax_layers": "softmax_layers",
}


def main_evaluation(results: dict[tuple[str, str], ModelResult]) -> str:
    evaluations = [e for e, n in results if n == DSCINT]
    return "augmented_test" if "augmented_test" in evaluations else evaluations[0]


def record_claims(exp: Any, dataset: Any, results: dict[tuple[str, str], ModelResult]) -> None:
    """Record every claim of lin2021 that this run measured."""
    s = exp.settings
    model = results[(main_evaluation(results), DSCINT)].model
    counts = count_structure(model)
    exp.record_settings({cid: counts[key] for cid, key in STRUCTURE_CLAIMS.items()})
    present = int((np.nansum(dataset.labels, axis=0) > 0).sum())
    exp.claims.add("abstract/dataset/classes", present, note="classes with at least one scan")
    ev = main_evaluation(results)
    note = "" if ev == "augmented_test" else "leakage-free evaluation (the paper's was not run)"
    r = results[(ev, DSCINT)]
    for metric, key in METRICS.items():
        v, lo, hi = with_ci(r, key, s.n_boot, exp.seed)
        exp.claims.add(f"abstract/test/dscint/{metric}", v, (lo, hi), note=note)
    _record_best_baseline(exp, results, ev)
    _record_thyroid(exp, r)


def _record_best_baseline(exp: Any, results: dict[tuple[str, str], ModelResult], ev: str) -> None:
    others = [r for (e, n), r in results.items() if e == ev and n in BASELINES]  # no controls
    if not others:
        return
    base = results[(ev, DSCINT)]
    acc = metric_fn("accuracy")
    best = max(others, key=lambda r: acc(r.y_true, r.y_score))
    pb = paired_bootstrap(acc, base.y_true, base.y_score, best.y_score, n_boot=exp.settings.n_boot,
                          seed=exp.seed, groups=base.patients)
    exp.claims.add("cmp/abstract/dscint_vs_classical_cnns/accuracy", pb.difference, (pb.low, pb.high),
                   p_value=pb.p_value, note=f"best classical network here: {best.label} "
                   f"({len(others)} of {len(BASELINES)} trained, {ev}"
                   + (f"; not run: {', '.join(BASELINES[b][0] for b in exp.settings.not_run)}"
                      if exp.settings.not_run else "")
                   + "; same training budget for all); paired bootstrap by patient"
                   + "".join(f". {n}" for n in head_notes(results) if n.startswith(EVALUATION_LABELS[ev])))


def _record_thyroid(exp: Any, r: ModelResult) -> None:
    d, lo, hi, p = gap_test(r, thyroid_gap, exp.settings.n_boot, exp.seed)
    exp.claims.add("cmp/abstract/thyroid_vs_bone_lesions/accuracy", d, (lo, hi), p_value=p,
                   note="per-class recall: thyroid carcinoma minus mean of metastasis, arthritis")
