"""The fuzz harness itself: each failure kind is detected (so zero counts mean something)."""
from __future__ import annotations

import numpy as np

from brainlib.fuzzing.corpus import CASE_MEMORY_LIMIT, run_case
from brainlib.fuzzing.targets import Target


class Typed(ValueError):
    pass


def _spin(path):
    while True:
        pass


def _allocate(path):
    return np.ones(CASE_MEMORY_LIMIT // 8 + 2**20)  # just over the limit, traced by numpy


def _unnamed(path):
    raise Typed("something is wrong")


def _escape(path):
    return {}["missing"]


def _named(path):
    raise Typed(f"{path}: damaged")


def test_each_outcome_is_detected(tmp_path):
    cases = {"timeout": _spin, "memory": _allocate, "unnamed": _unnamed, "escaped": _escape,
             "typed": _named, "ok": lambda p: p.read_bytes(), "invalid": lambda p: None}
    for want, read in cases.items():
        target = Target(want, ".bin", [], read, (Typed,), valid=lambda r: r is not None)
        outcome, detail, seconds, peak = run_case(target, tmp_path / want / "case.bin", b"abc", time_limit=0.5)
        assert outcome == want, (want, outcome, detail)
