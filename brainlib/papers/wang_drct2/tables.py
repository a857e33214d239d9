"""Tables of Wang et al. (DrCT1/DrCT2), built from cross-validation results; none is saved here.

Metrics follow the paper: macro precision / recall / F1 at threshold 0.5 over the disease
labels (`brainlib.metrics.macro_prf`), on the pooled out-of-fold predictions (classes without
any positive scan in the evaluated set are left out of the macro average; ``classes_scored``
says how many were kept). Precision and recall are printed in percent, F1 as a fraction, as in
the paper. The notebook saves each table through the experiment (`exp.table`).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from brainlib.claims import load_claims
from brainlib.data.classes import CQ500_LONG, RSNA_LONG, RSNA_SHORT, RSNA_SUBTYPES
from brainlib.experiment import Experiment
from brainlib.metrics import bootstrap_ci, macro_auc, macro_prf, paired_t_test
from brainlib.metrics.keyslice import TASKS, key_slice_recall, key_slice_task
from brainlib.papers.wang_drct2.crossval import CVResult
from brainlib.papers.wang_drct2.data import PAPER, ScanData
from brainlib.papers.wang_drct2.settings import LAYOUT_LABEL

#: Table 6's row order (the paper's), then any other label.
TABLE6_ORDER: tuple[str, ...] = RSNA_SUBTYPES + ("any",)
#: Table 8's readers: (claim key, experiment, column).
READERS: tuple[tuple[str, str, str], ...] = tuple(
    (r, e, f"Exp. {e[-1]} JR {r[-1].upper()}") for e in ("exp1", "exp2")
    for r in ("jr_a", "jr_b", "jr_c"))


def as_list(items: Mapping[str, Any] | Sequence[Any]) -> list[Any]:
    """The values of a {dataset: result} dict, or the sequence itself."""
    return list(items.values()) if isinstance(items, Mapping) else list(items)


def label_name(dataset: str, cls: str) -> str:
    """The paper's long name of a label ("Any (ICH)", "Calvarial fracture")."""
    return (CQ500_LONG if dataset == "cq500" else RSNA_LONG).get(cls, cls)


def paper_units(met: Mapping[str, float]) -> dict[str, Any]:
    """Paper units: precision/recall in percent, F1 as a fraction."""
    return {"precision_%": round(100 * met["precision"], 2),
            "recall_%": round(100 * met["recall"], 2),
            "f1": round(met["f1"], 4), "classes_scored": met["n_classes"]}


def f1_ci(cv: CVResult, variant: str, n_boot: int, seed: int) -> tuple[float, float]:
    """95 % CI of macro F1 by patient bootstrap (NaN when no resample has a positive case)."""
    try:
        ci = bootstrap_ci(lambda y, p: macro_prf(y, p)["f1"], cv.data.labels,
                          cv.scores[variant], n_boot=n_boot, seed=seed, groups=cv.data.groups)
    except ValueError:  # no resample with a positive case (tiny smoke sets)
        return float("nan"), float("nan")
    return ci.low, ci.high


def table1(datas: Mapping[str, ScanData] | Sequence[ScanData]) -> pd.DataFrame:
    """Table 1: patients, scans, labels, slices per scan, positives per label (sequence level)."""
    rows: dict[str, dict[str, Any]] = {}
    for d in as_list(datas):
        col = LAYOUT_LABEL[d.name]
        lengths = np.diff(d.offsets)
        items = {"Patients": len(np.unique(d.groups)), "Scans": d.n_scans,
                 "Diseases (labels)": len(d.classes),
                 "Slices per scan": f"{lengths.min()}-{lengths.max()}",
                 "After sampling": d.seq_len}
        pos = np.nansum(d.labels, axis=0).astype(int)
        items.update({label_name(d.name, cls): int(p) for cls, p in zip(d.classes, pos)})
        for row, value in items.items():
            rows.setdefault(row, {})[col] = value
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "item"
    return frame.reset_index().fillna("")


