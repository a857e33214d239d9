"""Put measured numbers beside the paper's claims, with a status per claim.

The status depends on the claim's kind (`brainlib.claims.schema.KINDS`) and on whether the
measurements were made on real data (``synthetic=False``) or on phantoms (the default:
nothing is graded against the paper unless the caller says the data are real).

* ``setting``: ``as in paper`` when the value we used equals the paper's within its printed
  rounding, else ``changed``, with the note ``(<profile>: <value>, <measured note>)`` (the
  measured note carries the reason). Settings are never evidence about the paper.
* ``data`` and ``result``:
    - synthetic: ``phantom run`` (value and CI shown, never graded);
    - real, with a 95 % CI: ``consistent`` when the paper's value, widened by its printed
      rounding, lies inside the CI, else ``differs``;
    - real, no CI: ``consistent`` when the point value equals the paper's within its printed
      rounding. Otherwise a ``data`` statistic (a count or proportion computed from the whole
      data set, with no sampling noise to allow for) ``differs``, while a ``result`` (a metric
      of a trained model, which varies with seed and test sample) is ``inconclusive``:
      without an interval nobody can say whether the gap exceeds run-to-run noise.
* ``comparison`` ("A beats B"; the measurement is the paired difference A - B with its CI
  and, ideally, the paired test's ``p_value``):
    - synthetic: ``phantom run``; the note gives the measured direction and p-value
      ("measured a > b, p = 0.03 ...");
    - real: ``supported`` when significant (p < 0.05, or the CI excludes 0 when no p-value
      is given) with the paper's sign, ``contradicted`` when significant with the opposite
      sign, ``inconclusive`` otherwise (not significant, or nothing to judge by).
* ``external`` (another paper's or a reader study's number): ``quoted, not re-run``, whatever
  was measured.
* A claim flagged ``not_reproducible`` (private data, another group's model) is ``not
  reproducible offline`` (an external one stays ``quoted, not re-run``); the reason is in the
  note and a measurement, if any, is shown for reference only. Settings are graded
  ``as in paper`` / ``changed`` even then: the setting is what our own run used.
* No measurement: ``not run``.

`EVIDENCE_STATUSES` are the statuses that say something about the paper; they can only come
from ``synthetic=False``.

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

from brainlib.claims.schema import PROPORTION_UNITS, UNITS, Claim, ClaimsError, PaperClaims, load_paper

COMPARE_COLUMNS = ["claim_id", "source", "row", "metric", "paper_value", "measured_value",
                   "ci_low", "ci_high", "delta", "status", "unit", "kind", "dataset",
                   "data_source", "note"]
#: Every status `compare` gives, in report order.
STATUSES = ("as in paper", "changed", "phantom run", "consistent", "differs", "inconclusive",
            "supported", "contradicted", "quoted, not re-run", "not reproducible offline", "not run")
#: Statuses that are evidence for or against the paper (only ever given on real data).
EVIDENCE_STATUSES = frozenset({"consistent", "differs", "supported", "contradicted"})
ALPHA = 0.05
_EPS = 1e-12


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _text(x: Any) -> str | None:
    """A cell as text, None for missing (None or NaN)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return str(x)


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
    """The paper's number; for a comparison with two numeric sides, a - b in a's unit."""
    if claim.kind != "comparison":
        return claim.value if claim.value is not None else float("nan")
    a, b = by_id.get(claim.a), by_id.get(claim.b)
    if a is None or b is None or a.value is None or b.value is None:
        return claim.value if claim.value is not None else float("nan")
    return a.value - b.value * b.scale / a.scale


def _g(x: float) -> str:
    return f"{x:.4g}"


def _ci_text(lo: float, hi: float) -> str:
    return "" if math.isnan(lo) or math.isnan(hi) else f", 95% CI [{_g(lo)}, {_g(hi)}]"


def _setting_status(claim: Claim, value: float, profile: str | None, m_note: str | None) -> tuple[str, str]:
    """`as in paper` or `changed`; a change is noted as "(<profile>: <value>, <reason>)"."""
    paper = claim.value if claim.value is not None else float("nan")
    if abs(value - paper) <= claim.tolerance + 1e-9 * max(1.0, abs(paper)):
        return "as in paper", ""
    shown = f"{value:g}{' %' if claim.unit == 'percent' else ''}"
    head = f"{profile}: {shown}" if profile else shown
    return "changed", f"({head}{', ' + m_note if m_note else ''})"


def _value_status(claim: Claim, paper_value: float, value: float, lo: float, hi: float) -> tuple[str, str]:
    """`consistent` / `differs` / `inconclusive` for a data statistic or result on real data."""
    tol = claim.tolerance
    if math.isnan(lo) or math.isnan(hi):
        if abs(value - paper_value) <= tol + _EPS:
            return "consistent", "point value equals the paper's within its printed rounding (no CI)"
        if claim.kind == "data":
            return "differs", "point value differs beyond the printed rounding (a data statistic: no CI needed)"
        return "inconclusive", "point value differs but no CI to judge the gap against run-to-run noise"
    lo_i, hi_i = min(lo, hi), max(lo, hi)
    ok = (paper_value + tol) >= lo_i - _EPS and (paper_value - tol) <= hi_i + _EPS
    return ("consistent" if ok else "differs"), ""


