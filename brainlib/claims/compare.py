"""Put measured numbers beside the paper's claims, with a status per claim.

Status of a numeric claim (kind ``value`` or ``setting``):
  * ``consistent``: the paper's value (widened by its printed rounding) lies inside our 95 % CI
    (or equals our point value within that rounding when no CI is given);
  * ``differs``: it does not;
  * ``not run``: no measurement for this claim;
  * ``not reproducible offline``: the claim rests on something no offline run can regenerate
    (a human reader study, a private data set, another group's model); the reason is in
    ``note``. A measurement given for such a claim is shown for reference only.

Status of a comparative claim ("A is better than B"): the measurement is the paired
difference A - B (its value, CI and, ideally, the paired test's ``p_value``):
  * ``consistent``: significant (p < 0.05, or the CI excludes 0 when no p-value is given)
    with the paper's sign;
  * ``differs``: significant with the opposite sign;
  * ``inconclusive``: not significant, or no p-value and no CI to judge by.

Units: a measured value is taken to be on the fraction scale for ``fraction`` and ``percent``
claims (metrics return fractions); it is converted to the claim's unit for display (percent
claims show 93.1, not 0.931). Give a ``unit`` column in `measured` to say otherwise.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainlib.claims.schema import PROPORTION_UNITS, Claim, ClaimsError, UNITS, load_paper

COMPARE_COLUMNS = ["claim_id", "source", "row", "metric", "paper_value", "reproduced_value",
                   "ci_low", "ci_high", "delta", "status", "unit", "kind", "dataset",
                   "data_source", "note"]
STATUSES = ("consistent", "differs", "inconclusive", "not run", "not reproducible offline")
ALPHA = 0.05


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def _to_claim_unit(values: list[float], measured_unit: str | None, claim: Claim, where: str) -> list[float]:
    """Convert measured numbers to the claim's unit (only proportions need converting)."""
    if claim.unit not in PROPORTION_UNITS:
        if measured_unit not in (None, "", claim.unit):
            raise ClaimsError(f"{where}: measured unit {measured_unit!r} cannot be compared "
                              f"with claim unit {claim.unit!r}")
        return values
    unit = measured_unit or "fraction"
    if unit not in PROPORTION_UNITS:
        raise ClaimsError(f"{where}: measured unit {unit!r} is not a proportion but the claim is {claim.unit!r}")
    if unit == "fraction" and not measured_unit:
        big = [v for v in values if not math.isnan(v) and abs(v) > 1.0 + 1e-9]
        if big:
            raise ClaimsError(f"{where}: value {big[0]} > 1 for a proportion; measured values are "
                              "fractions by default (pass unit='percent' if they are percent)")
    factor = (100.0 if claim.unit == "percent" else 1.0) / (100.0 if unit == "percent" else 1.0)
    return [v * factor for v in values]


def _validate_measured(measured: pd.DataFrame, paper: str, ids: set[str]) -> pd.DataFrame:
    if not isinstance(measured, pd.DataFrame):
        raise ClaimsError(f"{paper}: measured must be a pandas DataFrame, got {type(measured).__name__}")
    missing = {"claim_id", "value", "ci_low", "ci_high"} - set(measured.columns)
    if missing:
        raise ClaimsError(f"{paper}: measured lacks columns {sorted(missing)}")
    unknown = sorted(set(measured["claim_id"].astype(str)) - ids)
    if unknown:
        raise ClaimsError(f"{paper}: measured has unknown claim ids {unknown}; "
                          f"see brainlib/claims/{paper}.yaml for the registered ids")
    dup = measured["claim_id"][measured["claim_id"].duplicated()].tolist()
    if dup:
        raise ClaimsError(f"{paper}: measured has duplicate claim ids {sorted(set(dup))}")
    if "unit" in measured.columns:
        bad = sorted(set(measured["unit"].dropna()) - set(UNITS))
        if bad:
            raise ClaimsError(f"{paper}: measured has unknown units {bad}")
    return measured


def _paper_value(claim: Claim, by_id: dict[str, Claim]) -> float:
    if claim.kind != "comparison":
        return claim.value if claim.value is not None else float("nan")
    a, b = by_id.get(claim.a), by_id.get(claim.b)
    if a is None or b is None or a.value is None or b.value is None:
        return claim.value if claim.value is not None else float("nan")
    return a.value - b.value * b.scale / a.scale  # in a's unit