def table2(cvs: Mapping[str, CVResult] | Sequence[CVResult]) -> pd.DataFrame:
    """Table 2: MSE vs BCE for the primary and APS losses (DrCT2)."""
    rows = []
    for cv in as_list(cvs):
        for v, loss in (("drct2_bce", "BCE"), ("drct2", "MSE")):
            if v in cv.scores:
                rows.append({"model": "DrCT2", "dataset": LAYOUT_LABEL[cv.name],
                             "loss_primary_aps": loss, **paper_units(cv.metrics(v))})
    return pd.DataFrame(rows)


def table3(exp: Experiment | None, cvs: Mapping[str, CVResult] | Sequence[CVResult],
           seed: int | None = None) -> pd.DataFrame:
    """Table 3: DrCT1 vs DrCT2 on each dataset, with patient-bootstrap 95% CIs of F1 and the
    macro ROC AUC (not in the paper). Seed: `seed`, else the experiment's, else 0."""
    seed = seed if seed is not None else (exp.seed if exp is not None else 0)
    rows = []
    for cv in as_list(cvs):
        for v, label in (("drct1", "DrCT1"), ("drct2", "DrCT2")):
            lo, hi = f1_ci(cv, v, int(cv.settings.n_boot), seed)
            rows.append({"dataset": LAYOUT_LABEL[cv.name], "model": label,
                         **paper_units(cv.metrics(v)),
                         "f1_ci_low": round(lo, 4), "f1_ci_high": round(hi, 4),
                         "auc_macro": round(macro_auc(cv.data.labels, cv.scores[v]), 4)})
    return pd.DataFrame(rows)


def feature_norm_table(cvs: Mapping[str, CVResult] | Sequence[CVResult]) -> pd.DataFrame:
    """DrCT2 with the run's feature standardisation choice vs the other one (eq. 3 reads raw
    z; standardising it first is our deviation): macro P/R/F1 and macro ROC AUC."""
    rows = []
    for cv in as_list(cvs):
        if "drct2_norm_ablation" not in cv.scores:
            continue
        std = bool(cv.settings.feature_standardize)
        for v, on in (("drct2", std), ("drct2_norm_ablation", not std)):
            rows.append({"dataset": LAYOUT_LABEL[cv.name], "model": "DrCT2",
                         "z_before_softmax": "standardised (deviation)" if on
                         else "raw, as eq. 3",
                         **paper_units(cv.metrics(v)),
                         "auc_macro": round(macro_auc(cv.data.labels, cv.scores[v]), 4)})
    return pd.DataFrame(rows)


def table4(cv: CVResult) -> pd.DataFrame:
    """Table 4 (CQ500): resolution strategies."""
    s = cv.settings
    win = ", ".join(f"positions {a + 1}-{b}" for a, b in sorted(set(cv.windows.values())))
    base, zoom = s.image_size, s.zoom_size
    spec = [
        ("drct1", "DrCT1", "Original", f"Primary: {base}x{base}"),
        ("drct1_highres", "DrCT1", "High-resolution input", f"Primary: {zoom}x{zoom}"),
        ("drct1_model_fusion", "DrCT1", "Model fusion",
         f"Primary: {base}x{base}, {zoom}x{zoom} at {win} of {cv.data.seq_len}"),
        ("drct2_aps_base", "DrCT2", "With APS", f"Primary: {base}x{base}; APS: {base}x{base}"),
        ("drct2", "DrCT2", "With APS", f"Primary: {base}x{base}; APS: {zoom}x{zoom}"),
    ]
    return pd.DataFrame([{"model": m, "dataset": LAYOUT_LABEL[cv.name], "strategy": st,
                          "input_resolution": res, **paper_units(cv.metrics(v))}
                         for v, m, st, res in spec if v in cv.scores])


def random_attention(shape: tuple[int, int], draws: int, seed: int) -> list[np.ndarray]:
    """`draws` seeded random slice rankings (the chance level of the key-slice tables)."""
    rng = np.random.default_rng([seed, 5])
    return [rng.random(shape) for _ in range(draws)]


