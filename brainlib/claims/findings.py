"""Ranking and printing of the claims audit's findings (`brainlib.claims.audit`)."""
from __future__ import annotations

from typing import Any

import pandas as pd

#: Groups of findings, in the order `audit` returns and `format_findings` prints them.
GROUPS = ("discrepancy", "explainable")


def rank(found: pd.DataFrame) -> pd.DataFrame:
    """Discrepancies first, then explainable findings; each by relative size, largest first."""
    order = found.assign(_g=found["group"].map({g: i for i, g in enumerate(GROUPS)}).fillna(len(GROUPS)))
    order = order.sort_values(["_g", "relative_size"], ascending=[True, False], kind="stable")
    return order.drop(columns="_g").reset_index(drop=True)


def size_text(row: Any) -> str:
    unit = {"percent": " points", "count": " (count)", "pixels": " px", "hu": " HU",
            "seconds": " s", "index": " (index)"}.get(row.unit, "")
    return f"{row.size:.4g}{unit}"


def format_findings(found: pd.DataFrame, paper: str = "") -> str:
    """Human-readable findings: discrepancies largest first, then the explainable group.

    Each line gives the size in the paper's units; the explainable group names the rule
    (rounding or macro averaging, see the module docstring) that could account for it.
    """
    if found.empty:
        return f"{paper}: no inconsistencies".strip()
    found = rank(found) if "group" in found.columns else found
    lines = [f"{paper}: {len(found)} inconsistencies "
             f"({(found['severity'] == 'error').sum()} errors, {(found['severity'] == 'warning').sum()} warnings)"]
    headings = {
        "discrepancy": "Discrepancies no rounding or averaging explains (largest first):",
        "explainable": ("Explainable by printed rounding (gap <= one unit of the last printed digit) "
                        "or macro averaging (P + R - 1 <= F1 <= 2PR/(P+R)):"),
    }
    for group in GROUPS:
        part = found[found["group"] == group] if "group" in found.columns else found
        if part.empty:
            continue
        lines += ["", f"{headings[group]} {len(part)}"]
        for row in part.itertuples(index=False):
            why = f" [{row.explained_by}]" if row.explained_by else ""
            lines.append(f"  [{row.severity}] size {size_text(row)}{why} {row.kind} {row.check}: {row.detail}; "
                         f"stated {row.stated_interval}, computed {row.computed_interval}")
            if row.rule:
                lines.append(f"      rule: {row.rule}")
            if row.note:
                lines.append(f"      note: {row.note}")
        if "group" not in found.columns:
            break
    return "\n".join(lines)
