"""Audit of a paper's internal arithmetic, from its own claims (no data needed).

Each check in the ``checks:`` list of a claims file states a relation the printed numbers must
satisfy (an average equals the mean of its parts, F1 equals 2PR/(P+R), the same model has the
same numbers in two tables, Table 2 of He et al. follows their eq. 3.1, ...). Comparative
claims with two numeric sides are also checked for their direction.

Rounding is respected by interval arithmetic: a value printed as 0.923 stands for
[0.9225, 0.9235]; a derived quantity is evaluated at every corner of its inputs' intervals
(exact for the sums, means, differences, ratios of positives and F1 used here, which are
monotone in each input) and a check passes when the stated interval and the computed
interval overlap. Percent values are compared on the fraction scale.
"""
from __future__ import annotations

import ast
import itertools
import math
import operator
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from brainlib.claims.schema import Claim, PaperClaims, load_paper

AUDIT_COLUMNS = ["check", "kind", "severity", "status", "claims", "stated", "computed",
                 "stated_interval", "computed_interval", "tolerance", "detail", "note"]

_BINOPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow,
}
_FUNCS: dict[str, Callable[..., float]] = {
    "min": min, "max": max, "abs": abs, "log": math.log, "exp": math.exp, "sqrt": math.sqrt,
    "mean": lambda *xs: sum(xs) / len(xs), "ceil": math.ceil, "floor": math.floor,
}


def parse_formula(text: str, names: set[str]) -> Callable[[dict[str, float]], float]:
    """Compile an arithmetic formula over `names` (numbers, + - * / **, min/max/mean/log...).

    Only arithmetic is allowed (an AST whitelist), so a claims file cannot run code.
    """
    tree = ast.parse(text, mode="eval")

    def build(node: ast.AST) -> Callable[[dict[str, float]], float]:
        if isinstance(node, ast.Expression):
            return build(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            value = float(node.value)
            return lambda env: value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ValueError(f"unknown variable {node.id!r}")
            key = node.id
            return lambda env: env[key]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            op, left, right = _BINOPS[type(node.op)], build(node.left), build(node.right)
            return lambda env: op(left(env), right(env))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = build(node.operand)
            sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
            return lambda env: sign * inner(env)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in _FUNCS and not node.keywords:
            fn, args = _FUNCS[node.func.id], [build(a) for a in node.args]
            return lambda env: float(fn(*(a(env) for a in args)))
        raise ValueError(f"not allowed in a formula: {ast.dump(node)[:60]}")

    return build(tree)


def _corners(fn: Callable[[dict[str, float]], float],
             intervals: dict[str, tuple[float, float]]) -> tuple[float, float, float]:
    """(value at the printed values, min, max) of fn over the corners of the input box."""
    names = list(intervals)
    mid = {n: (lo + hi) / 2 for n, (lo, hi) in intervals.items()}
    centre = fn(mid)
    values = [centre]
    varying = [n for n in names if intervals[n][0] != intervals[n][1]]
    if len(varying) > 14:  # 16k corners: fall back to the printed values plus one-at-a-time
        for n in varying:
            for end in intervals[n]:
                values.append(fn({**mid, n: end}))
    else:
        for combo in itertools.product(*(intervals[n] for n in varying)):
            values.append(fn({**mid, **dict(zip(varying, combo))}))
    return centre, min(values), max(values)


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:.10g}"