def _comparison_status(claim: Claim, value: float, lo: float, hi: float, p: float) -> tuple[str, str]:
    """`supported` / `contradicted` / `inconclusive` from the paired test on real data."""
    want = 1.0 if claim.direction == "greater" else -1.0
    if not math.isnan(p):
        significant, how = p < ALPHA, f"paired test p = {p:.3g}"
    elif not (math.isnan(lo) or math.isnan(hi)):
        excludes = lo > 0 or hi < 0
        significant = excludes
        how = f"95% CI [{_g(lo)}, {_g(hi)}] {'excludes' if excludes else 'includes'} 0"
    else:
        return "inconclusive", "no p-value or CI for the paired difference"
    if math.isnan(value) or value == 0 or not significant:
        return "inconclusive", f"not significant ({how})"
    agrees = value * want > 0
    return ("supported" if agrees else "contradicted"), \
        f"measured difference {'has' if agrees else 'reverses'} the paper's direction ({how})"


def _phantom_comparison_note(value: float, lo: float, hi: float, p: float) -> str:
    """Measured direction and p-value of a comparison run on phantoms (not a verdict)."""
    sign = ">" if value > 0 else "<" if value < 0 else "="
    p_text = f"p = {p:.3g}" if not math.isnan(p) else "no p-value"
    return f"measured a {sign} b, {p_text} (a - b = {_g(value)}{_ci_text(lo, hi)}) on phantoms"


def _measurement(c: Claim, m: dict[str, Any], by_id: dict[str, Claim], paper: str) -> tuple[float, float, float, float]:
    """(value, ci_low, ci_high, p_value) of one measured row, in the claim's unit."""
    ref = by_id.get(c.a, c) if c.kind == "comparison" else c
    raw = [_num(m.get("value")), _num(m.get("ci_low")), _num(m.get("ci_high"))]
    value, lo, hi = _to_claim_unit(raw, _text(m.get("unit")), ref, f"{paper}: measured {c.id!r}")
    return value, lo, hi, _num(m.get("p_value"))


def _status(c: Claim, pc: PaperClaims, m: dict[str, Any] | None, value: float, lo: float, hi: float,
            p: float, paper_value: float, synthetic: bool, profile: str | None) -> tuple[str, list[str], list[str]]:
    """(status, notes before the claim's note, notes after it) of one claim."""
    m_note = _text(m.get("note")) if m is not None else None
    if c.kind == "external":
        return "quoted, not re-run", [], ([f"measured {_g(value)} shown for reference only"]
                                           if m is not None and not math.isnan(value) else [])
    if c.not_reproducible is not None and c.kind != "setting":  # a setting is what we run
        after = [m_note] if m_note else []
        if m is not None:
            after.append("measured value shown for reference only")
        return "not reproducible offline", [pc.reasons[c.not_reproducible]], after
    if m is None or math.isnan(value):
        return "not run", [], []
    if c.kind == "setting":
        status, why = _setting_status(c, value, profile, m_note)
        return status, ([why] if why else []), ([m_note] if m_note and status == "as in paper" else [])
    after = [m_note] if m_note else []
    if c.kind == "comparison":
        if synthetic:
            status, why = "phantom run", _phantom_comparison_note(value, lo, hi, p)
        else:
            status, why = _comparison_status(c, value, lo, hi, p)
        after.append(why)
        if c.p_value is not None:
            after.append(f"paper's p = {c.p_value:g}")
        return status, [], after
    if synthetic:
        return "phantom run", [], after
    status, why = _value_status(c, paper_value, value, lo, hi)
    return status, [], after + ([why] if why else [])


def compare(paper: str | Path, measured: pd.DataFrame, data_source: str, *,
            synthetic: bool = True, profile: str | None = None) -> pd.DataFrame:
    """Every claim of `paper` beside its measurement, with a status (see the module docstring).

    Args:
        paper: a key of `brainlib.PAPERS` or a path to a claims YAML.
        measured: columns claim_id, value, ci_low, ci_high (+ optional p_value, note, unit).
        data_source: what the measurements were run on (e.g. "phantom (synthetic RSNA
            layout)" or "real: /data/rsna"); repeated on every row.
        synthetic: True unless the data are known to be real. Results, data statistics and
            comparisons measured on synthetic data are ``phantom run``, never graded.
        profile: the run profile (``smoke``, ``quick``, ``full``), named in the note of a
            ``changed`` setting.

    Returns:
        One row per claim of the paper, columns `COMPARE_COLUMNS`; ``status`` is one of
        `STATUSES`.

    Raises:
        ClaimsError: unknown or duplicate claim ids, missing columns, or a unit mismatch.
    """
    pc = load_paper(paper)
    by_id = pc.by_id
    measured = _validate_measured(measured, pc.paper, set(by_id))
    rows_by_id = {str(r["claim_id"]): r for r in measured.to_dict("records")}
    out: list[dict[str, Any]] = []
    for c in pc.claims:
        m = rows_by_id.get(c.id)
        paper_value = _paper_value(c, by_id)
        unit = by_id[c.a].unit if c.kind == "comparison" and c.a in by_id else c.unit
        value = lo = hi = p = float("nan")
        if m is not None:
            value, lo, hi, p = _measurement(c, m, by_id, pc.paper)
        status, before, after = _status(c, pc, m, value, lo, hi, p, paper_value, synthetic, profile)
        notes = before + ([c.note] if c.note else []) + after
        delta = value - paper_value if not (math.isnan(value) or math.isnan(paper_value)) else float("nan")
        out.append({
            "claim_id": c.id, "source": c.source, "row": c.row, "metric": c.metric,
            "paper_value": paper_value, "measured_value": value, "ci_low": lo, "ci_high": hi,
            "delta": delta, "status": status, "unit": unit, "kind": c.kind, "dataset": c.dataset,
            "data_source": data_source, "note": "; ".join(n for n in notes if n),
        })
    frame = pd.DataFrame(out, columns=COMPARE_COLUMNS)
    for col in ("paper_value", "measured_value", "ci_low", "ci_high", "delta"):
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


__all__ = ["ALPHA", "COMPARE_COLUMNS", "EVIDENCE_STATUSES", "STATUSES", "compare", "measured_frame"]
