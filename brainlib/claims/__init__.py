"""brainlib.claims: every number each paper reports, compared and audited.

* ``<paper>.yaml`` — the registry (schema in `brainlib.claims.schema`), one per key of
  `brainlib.PAPERS`, written from the papers in ``../shared/papers``.
* `load_claims(paper)` — the registry as a DataFrame (one row per claim).
* `compare(paper, measured, data_source, *, synthetic=True, profile=None)` — the paper's
  numbers beside ours, with a status from the claim's kind and the data (`STATUSES`;
  `EVIDENCE_STATUSES` only on real data).
* `audit(paper, out_dir=None)` — inconsistencies in the paper's own arithmetic, largest
  discrepancies first, those rounding or macro averaging could explain after them.
* `formula.parse_formula` — the safe arithmetic both the schema and the audit use.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from brainlib.claims.audit import AUDIT_COLUMNS, audit, audit_checks, format_findings
from brainlib.claims.compare import (COMPARE_COLUMNS, EVIDENCE_STATUSES, STATUSES, compare,
                                     measured_frame)
from brainlib.claims.schema import KINDS, Claim, ClaimsError, PaperClaims, load_paper

CLAIM_COLUMNS = ["claim_id", "kind", "source", "row", "metric", "value", "unit", "printed",
                 "tolerance", "dataset", "not_reproducible", "reason", "a", "b", "direction",
                 "p_value", "note"]


def load_claims(paper: str | Path) -> pd.DataFrame:
    """All claims of a paper, validated, one row each (columns `CLAIM_COLUMNS`)."""
    pc = load_paper(paper)
    rows = [{
        "claim_id": c.id, "kind": c.kind, "source": c.source, "row": c.row, "metric": c.metric,
        "value": c.value, "unit": c.unit, "printed": c.printed, "tolerance": c.tolerance,
        "dataset": c.dataset, "not_reproducible": c.not_reproducible is not None,
        "reason": pc.reasons.get(c.not_reproducible, "") if c.not_reproducible else "",
        "a": c.a, "b": c.b, "direction": c.direction, "p_value": c.p_value, "note": c.note,
    } for c in pc.claims]
    frame = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    frame.attrs.update(paper=pc.paper, citation=pc.citation, datasets=dict(pc.datasets))
    return frame


__all__ = ["AUDIT_COLUMNS", "CLAIM_COLUMNS", "COMPARE_COLUMNS", "EVIDENCE_STATUSES", "KINDS", "STATUSES",
           "Claim", "ClaimsError", "PaperClaims", "audit", "audit_checks", "compare", "format_findings",
           "load_claims", "load_paper", "measured_frame"]
