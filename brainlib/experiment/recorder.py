"""ClaimRecorder: measured values keyed by the claim ids of `brainlib/claims/<paper>.yaml`.

Table and figure code records what it measured as it goes (value, 95 % CI, p-value, note);
`Experiment.finish` hands the frame to `brainlib.claims.compare`, which decides each claim's
status from its kind and from whether the data were synthetic. Recording twice under one id
is an error (two code paths measuring "the same" number differently is a bug).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import pandas as pd

from brainlib.claims import measured_frame

MEASURED_COLUMNS: tuple[str, ...] = ("claim_id", "value", "ci_low", "ci_high", "p_value", "note")


def _float(x: Any) -> float:
    if x is None:
        return float("nan")
    return float(x)


class ClaimRecorder:
    """Collects measured claim values for one paper."""

    def __init__(self, paper: str) -> None:
        self.paper = paper
        self._rows: dict[str, dict[str, Any]] = {}

    def add(self, claim_id: str, value: Any, ci: tuple[Any, Any] | None = None,
            p_value: Any = None, note: str = "", unit: str | None = None) -> None:
        """Record one measured number (CI as (low, high) on the same scale as `value`).

        Proportions are fractions unless `unit="percent"` says otherwise (`compare` converts
        to the claim's unit); other units must match the claim's.
        """
        if claim_id in self._rows:
            raise ValueError(f"{self.paper}: claim {claim_id!r} recorded twice")
        lo, hi = ci if ci is not None else (None, None)
        self._rows[claim_id] = {"claim_id": claim_id, "value": _float(value),
                                "ci_low": _float(lo), "ci_high": _float(hi),
                                "p_value": _float(p_value), "note": note, "unit": unit}

    def add_many(self, rows: Iterable[dict[str, Any]]) -> None:
        """Record rows with keys claim_id, value and optional ci_low, ci_high, p_value, note."""
        for r in rows:
            lo, hi = r.get("ci_low"), r.get("ci_high")
            self.add(r["claim_id"], r["value"], (lo, hi), r.get("p_value"), r.get("note", ""),
                     r.get("unit"))

    def __contains__(self, claim_id: str) -> bool:
        return claim_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def value(self, claim_id: str) -> float:
        return self._rows[claim_id]["value"]

    def frame(self) -> pd.DataFrame:
        """The `measured` table `brainlib.claims.compare` expects."""
        frame = measured_frame(list(self._rows.values()) or None)
        cols = list(MEASURED_COLUMNS)
        if any(r["unit"] for r in self._rows.values()):
            cols.append("unit")
        return frame[cols]

    def finite(self) -> int:
        """How many recorded values are numbers (not NaN)."""
        return sum(not math.isnan(r["value"]) for r in self._rows.values())
