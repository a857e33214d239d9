"""The ``checks:`` section of a claims file: the arithmetic the audit re-computes.

Each check names a ``kind`` (`CHECK_FIELDS`: its required and optional fields) and the claim
ids it combines; :func:`validate_check` refuses unknown kinds and fields, references to unknown
claims or to claims without a number, and bad formulas, naming the check. The audit
(:mod:`brainlib.claims.audit`) evaluates them; :mod:`brainlib.claims.schema` validates the rest
of the file and re-exports these names.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

from brainlib.claims.formula import parse_formula
from brainlib.claims.yaml_load import ClaimsError

__all__ = ["CHECK_FIELDS", "SEVERITIES", "is_number", "validate_check"]


class _Numbered(Protocol):
    """What a check needs of a claim (`schema.Claim`): its number, None when it has none."""

    value: Any

CHECK_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required, optional); every check may also carry `note` and `severity`.
    "mean": (("target", "parts"), ()),
    "sum": (("target", "parts"), ()),
    "difference": (("target", "a", "b"), ()),
    "ratio": (("target", "numerator", "denominator"), ()),
    "equal": (("claims",), ()),
    "formula": (("target", "formula", "vars"), ("relation",)),
    "f1": (("f1", "precision", "recall"), ("averaging",)),
    "f1_triples": ((), ("averaging", "prefix")),
    "sigmoid_window": (("W", "b", "level", "width"), ("upper", "eps")),
    "confusion_matrix": (("cells", "classes"), ("stated_classes", "total", "accuracy", "kappa", "name")),
}
SEVERITIES = ("error", "warning")


def is_number(x: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def validate_check(check: Any, i: int, by_id: dict[str, _Numbered],
                   fail: Callable[[str, str], ClaimsError]) -> None:
    """Raise ``fail(where, why)`` unless check ``i`` is well formed and refers to numeric claims."""
    where = f"checks[{i}]"
    if not isinstance(check, dict) or "kind" not in check:
        raise fail(where, "must be a mapping with a 'kind'")
    kind = check["kind"]
    where += f" ({kind})"
    if kind not in CHECK_FIELDS:
        raise fail(where, f"unknown check kind; expected one of {sorted(CHECK_FIELDS)}")
    required, optional = CHECK_FIELDS[kind]
    extra = set(check) - set(required) - set(optional) - {"kind", "note", "severity", "decimals"}
    if extra:
        raise fail(where, f"unknown fields {sorted(extra)}")
    for key in required:
        if key not in check:
            raise fail(where, f"missing required field {key!r}")
    if "decimals" in check and not (isinstance(check["decimals"], int) and not isinstance(check["decimals"], bool)):
        raise fail(where, "decimals must be an integer (the precision assumed for every claim of the check)")
    if check.get("severity", "error") not in SEVERITIES:
        raise fail(where, f"severity must be one of {SEVERITIES}")

    def need(ref: Any, label: str, numeric_ok: bool = False) -> None:
        if numeric_ok and is_number(ref):
            return
        if not isinstance(ref, str) or ref not in by_id:
            raise fail(where, f"{label} refers to unknown claim id {ref!r}")
        if by_id[ref].value is None:
            raise fail(where, f"{label} {ref!r} has no numeric value")

    if kind in ("mean", "sum"):
        need(check["target"], "target")
        if not isinstance(check["parts"], list) or not check["parts"]:
            raise fail(where, "parts must be a non-empty list of claim ids")
        for p in check["parts"]:
            need(p, "parts")
    elif kind == "difference":
        for key in ("target", "a", "b"):
            need(check[key], key)
    elif kind == "ratio":
        for key in ("target", "numerator", "denominator"):
            need(check[key], key)
    elif kind == "equal":
        if not isinstance(check["claims"], list) or len(check["claims"]) < 2:
            raise fail(where, "claims must list at least two claim ids")
        for c in check["claims"]:
            need(c, "claims")
    elif kind == "formula":
        need(check["target"], "target")
        if not isinstance(check["vars"], dict) or not check["vars"]:
            raise fail(where, "vars must map names to claim ids")
        for name, ref in check["vars"].items():
            if not str(name).isidentifier():
                raise fail(where, f"variable name {name!r} is not an identifier")
            need(ref, f"vars[{name}]", numeric_ok=True)
        try:
            parse_formula(str(check["formula"]), set(check["vars"]))
        except (ValueError, SyntaxError) as exc:
            raise fail(where, f"bad formula {check['formula']!r}: {exc}") from exc
    elif kind == "f1":
        for key in ("f1", "precision", "recall"):
            need(check[key], key)
    elif kind == "sigmoid_window":
        need(check["W"], "W")
        need(check["b"], "b")
        need(check["level"], "level", numeric_ok=True)
        need(check["width"], "width", numeric_ok=True)
    elif kind == "confusion_matrix":
        classes = check["classes"]
        cells = check["cells"]
        if not isinstance(classes, list) or len(classes) < 2:
            raise fail(where, "classes must list at least two class names")
        if (not isinstance(cells, list) or len(cells) != len(classes)
                or any(not isinstance(r, list) or len(r) != len(classes) for r in cells)):
            raise fail(where, f"cells must be a {len(classes)}x{len(classes)} list of claim ids")
        for r in cells:
            for ref in r:
                need(ref, "cells")
        for key in ("stated_classes", "total", "accuracy", "kappa"):
            if key in check:
                need(check[key], key)
    if kind == "formula" and check.get("relation", "eq") not in ("eq", "le", "ge"):
        raise fail(where, "relation must be eq, le (target <= formula) or ge (target >= formula)")
    if kind in ("f1", "f1_triples") and check.get("averaging", "binary") not in ("binary", "micro", "macro"):
        raise fail(where, "averaging must be binary, micro or macro")