def _iv(lo: float, hi: float) -> str:
    return f"[{_fmt(lo)}, {_fmt(hi)}]"


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
        text = c.printed if c.printed is not None else _fmt(c.value)
        if self.decimals is not None and c.value is not None:
            text = f"{c.value:.{max(self.decimals, 0)}f}"
        return f"{text} {'%' if c.unit == 'percent' else ''}".strip()

    def add(self, *, check: str, kind: str, severity: str, ok: bool, claims: Sequence[str],
            stated: str, computed: float, stated_iv: tuple[float, float],
            computed_iv: tuple[float, float], detail: str, note: str = "") -> None:
        tol = (stated_iv[1] - stated_iv[0]) / 2 + (computed_iv[1] - computed_iv[0]) / 2
        self.rows.append({
            "check": check, "kind": kind, "severity": severity,
            "status": "ok" if ok else "inconsistent", "claims": ", ".join(claims),
            "stated": stated, "computed": _fmt(computed),
            "stated_interval": _iv(*stated_iv), "computed_interval": _iv(*computed_iv),
            "tolerance": _fmt(tol), "detail": detail, "note": note,
        })

    def relation(self, *, check: str, kind: str, severity: str, target: str,
                 inputs: dict[str, Any], fn: Callable[[dict[str, float]], float],
                 describe: str, note: str = "", exact: Sequence[str] = (),
                 relation: str = "eq") -> None:
        """Target claim vs fn(inputs), both as intervals; inputs map names to ids/numbers.

        relation "eq": the intervals overlap; "le": target <= fn possible; "ge": target >= fn.
        """
        intervals = {n: self.interval(ref, exact=n in exact) for n, ref in inputs.items()}
        centre, lo, hi = _corners(fn, intervals)
        t_lo, t_hi = self.interval(target)
        ok = {"eq": hi >= t_lo - 1e-12 and lo <= t_hi + 1e-12,
              "le": t_lo <= hi + 1e-12, "ge": t_hi >= lo - 1e-12}[relation]
        tc = self.by_id[target]
        shown = centre / tc.scale
        unit = "%" if tc.unit == "percent" else ""
        rel = {"eq": "=", "le": "<=", "ge": ">="}[relation]
        detail = (f"{target} = {self.stated(target)} but {describe} = {_fmt(shown)}{unit} "
                  f"(range {_iv(lo / tc.scale, hi / tc.scale)}{unit} given the printed rounding)")
        if relation != "eq":
            detail = f"{target} = {self.stated(target)} violates {rel} {describe} = {_fmt(shown)}{unit}"
        if ok:
            detail = (f"{target} = {self.stated(target)} matches {describe} = {_fmt(shown)}{unit}"
                      if relation == "eq" else
                      f"{target} = {self.stated(target)} {rel} {describe} = {_fmt(shown)}{unit} holds")
        ids = [target] + [r for r in inputs.values() if isinstance(r, str)]
        self.add(check=check, kind=kind, severity=severity, ok=ok, claims=ids,
                 stated=self.stated(target), computed=shown,
                 stated_iv=(t_lo / tc.scale, t_hi / tc.scale),
                 computed_iv=(lo / tc.scale, hi / tc.scale), detail=detail, note=note)

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
                     detail=detail, note=note)

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
            row["detail"] += (f"; it even lies outside [min(P, R), max(P, R)] = {_iv(lo / s, hi / s)}, "
                              "impossible for a harmonic mean of P and R")

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
        from brainlib.io import sigmoid_window_params

        upper, eps = float(chk.get("upper", 255.0)), float(chk.get("eps", 1.0))
        level = self.interval(chk["level"], exact=True)[0]
        width = self.interval(chk["width"], exact=True)[0]
        W, b = sigmoid_window_params(level, width, upper=upper, eps=eps)
        base = (f"eq. 3.1 with level {_fmt(level)}, width {_fmt(width)}, U = {_fmt(upper)}, "
                f"eps = {_fmt(eps)}")
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
                     computed_iv=(value, value), detail=detail, note=note)

    def _check_confusion_matrix(self, chk: dict, name: str, sev: str, note: str) -> None:
        from sklearn.metrics import cohen_kappa_score

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
                     note=note)
        if "total" in chk:
            ref = chk["total"]
            lo, hi = self.interval(ref)
            ok = lo - 1e-9 <= total <= hi + 1e-9
            self.add(check=name, kind="confusion_total", severity=sev, ok=ok, claims=[ref] + cells,
                     stated=self.stated(ref), computed=total, stated_iv=(lo, hi),
                     computed_iv=(total, total),
                     detail=f"{label} holds {int(total)} cases (row totals {m.sum(axis=1).astype(int).tolist()}); "
                            f"{ref} = {self.stated(ref)}", note=note)
        if "accuracy" in chk:
            self._matrix_value(name, "confusion_accuracy", sev, chk["accuracy"], acc, cells,
                               f"{label}: trace/total = {int(correct)}/{int(total)}", note)
        if "kappa" in chk:
            idx = np.arange(k)
            counts = m.astype(int).ravel()
            y_true = np.repeat(np.repeat(idx, k), counts)
            y_pred = np.repeat(np.tile(idx, k), counts)
            kappa = float(cohen_kappa_score(y_true, y_pred))
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
                        f"{ref} = {self.stated(ref)}", note=note)

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
                     note=c.note)


def format_findings(found: pd.DataFrame, paper: str = "") -> str:
    """Human-readable lines, one per inconsistency, with the numbers and the tolerance."""
    if found.empty:
        return f"{paper}: no inconsistencies".strip()
    lines = [f"{paper}: {len(found)} inconsistencies "
             f"({(found['severity'] == 'error').sum()} errors, {(found['severity'] == 'warning').sum()} warnings)"]
    for row in found.itertuples(index=False):
        lines.append(f"[{row.severity}] {row.kind} {row.check}: {row.detail}; stated {row.stated_interval}, "
                     f"computed {row.computed_interval}, tolerance +-{row.tolerance}")
        if row.note:
            lines.append(f"    note: {row.note}")
    return "\n".join(lines)


def audit_checks(paper: str | Path) -> pd.DataFrame:
    """Every check of a paper with its status (`ok` or `inconsistent`)."""
    return _Auditor(load_paper(paper)).run()


def audit(paper: str | Path, out_dir: str | Path | None = None) -> pd.DataFrame:
    """Inconsistencies in a paper's own numbers (one row each, with numbers and tolerance).

    With `out_dir`, writes ``<out_dir>/<paper>/tables/audit.csv`` (the inconsistencies) and
    ``audit_checks.csv`` (every check, including those that pass) atomically.
    """
    from brainlib._atomic import atomic_write

    pc = load_paper(paper)
    checks = _Auditor(pc).run()
    found = checks[checks["status"] == "inconsistent"].reset_index(drop=True)
    if out_dir is not None:
        tables = Path(out_dir) / pc.paper / "tables"
        atomic_write(tables / "audit.csv", found.to_csv(index=False))
        atomic_write(tables / "audit_checks.csv", checks.to_csv(index=False))
    return found
