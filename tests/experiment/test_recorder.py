"""ClaimRecorder: one measured row per claim id, in the shape compare() expects."""
from __future__ import annotations

import math

import pytest

from brainlib.experiment import ClaimRecorder


def test_records_value_ci_p_and_note():
    rec = ClaimRecorder("he2024")
    rec.add("table3/full/any/auc", 0.91, (0.85, 0.95), note="bootstrap")
    rec.add("cmp/x", 0.02, p_value=0.04)
    frame = rec.frame()
    assert list(frame.columns) == ["claim_id", "value", "ci_low", "ci_high", "p_value", "note"]
    row = frame.set_index("claim_id").loc["table3/full/any/auc"]
    assert (row.value, row.ci_low, row.ci_high) == (0.91, 0.85, 0.95)
    assert math.isnan(frame.set_index("claim_id").at["cmp/x", "ci_low"])
    assert len(rec) == 2 and "cmp/x" in rec and rec.finite() == 2


def test_recording_twice_is_an_error():
    rec = ClaimRecorder("he2024")
    rec.add("a/b", 1)
    with pytest.raises(ValueError, match="recorded twice"):
        rec.add("a/b", 2)
