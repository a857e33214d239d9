"""Audit of a paper's internal arithmetic, from its own claims (no data needed).

Each check in the ``checks:`` list of a claims file states a relation the printed numbers must
satisfy (an average equals the mean of its parts, F1 equals 2PR/(P+R), the same model has the
same numbers in two tables, Table 2 of He et al. follows their eq. 3.1, ...). Comparative
claims with two numeric sides are also checked for their direction. Each check is
``consistent``/``ok`` or ``inconsistent`` (the ``status`` column).

Rounding is respected by interval arithmetic: a value printed as 0.923 stands for
[0.9225, 0.9235]; a derived quantity is evaluated at every corner of its inputs' intervals
(exact for the sums, means, differences, ratios of positives and F1 used here, which are
monotone in each input) and a check passes when the stated interval and the computed
interval overlap. Percent values are compared on the fraction scale.

Ranking the findings. Every row carries ``size``: |stated - computed| in the paper's own units
of the stated claim (percentage points for a percent claim, scans for a count, ...), and
``relative_size`` = size / max(|stated|, |computed|), which orders findings of different units.
An inconsistency is then put in one of two groups (column ``group``), decided by these rules
(column ``explained_by`` names the rule that applies, ``rule`` shows the numbers):

* ``rounding``: the gap between the stated and the computed intervals is at most one unit of
  the last digit the paper prints for the stated value (e.g. 0.01 for 78.69 %): truncating
  instead of rounding, or rounding an intermediate value, produces such gaps.
* ``macro averaging`` (F1 checks): if the printed precision P, recall R and F1 are macro
  averages over classes (the multi-class tables of every paper here), the printed F1 is the
  mean of per-class harmonic means H(p_k, r_k), not H(P, R) = 2PR/(P+R). Bounds on it:
  - upper: H is concave (a power mean of exponent -1), so by Jensen
    mean_k H(p_k, r_k) <= H(mean p, mean r) = 2PR/(P+R);
  - lower: H(p, r) >= min(p, r) >= p + r - 1 for p, r in [0, 1], so mean_k H >= P + R - 1.
  A stated F1 (with its rounding) inside [P + R - 1, 2PR/(P+R)] (with theirs) is explainable
  by macro averaging; above 2PR/(P+R) no averaging of per-class F1 can produce it (the same
  Jensen bound holds for weighted and per-fold averages). The ``rule`` column also gives the
  per-class spread the explanation needs: with m = (P + R)/2 and gap G = 2PR/(P+R) - F1,
  H(p, r) = (p + r)/2 - (p - r)^2 / (2 (p + r)) gives an RMS per-class |p - r| of about
  sqrt(4 m G + (P - R)^2); a spread of 0.15 or more is possible but says the classes differ
  a lot.

Findings no rule explains form the ``discrepancy`` group; `audit` returns it first, each group
ordered by ``relative_size`` (largest first), and `format_findings` prints the groups under
their own headings.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from brainlib._atomic import atomic_write
from brainlib.claims.findings import format_findings, rank  # noqa: F401 (format_findings re-exported)
from brainlib.claims.formula import parse_formula
from brainlib.claims.intervals import (cohen_kappa, corners, fmt, interval_text, macro_rule,
                                       rounding_rule)
from brainlib.claims.schema import Claim, PaperClaims, load_paper
from brainlib.report.tables import to_csv_text

AUDIT_COLUMNS = ["check", "kind", "severity", "status", "group", "size", "unit", "relative_size",
                 "explained_by", "claims", "stated", "computed", "stated_interval",
                 "computed_interval", "tolerance", "detail", "rule", "note"]
#: Rules that can explain a finding (see the module docstring).
EXPLANATIONS = ("rounding", "macro averaging")


class _Auditor:
    def __init__(self, pc: PaperClaims) -> None:
        self.pc = pc
        self.by_id = pc.by_id
        self.rows: list[dict[str, Any]] = []
        self.decimals: int | None = None  # a check's assumed precision, overriding the printed one

    # -- helpers -----------------------------------------------------------------------------
    def interval(self, ref: Any, exact: bool = False) -> tuple[float, float]:
        if isinstance(ref, (int, float)) and not isinstance(ref, bool):
            return float(ref), float(ref)
        claim = self.by_id[ref]
        if exact:
            v = claim.value * claim.scale
            return v, v
        return claim.interval(self.decimals)

    def stated(self, ref: str) -> str:
        c = self.by_id[ref]
        text = c.printed if c.printed is not None else fmt(c.value)
        if self.decimals is not None and c.value is not None:
            text = f"{c.value:.{max(self.decimals, 0)}f}"
        return f"{text} {'%' if c.unit == 'percent' else ''}".strip()

    def add(self, *, check: str, kind: str, severity: str, ok: bool, claims: Sequence[str],
            stated: str, computed: float, stated_iv: tuple[float, float],
            computed_iv: tuple[float, float], detail: str, note: str = "",
            unit: str = "", magnitude: float | None = None) -> None:
        """One checked relation; `stated_iv`, `computed`, `computed_iv` in the paper's units.

        `magnitude` scales ``relative_size`` when there is no stated interval (a direction).
        """
        tol = (stated_iv[1] - stated_iv[0]) / 2 + (computed_iv[1] - computed_iv[0]) / 2
        if math.isnan(stated_iv[0]):  # a direction: the size is the reversed difference itself
            size = abs(computed)
            magnitude = abs(computed) if magnitude is None else magnitude
        else:
            mid = (stated_iv[0] + stated_iv[1]) / 2
            size, magnitude = abs(mid - computed), max(abs(mid), abs(computed))
        explained_by, rule = "", ""
        if not ok:
            explained_by, rule = rounding_rule(stated_iv, computed_iv)
        self.rows.append({
            "check": check, "kind": kind, "severity": severity,
            "status": "ok" if ok else "inconsistent",
            "group": "" if ok else ("explainable" if explained_by else "discrepancy"),
            "size": size, "unit": unit,
            "relative_size": size / magnitude if magnitude > 0 else 0.0,
            "explained_by": explained_by, "claims": ", ".join(claims),
            "stated": stated, "computed": fmt(computed),
            "stated_interval": interval_text(*stated_iv), "computed_interval": interval_text(*computed_iv),
            "tolerance": fmt(tol), "detail": detail, "rule": rule, "note": note,
        })

    def relation(self, *, check: str, kind: str, severity: str, target: str,
                 inputs: dict[str, Any], fn: Callable[[dict[str, float]], float],
                 describe: str, note: str = "", exact: Sequence[str] = (),
                 relation: str = "eq") -> None:
        """Target claim vs fn(inputs), both as intervals; inputs map names to ids/numbers.

        relation "eq": the intervals overlap; "le": target <= fn possible; "ge": target >= fn.
        """
        intervals = {n: self.interval(ref, exact=n in exact) for n, ref in inputs.items()}
        centre, lo, hi = corners(fn, intervals)
        t_lo, t_hi = self.interval(target)
        ok = {"eq": hi >= t_lo - 1e-12 and lo <= t_hi + 1e-12,
              "le": t_lo <= hi + 1e-12, "ge": t_hi >= lo - 1e-12}[relation]
        tc = self.by_id[target]
        shown = centre / tc.scale
        unit = "%" if tc.unit == "percent" else ""
        rel = {"eq": "=", "le": "<=", "ge": ">="}[relation]
        detail = (f"{target} = {self.stated(target)} but {describe} = {fmt(shown)}{unit} "
                  f"(range {interval_text(lo / tc.scale, hi / tc.scale)}{unit} given the printed rounding)")
        if relation != "eq":
            detail = f"{target} = {self.stated(target)} violates {rel} {describe} = {fmt(shown)}{unit}"
        if ok:
            detail = (f"{target} = {self.stated(target)} matches {describe} = {fmt(shown)}{unit}"
                      if relation == "eq" else
                      f"{target} = {self.stated(target)} {rel} {describe} = {fmt(shown)}{unit} holds")
        ids = [target] + [r for r in inputs.values() if isinstance(r, str)]
        self.add(check=check, kind=kind, severity=severity, ok=ok, claims=ids,
                 stated=self.stated(target), computed=shown,
                 stated_iv=(t_lo / tc.scale, t_hi / tc.scale),
                 computed_iv=(lo / tc.scale, hi / tc.scale), detail=detail, note=note,
                 unit=tc.unit)

    # -- check kinds ---------------------------------------------------------------------------
    def run(self) -> pd.DataFrame:
        for i, chk in enumerate(self.pc.checks):
            kind = chk["kind"]
            name = f"checks[{i}]"
            sev = chk.get("severity", "error")
            note = str(chk.get("note", "") or "")
            self.decimals = chk.get("decimals")
            if self.decimals is not None:
                note = (f"Assumes every number involved has {self.decimals} decimals. " + note).strip()
            getattr(self, f"_check_{kind}")(chk, name, sev, note)
            self.decimals = None
        self._check_directions()
        return pd.DataFrame(self.rows, columns=AUDIT_COLUMNS)

    def _check_mean(self, chk: dict, name: str, sev: str, note: str) -> None:
        parts = {f"x{j}": p for j, p in enumerate(chk["parts"])}
        self.relation(check=name, kind="mean", severity=sev, target=chk["target"], inputs=parts,
                      fn=lambda e: sum(e.values()) / len(e),
                      describe=f"mean of {len(parts)} parts", note=note)

    def _check_sum(self, chk: dict, name: str, sev: str, note: str) -> None:
        parts = {f"x{j}": p for j, p in enumerate(chk["parts"])}
        self.relation(check=name, kind="sum", severity=sev, target=chk["target"], inputs=parts,
                      fn=lambda e: sum(e.values()), describe=f"sum of {len(parts)} parts", note=note)

    def _check_difference(self, chk: dict, name: str, sev: str, note: str) -> None:
        self.relation(check=name, kind="difference", severity=sev, target=chk["target"],
                      inputs={"a": chk["a"], "b": chk["b"]}, fn=lambda e: e["a"] - e["b"],
                      describe=f"{chk['a']} - {chk['b']}", note=note)

    def _check_ratio(self, chk: dict, name: str, sev: str, note: str) -> None:
        self.relation(check=name, kind="ratio", severity=sev, target=chk["target"],
                      inputs={"n": chk["numerator"], "d": chk["denominator"]},
                      fn=lambda e: e["n"] / e["d"],
                      describe=f"{chk['numerator']} / {chk['denominator']}", note=note)

    def _check_formula(self, chk: dict, name: str, sev: str, note: str) -> None:
        fn = parse_formula(str(chk["formula"]), set(chk["vars"]))
        self.relation(check=name, kind="formula", severity=sev, target=chk["target"],
                      inputs=dict(chk["vars"]), fn=fn, describe=str(chk["formula"]), note=note,
                      relation=chk.get("relation", "eq"))

    def _check_equal(self, chk: dict, name: str, sev: str, note: str) -> None:
        refs = list(chk["claims"])
        first = refs[0]
        for other in refs[1:]:
            a_lo, a_hi = self.interval(first)
            b_lo, b_hi = self.interval(other)
            ok = a_hi >= b_lo - 1e-12 and b_hi >= a_lo - 1e-12
            sa, sb = self.by_id[first].scale, self.by_id[other].scale
            detail = (f"{first} = {self.stated(first)} and {other} = {self.stated(other)} "
                      f"{'agree' if ok else 'differ'} (same quantity reported twice)")
            self.add(check=name, kind="equal", severity=sev, ok=ok, claims=[first, other],
                     stated=self.stated(first), computed=self.by_id[other].value * sb / sa,
                     stated_iv=(a_lo / sa, a_hi / sa), computed_iv=(b_lo / sa, b_hi / sa),
                     detail=detail, note=note, unit=self.by_id[first].unit)

    def _f1_one(self, name: str, sev: str, note: str, f1: str, p: str, r: str, averaging: str) -> None:
        severity = "warning" if averaging == "macro" else sev
        extra = note
        if averaging == "macro":
            extra = ("Macro-averaged: F1 is the mean of per-class F1s and need not equal "
                     "2PR/(P+R) of the macro precision and recall. " + note).strip()
        self.relation(check=name, kind="f1", severity=severity, target=f1,
                      inputs={"p": p, "r": r},
                      fn=lambda e: 2 * e["p"] * e["r"] / (e["p"] + e["r"]) if e["p"] + e["r"] else 0.0,
                      describe="2PR/(P+R)", note=extra)
        # A harmonic mean lies between its arguments: an F1 outside [min, max] of P and R
        # cannot be 2PR/(P+R) whatever the rounding; say so on the same row.
        row = self.rows[-1]
        f_lo, f_hi = self.interval(f1)
        lo = min(self.interval(p)[0], self.interval(r)[0])
        hi = max(self.interval(p)[1], self.interval(r)[1])
        if row["status"] == "inconsistent" and (f_hi < lo - 1e-12 or f_lo > hi + 1e-12):
            s = self.by_id[f1].scale
            row["detail"] += (f"; it even lies outside [min(P, R), max(P, R)] = {interval_text(lo / s, hi / s)}, "
                              "impossible for a harmonic mean of P and R")
        if row["status"] == "inconsistent" and not row["explained_by"]:
            explained, rule = macro_rule((f_lo, f_hi), self.interval(p), self.interval(r),
                                          self.by_id[f1].scale)
            row["rule"] = "; ".join(x for x in (row["rule"], rule) if x)
            if explained:
                row["explained_by"], row["group"] = "macro averaging", "explainable"

    def _check_f1(self, chk: dict, name: str, sev: str, note: str) -> None:
        self._f1_one(name, sev, note, chk["f1"], chk["precision"], chk["recall"],
                     chk.get("averaging", "binary"))

    def _check_f1_triples(self, chk: dict, name: str, sev: str, note: str) -> None:
        prefix = chk.get("prefix", "")
        groups: dict[str, dict[str, str]] = {}
        for c in self.pc.claims:
            if c.value is None or not c.id.startswith(prefix) or "/" not in c.id:
                continue
            head, last = c.id.rsplit("/", 1)
            if last in ("precision", "recall", "f1"):
                groups.setdefault(head, {})[last] = c.id
        for head, g in groups.items():
            if len(g) == 3:
                self._f1_one(f"{name} {head}", sev, note, g["f1"], g["precision"], g["recall"],
                             chk.get("averaging", "binary"))

    def _check_sigmoid_window(self, chk: dict, name: str, sev: str, note: str) -> None:
        # brainlib.io imports torch: lazy, so that loading claims stays light.
        from brainlib.io.window import sigmoid_window_params

        upper, eps = float(chk.get("upper", 255.0)), float(chk.get("eps", 1.0))
        level = self.interval(chk["level"], exact=True)[0]
        width = self.interval(chk["width"], exact=True)[0]
        W, b = sigmoid_window_params(level, width, upper=upper, eps=eps)
        base = (f"eq. 3.1 with level {fmt(level)}, width {fmt(width)}, U = {fmt(upper)}, "
                f"eps = {fmt(eps)}")
        for ref, value, label in ((chk["W"], W, "W"), (chk["b"], b, "b")):
            claim = self.by_id[ref]
            lo, hi = claim.interval()
            # Table 2 of He et al. prints float32 values: allow one unit of the last digit plus
            # the float32 spacing at the value (truncation or single precision, not an error).
            slack = 2 * claim.tolerance + float(np.spacing(np.float32(abs(value))))
            detail = f"{ref} = {self.stated(ref)}, {base} gives {label} = {value:.10g}"
            ok = lo - 1e-12 <= value <= hi + 1e-12
            if not ok and abs(claim.value - value) <= slack:
                ok = True
                detail += " (equal at float32 precision / truncation of the last digit)"
            elif not ok and abs(claim.value + value) <= slack:
                detail += " (same magnitude, opposite sign)"
            self.add(check=name, kind="sigmoid_window", severity=sev, ok=ok,
                     claims=[ref] + [r for r in (chk["level"], chk["width"]) if isinstance(r, str)],
                     stated=self.stated(ref), computed=value, stated_iv=(lo, hi),
                     computed_iv=(value, value), detail=detail, note=note, unit=claim.unit)

    def _check_confusion_matrix(self, chk: dict, name: str, sev: str, note: str) -> None:
        classes = list(chk["classes"])
        label = chk.get("name", "confusion matrix")
        m = np.array([[self.by_id[ref].value for ref in row] for row in chk["cells"]], dtype=float)
        cells = [ref for row in chk["cells"] for ref in row]
        total = float(m.sum())
        correct = float(np.trace(m))
        acc = correct / total
        k = len(classes)
        if "stated_classes" in chk:
            ref = chk["stated_classes"]
            n = self.by_id[ref].value
            ok = int(n) == k
            self.add(check=name, kind="confusion_classes", severity=sev, ok=ok, claims=[ref],
                     stated=self.stated(ref), computed=k, stated_iv=(n, n), computed_iv=(k, k),
                     detail=f"{label} has {k} classes ({', '.join(classes)}); {ref} = {self.stated(ref)}",
                     note=note, unit=self.by_id[ref].unit)
        if "total" in chk:
            ref = chk["total"]
            lo, hi = self.interval(ref)
            ok = lo - 1e-9 <= total <= hi + 1e-9
            self.add(check=name, kind="confusion_total", severity=sev, ok=ok, claims=[ref] + cells,
                     stated=self.stated(ref), computed=total, stated_iv=(lo, hi),
                     computed_iv=(total, total),
                     detail=f"{label} holds {int(total)} cases (row totals {m.sum(axis=1).astype(int).tolist()}); "
                            f"{ref} = {self.stated(ref)}", note=note, unit=self.by_id[ref].unit)
        if "accuracy" in chk:
            self._matrix_value(name, "confusion_accuracy", sev, chk["accuracy"], acc, cells,
                               f"{label}: trace/total = {int(correct)}/{int(total)}", note)
        if "kappa" in chk:
            kappa = cohen_kappa(m)
            self._matrix_value(name, "confusion_kappa", sev, chk["kappa"], kappa, cells,
                               f"{label}: Cohen's kappa of the matrix", note)

    def _matrix_value(self, name: str, kind: str, sev: str, ref: str, value: float,
                      cells: list[str], what: str, note: str) -> None:
        """A value computed exactly from a confusion matrix against the printed claim `ref`."""
        c = self.by_id[ref]
        lo, hi = c.interval()
        ok = lo - 1e-12 <= value <= hi + 1e-12
        shown = value / c.scale
        self.add(check=name, kind=kind, severity=sev, ok=ok, claims=[ref] + cells,
                 stated=self.stated(ref), computed=shown,
                 stated_iv=(lo / c.scale, hi / c.scale), computed_iv=(shown, shown),
                 detail=f"{what} = {shown:.4g}{'%' if c.unit == 'percent' else ''}; "
                        f"{ref} = {self.stated(ref)}", note=note, unit=c.unit)

    def _check_directions(self) -> None:
        """A comparative claim with two numeric sides must hold in the paper's own numbers."""
        for c in self.pc.claims:
            if c.kind != "comparison" or c.a not in self.by_id or c.b not in self.by_id:
                continue
            a, b = self.by_id[c.a], self.by_id[c.b]
            if a.value is None or b.value is None:
                continue
            a_lo, a_hi = a.interval()
            b_lo, b_hi = b.interval()
            diff = a.value * a.scale - b.value * b.scale
            want = 1 if c.direction == "greater" else -1
            if diff * want > 0:
                ok, how = True, "holds"
            elif diff == 0 or (a_hi >= b_lo and b_hi >= a_lo):
                ok, how = False, "is a tie at the printed precision"
            else:
                ok, how = False, "is reversed"
            sev = "warning" if how.startswith("is a tie") else "error"
            sign = ">" if c.direction == "greater" else "<"
            self.add(check=c.id, kind="direction", severity=sev, ok=ok, claims=[c.id, c.a, c.b],
                     stated=f"{c.a} {sign} {c.b}", computed=diff / a.scale,
                     stated_iv=(float("nan"), float("nan")), computed_iv=(diff / a.scale, diff / a.scale),
                     detail=f"claim '{c.row}': {self.stated(c.a)} {sign} {self.stated(c.b)} {how}",
                     note=c.note, unit=a.unit, magnitude=max(abs(a.value), abs(b.value * b.scale / a.scale)))


def audit_checks(paper: str | Path) -> pd.DataFrame:
    """Every check of a paper with its status (`ok` or `inconsistent`)."""
    return _Auditor(load_paper(paper)).run()


def audit(paper: str | Path, out_dir: str | Path | None = None) -> pd.DataFrame:
    """Inconsistencies in a paper's own numbers (one row each, with numbers and tolerance).

    With `out_dir`, writes ``<out_dir>/<paper>/tables/audit.csv`` (the inconsistencies) and
    ``audit_checks.csv`` (every check, including those that pass) atomically.
    """
    pc = load_paper(paper)
    checks = _Auditor(pc).run()
    found = rank(checks[checks["status"] == "inconsistent"])
    if out_dir is not None:
        tables = Path(out_dir) / pc.paper / "tables"
        atomic_write(tables / "audit.csv", to_csv_text(found))
        atomic_write(tables / "audit_checks.csv", to_csv_text(checks))
    return found