def table5(cv: CVResult, draws: int = 20, seed: int = 0) -> pd.DataFrame:
    """Table 5: the three key-slice tasks, DrCT1 vs DrCT2 (key = per-slice 'any' labels),
    beside the chance level of random slice rankings (mean of `draws` seeded draws; not in
    the paper, added to read the numbers). Slices repeated in a short scan's sequence count
    once (`cv.positions`)."""
    key, pos = cv.key("any"), cv.positions
    rand = random_attention(key.shape, draws, seed)
    rows = []
    for task in TASKS:
        a1, n = key_slice_task(cv.attention["drct1"], key, task, pos)
        a2, _ = key_slice_task(cv.attention["drct2"], key, task, pos)
        chance = (np.mean([key_slice_task(r, key, task, pos)[0] for r in rand]) if n
                  else np.nan)
        rows.append({"task": f"{task.capitalize()} task", "scans": n,
                     "DrCT1_%": round(a1, 2), "DrCT2_%": round(a2, 2),
                     "random_ranking_%": round(float(chance), 2)})
    return pd.DataFrame(rows)


def table6_classes(cv: CVResult) -> list[str]:
    """Table 6's labels: the paper's order, then any other label of the dataset."""
    order = [c for c in TABLE6_ORDER if c in cv.data.classes]
    return order + [c for c in cv.data.classes if c not in order]


def table6(cv: CVResult) -> pd.DataFrame:
    """Table 6: key-slice accuracy per disease (slice-weighted recall in the top-h)."""
    rows = []
    rand = random_attention(cv.positions.shape, 20, 0)
    for cls in table6_classes(cv):
        key, pos = cv.key(cls), cv.positions
        a1, amount = key_slice_recall(cv.attention["drct1"], key, pos)
        a2, _ = key_slice_recall(cv.attention["drct2"], key, pos)
        chance = (np.mean([key_slice_recall(r, key, pos)[0] for r in rand]) if amount
                  else np.nan)
        rows.append({"disease": RSNA_SHORT.get(cls, cls), "amount_slices": amount,
                     "DrCT1_accuracy_%": round(a1, 2), "DrCT2_accuracy_%": round(a2, 2),
                     "random_ranking_%": round(float(chance), 2)})
    return pd.DataFrame(rows)


def table7(cv: CVResult) -> pd.DataFrame:
    """Table 7: slice-level baseline (any slice positive) vs DrCT1 and DrCT2."""
    spec = (("slice_baseline", "Slice-level baseline (RSNA-1 stand-in)"), ("drct1", "DrCT1"),
            ("drct2", "DrCT2"))
    return pd.DataFrame([{"dataset": LAYOUT_LABEL[cv.name], "model": label,
                          **paper_units(cv.metrics(v))} for v, label in spec if v in cv.scores])


def table8(cv: CVResult, seconds_per_scan: float) -> pd.DataFrame:
    """Table 8: the reader study as reported (from the claims registry), DrCT2 from here."""
    claims = load_claims(PAPER)
    values = dict(zip(claims["claim_id"], claims["value"]))
    items = [("Precision", "precision"), ("Recall", "recall"), ("F1-score", "f1"),
             ("Confidence", "confidence"), ("Total time (s)", "total_time"),
             ("Time/scan (s)", "time_per_scan")]
    met = cv.metrics("drct2")
    n = cv.data.n_scans
    ours = {"precision": round(met["precision"], 4), "recall": round(met["recall"], 4),
            "f1": round(met["f1"], 4), "confidence": "",
            "total_time": round(seconds_per_scan * n, 2),
            "time_per_scan": round(seconds_per_scan, 3)}
    rows = []
    for label, metric in items:
        row: dict[str, Any] = {"item": label}
        for r, e, col in READERS:
            row[f"{col} (reported)"] = values.get(f"table8/{r}/{e}/{metric}", "")
        row["DrCT2 (reported)"] = values.get(f"table8/drct2/{metric}", "")
        row["this run"] = ours[metric]
        rows.append(row)
    scans = values.get("text/reader_study/scans", "")
    rows.append({"item": "Scans", **{f"{c} (reported)": scans for _, _, c in READERS},
                 "DrCT2 (reported)": scans, "this run": n})
    return pd.DataFrame(rows)


def per_class_accuracy(cv: CVResult, variant: str) -> pd.Series:
    """Accuracy per label at threshold 0.5 (Fig. 8), NaN labels ignored."""
    y, p = cv.data.labels, cv.scores[variant] >= 0.5
    acc = [float(np.mean(p[~np.isnan(y[:, j]), j] == (y[~np.isnan(y[:, j]), j] > 0)))
           for j in range(y.shape[1])]
    return pd.Series(acc, index=list(cv.data.classes), name=variant)