def _comparison_status(claim: Claim, value: float, lo: float, hi: float, p: float) -> tuple[str, str]:
    want = 1.0 if claim.direction == "greater" else -1.0
    if not math.isnan(p):
        significant, how = p < ALPHA, f"paired test p = {p:.3g}"
    elif not (math.isnan(lo) or math.isnan(hi)):
        significant, how = (lo > 0 or hi < 0), f"95% CI [{lo:.4g}, {hi:.4g}] {'excludes' if (lo > 0 or hi < 0) else 'includes'} 0"
    else:
        return "inconclusive", "no p-value or CI for the paired difference"
    if math.isnan(value) or value == 0 or not significant:
        return "inconclusive", f"not significant ({how})"
    agrees = value * want > 0
    return ("consistent" if agrees else "differs"), \
        f"measured difference {'has' if agrees else 'reverses'} the paper's direction ({how})"


def compare(paper: str | Path, measured: pd.DataFrame, data_source: str) -> pd.DataFrame:
    """Every claim of `paper` beside its measurement from `measured` (see module docstring).

    `measured` has columns claim_id, value, ci_low, ci_high (+ optional p_value, note, unit);
    `data_source` says what the measurements were run on (e.g. "phantom (synthetic RSNA
    layout)" or "real: /data/rsna") and is repeated on every row.
    """
    pc = load_paper(paper)
    by_id = pc.by_id
    measured = _validate_measured(measured, pc.paper, set(by_id))
    rows_by_id = {str(r["claim_id"]): r for r in measured.to_dict("records")}
    out: list[dict[str, Any]] = []
    for c in pc.claims:
        m = rows_by_id.get(c.id)
        paper_value = _paper_value(c, by_id)
        unit = c.unit
        if c.kind == "comparison" and c.a in by_id:
            unit = by_id[c.a].unit
        notes = [c.note] if c.note else []
        value = lo = hi = p = float("nan")
        if m is not None:
            ref = by_id.get(c.a) if c.kind == "comparison" and c.a in by_id else c
            scale_ref = ref if ref is not None else c
            raw = [_num(m.get("value")), _num(m.get("ci_low")), _num(m.get("ci_high"))]
            mu = m.get("unit")
            mu = None if mu is None or (isinstance(mu, float) and math.isnan(mu)) else str(mu)
            value, lo, hi = _to_claim_unit(raw, mu, scale_ref, f"{pc.paper}: measured {c.id!r}")
            p = _num(m.get("p_value"))
            if m.get("note") is not None and not (isinstance(m.get("note"), float) and math.isnan(m["note"])):
                notes.append(str(m["note"]))
        if c.not_reproducible is not None:
            status = "not reproducible offline"
            notes.insert(0, pc.reasons[c.not_reproducible])
            if m is not None:
                notes.append("measured value shown for reference only")
        elif m is None or math.isnan(value):
            status = "not run"
        elif c.kind == "comparison":
            status, why = _comparison_status(c, value, lo, hi, p)
            notes.append(why)
            if c.p_value is not None:
                notes.append(f"paper's p = {c.p_value:g}")
        else:
            tol = c.tolerance
            if math.isnan(lo) or math.isnan(hi):
                lo_i, hi_i = value, value
            else:
                lo_i, hi_i = min(lo, hi), max(lo, hi)
            ok = (paper_value + tol) >= lo_i - 1e-12 and (paper_value - tol) <= hi_i + 1e-12
            status = "consistent" if ok else "differs"
        delta = value - paper_value if not (math.isnan(value) or math.isnan(paper_value)) else float("nan")
        out.append({
            "claim_id": c.id, "source": c.source, "row": c.row, "metric": c.metric,
            "paper_value": paper_value, "reproduced_value": value, "ci_low": lo, "ci_high": hi,
            "delta": delta, "status": status, "unit": unit, "kind": c.kind, "dataset": c.dataset,
            "data_source": data_source, "note": "; ".join(n for n in notes if n),
        })
    frame = pd.DataFrame(out, columns=COMPARE_COLUMNS)
    for col in ("paper_value", "reproduced_value", "ci_low", "ci_high", "delta"):
        frame[col] = frame[col].astype(float)
    return frame


def measured_frame(rows: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """An empty (or filled) `measured` table with the expected columns, for notebooks."""
    cols = ["claim_id", "value", "ci_low", "ci_high", "p_value", "note"]
    frame = pd.DataFrame(rows or [], columns=cols if not rows else None)
    for col in cols:
        if col not in frame.columns:
            frame[col] = np.nan
    return frame
