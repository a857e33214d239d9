"""Measured values under the claim ids of `brainlib/claims/wang_drct2.yaml`, into `exp.claims`.

Proportions are recorded as fractions (the claim's unit, percent or fraction, is applied by
`brainlib.claims.compare`); 95 % CIs by patient bootstrap; comparisons with a paired
bootstrap CI and p-value (DrCT2 vs DrCT1 in Table 3 takes the paper's paired t-test over
folds for its p-value). Settings claims come from the settings dataclass
(`exp.record_settings`), so a changed setting carries its profile and reason.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from brainlib.data.classes import CQ500_TO_RSNA
from brainlib.experiment import Experiment
from brainlib.metrics import bootstrap_ci, macro_prf, paired_bootstrap
from brainlib.metrics.keyslice import TASKS, key_slice_recall, key_slice_task
from brainlib.metrics.keyslice import TOP as TOP_SLICES
from brainlib.papers.wang_drct2.crossval import CVResult, fusion_window_width
from brainlib.papers.wang_drct2.data import ScanData
from brainlib.papers.wang_drct2.settings import LAYOUT_LABEL
from brainlib.papers.wang_drct2.tables import (TABLE6_ORDER, as_list, fig6_table, top5_positions,
                                               ttest_folds)

METRICS: tuple[str, ...] = ("precision", "recall", "f1")
#: Table 4's rows: variant -> claim key.
TABLE4_CLAIMS: tuple[tuple[str, str], ...] = (
    ("drct1", "drct1_original"), ("drct1_highres", "drct1_highres"),
    ("drct1_model_fusion", "drct1_model_fusion"), ("drct2_aps_base", "drct2_aps224"),
    ("drct2", "drct2_aps512"))


def claim_label(cls: str) -> str:
    """A CQ500 label as the claim ids spell it: RSNA's name where it is the same disease,
    else snake case ("CalvarialFracture" -> "calvarial_fracture")."""
    return CQ500_TO_RSNA.get(cls, re.sub(r"(?<!^)(?=[A-Z])", "_", cls).lower())


class _Recorder:
    """Bootstrap helpers writing into `exp.claims` (one seed and resample count for all)."""

    def __init__(self, exp: Experiment) -> None:
        self.claims = exp.claims
        self.seed = exp.seed
        self.n_boot = int(exp.settings.n_boot)

    def add(self, cid: str, value: Any, ci: tuple[Any, Any] | None = None,
            p_value: Any = None, note: str = "") -> None:
        self.claims.add(cid, value, ci, p_value, note)

    def prf(self, cv: CVResult, variant: str, prefix: str) -> None:
        """Macro precision, recall and F1 of `variant` with patient-bootstrap CIs."""
        for metric in METRICS:
            fn = _prf_metric(metric)
            try:
                ci = bootstrap_ci(fn, cv.data.labels, cv.scores[variant], n_boot=self.n_boot,
                                  seed=self.seed, groups=cv.data.groups)
            except ValueError as err:
                self.add(f"{prefix}/{metric}", fn(cv.data.labels, cv.scores[variant]),
                         note=f"no CI: {err}")
                continue
            self.add(f"{prefix}/{metric}", ci.estimate, (ci.low, ci.high))

    def paired(self, cid: str, cv: CVResult, a: str, b: str, metric: str = "f1",
               p: float | None = None, note: str = "") -> None:
        """`a` minus `b` on `metric`, paired patient bootstrap (p from the bootstrap unless
        given)."""
        fn = _prf_metric(metric)
        try:
            res = paired_bootstrap(fn, cv.data.labels, cv.scores[a], cv.scores[b],
                                   n_boot=self.n_boot, seed=self.seed, groups=cv.data.groups)
        except ValueError as err:  # too few cases for any defined resample
            diff = fn(cv.data.labels, cv.scores[a]) - fn(cv.data.labels, cv.scores[b])
            self.add(cid, diff, p_value=p, note=f"no CI: {err}")
            return
        self.add(cid, res.difference, (res.low, res.high),
                 res.p_value if p is None else p, note or "paired patient bootstrap")

    def paired_keys(self, cid: str, cv: CVResult, key: np.ndarray, task: str | None) -> None:
        """DrCT2 minus DrCT1 key-slice accuracy (a task of Algorithm 1, or Table 6's recall
        when `task` is None), paired scan bootstrap; percent -> fraction."""
        fn = _keyslice_metric(task)
        try:
            res = paired_bootstrap(fn, key, cv.attention["drct2"], cv.attention["drct1"],
                                   n_boot=self.n_boot, seed=self.seed, groups=cv.data.groups)
        except ValueError as err:  # no scan qualifies for the task
            diff = fn(key, cv.attention["drct2"]) - fn(key, cv.attention["drct1"])
            self.add(cid, diff / 100, note=f"no CI: {err}")
            return
        self.add(cid, res.difference / 100, (res.low / 100, res.high / 100), res.p_value,
                 "paired scan bootstrap")


def _prf_metric(metric: str) -> Callable[[np.ndarray, np.ndarray], float]:
    return lambda y, p: macro_prf(y, p)[metric]


def _keyslice_metric(task: str | None) -> Callable[[np.ndarray, np.ndarray], float]:
    if task:
        return lambda k, a: key_slice_task(a, k, task)[0]
    return lambda k, a: key_slice_recall(a, k)[0]


def most_attended_window(cv: CVResult) -> tuple[int, int, str]:
    """1-based first and last sampled position of the window holding the most top-5
    attended slices of DrCT2 over diseased scans (Fig. 7), and a note."""
    counts, _ = top5_positions(cv)
    w = fusion_window_width(cv.data.seq_len)
    lo = int(np.argmax(np.convolve(counts, np.ones(w, int), mode="valid")))
    return lo + 1, lo + w, f"most attended window of {w} of {cv.data.seq_len} sampled positions"


# --------------------------------------------------------------------------- per table
def _record_table1(rec: _Recorder, datas: Sequence[ScanData]) -> None:
    for d in datas:
        lengths = np.diff(d.offsets)
        rec.add(f"table1/{d.name}/patients", len(np.unique(d.groups)))
        rec.add(f"table1/{d.name}/scans", d.n_scans)
        rec.add(f"table1/{d.name}/diseases", len(d.classes))
        rec.add(f"table1/{d.name}/slices_min", lengths.min())
        rec.add(f"table1/{d.name}/slices_max", lengths.max())
        for cls, npos in zip(d.classes, np.nansum(d.labels, axis=0)):
            rec.add(f"table1/{d.name}/{claim_label(cls)}/scans", npos)


def _record_table3(rec: _Recorder, cv: CVResult, tt: pd.DataFrame) -> None:
    """Table 3 (and Table 2's losses when trained), the abstract/conclusion F1, the t-test."""
    n = cv.name
    f1 = {v: cv.metrics(v)["f1"] for v in cv.scores}
    rec.prf(cv, "drct1", f"table3/{n}/drct1")
    rec.prf(cv, "drct2", f"table3/{n}/drct2")
    rec.add(f"abstract/{n}/drct2/f1", f1["drct2"])
    rec.add(f"conclusion/{n}/drct2/f1", f1["drct2"])
    rec.add(f"text/{n}/drct2_minus_drct1/f1", f1["drct2"] - f1["drct1"])
    scope = tt[tt["scope"] == LAYOUT_LABEL[n]]
    for metric in METRICS:
        r = scope[scope["metric"] == metric]
        rec.paired(f"cmp/table3/{n}/drct2_vs_drct1/{metric}", cv, "drct2", "drct1", metric,
                   p=float(r["p_value"].iloc[0]),
                   note=f"p: paired t-test over {int(r['folds'].iloc[0])} folds; "
                        "CI: paired patient bootstrap")
    if "drct2_bce" in cv.scores:
        rec.prf(cv, "drct2_bce", f"table2/{n}/bce")
        rec.prf(cv, "drct2", f"table2/{n}/mse")
        rec.paired(f"cmp/table2/{n}/mse_vs_bce/f1", cv, "drct2", "drct2_bce")


def _record_cq500(rec: _Recorder, cv: CVResult) -> None:
    """Table 4, Fig. 6 and Fig. 7 (CQ500 only)."""
    if "drct1_highres" in cv.scores:
        f1 = {v: cv.metrics(v)["f1"] for v in cv.scores}
        for v, cid in TABLE4_CLAIMS:
            rec.prf(cv, v, f"table4/cq500/{cid}")
        rec.add("text/cq500/drct1_highres_minus_original/f1", f1["drct1_highres"] - f1["drct1"])
        rec.add("text/cq500/drct1_fusion_minus_original/f1",
                f1["drct1_model_fusion"] - f1["drct1"])
        rec.paired("cmp/table4/aps512_vs_aps224/f1", cv, "drct2", "drct2_aps_base")
        rec.paired("cmp/table4/aps224_vs_drct1/f1", cv, "drct2_aps_base", "drct1")
        rec.paired("cmp/table4/drct1_highres_vs_original/f1", cv, "drct1_highres", "drct1")
        rec.paired("cmp/table4/drct1_fusion_vs_original/f1", cv, "drct1_model_fusion", "drct1")
        f6 = fig6_table(cv)
        f6r = f6[~f6["same_slices"].astype(bool)]  # m_key = all slices: nothing to compare
        if len(f6r):
            diff = f6r["attention_f1"] - f6r["random_f1"]
            rec.add("cmp/fig6/attention_vs_random/f1", float(diff.mean()),
                    note=f"mean F1 difference over m_key {list(f6r['m_key'])}; attention "
                         f"better at {int((diff > 0).sum())} of {len(diff)} (no CI: one run "
                         f"each)")
        if len(f6):
            best = f6.loc[f6["attention_f1"].idxmax()]
            rec.add("fig6/drct2/best_m_key", best["m_key"],
                    note=f"m_key with the best attention-selected F1 among {list(f6['m_key'])}")
    _, n_dis = top5_positions(cv)
    rec.add("fig7/cq500/diseased_scans", n_dis)
    first, last, note = most_attended_window(cv)
    rec.add("fig7/cq500/key_slices_first", first, note=note)
    rec.add("fig7/cq500/key_slices_last", last, note=note)
    rec.add("text/discussion/key_slices_first", first, note="same window as Fig. 7")
    rec.add("text/discussion/key_slices_last", last, note="same window as Fig. 7")


def _record_keyslices(rec: _Recorder, cv: CVResult) -> None:
    """Tables 5 and 6 (RSNA layout: per-slice labels); key-slice accuracy percent -> fraction."""
    key = cv.key("any")
    for task in TASKS:
        acc = {}
        for v in ("drct1", "drct2"):
            acc[v], cnt = key_slice_task(cv.attention[v], key, task)
            rec.add(f"table5/{task}/{v}/accuracy", acc[v] / 100)
        rec.add(f"table5/{task}/scans", cnt)
        rec.add(f"conclusion/{task}/drct2/accuracy", acc["drct2"] / 100)
        rec.paired_keys(f"cmp/table5/{task}/drct2_vs_drct1", cv, key, task)
    for cls in TABLE6_ORDER:
        if cls not in cv.data.classes:
            continue
        k = cv.key(cls)
        a1, amount = key_slice_recall(cv.attention["drct1"], k)
        a2, _ = key_slice_recall(cv.attention["drct2"], k)
        rec.add(f"table6/{cls}/slices", amount)
        rec.add(f"table6/{cls}/drct1/accuracy", a1 / 100)
        rec.add(f"table6/{cls}/drct2/accuracy", a2 / 100)
        if k.any():
            rec.paired_keys(f"cmp/table6/{cls}/drct2_vs_drct1", cv, k, None)


def _record_rsna(rec: _Recorder, cv: CVResult, seconds_per_scan: float | None) -> None:
    """Tables 5-8 (RSNA layout)."""
    _record_keyslices(rec, cv)
    rec.prf(cv, "drct1", "table7/rsna/drct1")
    rec.prf(cv, "drct2", "table7/rsna/drct2")
    if "slice_baseline" in cv.scores:
        rec.add("text/rsna/drct2_minus_rsna1/f1",
                cv.metrics("drct2")["f1"] - cv.metrics("slice_baseline")["f1"],
                note="RSNA-1 replaced by the slice-level baseline trained here")
    if seconds_per_scan is not None:
        met = cv.metrics("drct2")
        for metric in METRICS:
            rec.add(f"table8/drct2/{metric}", met[metric],
                    note="all RSNA-layout scans out-of-fold, not the 148 reader-study scans")
        rec.add("table8/drct2/time_per_scan", seconds_per_scan,
                note="this CPU: encoder at both sizes + DrCT2, one scan")
        rec.add("table8/drct2/total_time", seconds_per_scan * 148,
                note="measured time per scan x 148 scans, this CPU")


def _record_settings(exp: Experiment, cvs: Sequence[CVResult],
                     datas: Sequence[ScanData]) -> None:
    """The settings this run used, beside the paper's (kind `setting`)."""
    fields: dict[str, Any] = {f"table1/{d.name}/sampled_slices": f"seq_len_{d.name}"
                              for d in datas}
    for cv in cvs:
        fields[f"text/{cv.name}/kfold"] = f"folds_{cv.name}"
        fields[f"text/{cv.name}/batch_size"] = f"batch_{cv.name}"
    fields.update({
        "text/training/epochs": "epochs", "text/training/lr_aps": "lr_aps",
        "text/training/lr_primary_fusion": "lr_primary", "text/model/dropout": "dropout",
        "text/model/input_size": "image_size", "text/model/aps_size": "zoom_size",
        "text/tasks/top_k": TOP_SLICES, "text/tasks/slices_per_set": "seq_len_rsna"})
    exp.record_settings(fields)
    exp.claims.add("text/model/feature_dim", int(cvs[0].data.features.shape[-1]),
                   note=f"VGG-16 width {exp.settings.width}")


def record_claims(exp: Experiment, cvs: Mapping[str, CVResult] | Sequence[CVResult],
                  datas: Mapping[str, ScanData] | Sequence[ScanData],
                  seconds_per_scan: float | None = None) -> None:
    """Record every measured number of this run under its claim id in `exp.claims`
    (`seconds_per_scan`: Table 8's timing, when the RSNA layout was run)."""
    cvs, datas = as_list(cvs), as_list(datas)
    rec = _Recorder(exp)
    _record_table1(rec, datas)
    if not cvs:
        return
    tt = ttest_folds(cvs)
    for cv in cvs:
        _record_table3(rec, cv, tt)
        if cv.name == "cq500":
            _record_cq500(rec, cv)
        if cv.name == "rsna":
            _record_rsna(rec, cv, seconds_per_scan)
    _record_settings(exp, cvs, datas)
    if len(cvs) > 1:
        pooled = tt[tt["scope"] == "pooled"]
        for metric in METRICS:
            r = pooled[pooled["metric"] == metric]
            rec.add(f"text/ttest/{metric}/p_value", float(r["p_value"].iloc[0]),
                    note=f"paired t-test over {int(r['folds'].iloc[0])} folds of both datasets")