def _ttest_row(scope: str, metric: str, va: np.ndarray, vb: np.ndarray) -> dict[str, Any]:
    ok = np.isfinite(va) & np.isfinite(vb)
    row = {"scope": scope, "metric": metric, "folds": int(ok.sum()),
           "DrCT1_mean": round(float(np.mean(vb[ok])), 4) if ok.any() else np.nan,
           "DrCT2_mean": round(float(np.mean(va[ok])), 4) if ok.any() else np.nan}
    if ok.sum() >= 2 and np.any(va[ok] != vb[ok]):
        res = paired_t_test(va[ok], vb[ok])
        row.update(mean_difference=round(res.mean_difference, 4), t=round(res.t, 3),
                   p_value=round(res.p_value, 5))
    else:
        row.update(mean_difference=np.nan, t=np.nan, p_value=np.nan)
    return row


def ttest_folds(cvs: Mapping[str, CVResult] | Sequence[CVResult]) -> pd.DataFrame:
    """DrCT2 vs DrCT1 per-fold macro metrics: paired t-test per dataset and pooled."""
    cvs = as_list(cvs)
    fm = pd.concat([cv.fold_metrics for cv in cvs], ignore_index=True)
    scopes = [(LAYOUT_LABEL[cv.name], [cv.name]) for cv in cvs]
    if len(cvs) > 1:
        scopes.append(("pooled", [cv.name for cv in cvs]))
    rows = []
    for scope, names in scopes:
        sub = fm[fm["dataset"].isin(names)]
        a = sub[sub["model"] == "drct2"].sort_values(["dataset", "fold"])
        b = sub[sub["model"] == "drct1"].sort_values(["dataset", "fold"])
        for metric in ("precision", "recall", "f1"):
            rows.append(_ttest_row(scope, metric, a[metric].to_numpy(), b[metric].to_numpy()))
    return pd.DataFrame(rows)


def fig6_table(cv: CVResult) -> pd.DataFrame:
    """Macro F1 by m_key for attention-chosen vs random APS slices (Fig. 6 data).

    At m_key = sequence length both choices read every slice, in slice order: the same model,
    trained once (``random_f1`` is the attention model's, `same_slices` True)."""
    rows = []
    for k in cv.settings.fig6_m_keys:
        att = "drct2" if k == min(cv.settings.m_key, cv.data.seq_len) else f"drct2_k{k}"
        every = k >= cv.data.seq_len
        rnd = att if every else f"drct2_random_k{k}"
        if att in cv.scores and rnd in cv.scores:
            rows.append({"m_key": k, "attention_f1": round(cv.metrics(att)["f1"], 4),
                         "random_f1": round(cv.metrics(rnd)["f1"], 4), "same_slices": every})
    return pd.DataFrame(rows, columns=["m_key", "attention_f1", "random_f1", "same_slices"])


def top5_positions(cv: CVResult, variant: str = "drct2") -> tuple[np.ndarray, int]:
    """Counts of 0-based sequence positions among the top-5 attended slices over scans with
    any positive label, and the number of such scans (Fig. 7)."""
    diseased = np.nan_to_num(cv.data.labels).max(axis=1) > 0
    att = cv.attention[variant][diseased]
    m = att.shape[1]
    top = np.argsort(-att, axis=1, kind="stable")[:, :min(5, m)]
    return np.bincount(top.ravel(), minlength=m), int(diseased.sum())


def predictions_frame(cv: CVResult, variants: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-case out-of-fold predictions: case_id, label_<c>, score_<c>, fold, model."""
    frames = []
    for v in variants or list(cv.scores):
        df = pd.DataFrame({"case_id": cv.data.case_ids})
        for j, c in enumerate(cv.data.classes):
            df[f"label_{c}"] = cv.data.labels[:, j]
            df[f"score_{c}"] = cv.scores[v][:, j]
        df["fold"] = cv.fold_of
        df["model"] = v
        frames.append(df)
    return pd.concat(frames, ignore_index=True)
