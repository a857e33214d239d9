"""The fixed-seed corpus of mutated files (brainlib.fuzzing): zero escapes, hangs, bombs.

``BRAINLIB_FUZZ_CASES`` sets the corpus size (default 2500, about 45 s of CPU here); the long
run is ``python -m brainlib.fuzzing --cases 100000 --seed 1`` (docs/FUZZING.md).
"""
from __future__ import annotations

import os

import pytest

from brainlib.fuzzing import FAILURES, run_corpus

pytestmark = pytest.mark.slow


def test_fixed_seed_corpus_has_no_untyped_escape(tmp_path, capsys):
    cases = int(os.environ.get("BRAINLIB_FUZZ_CASES", "2500"))
    report = run_corpus(cases=cases, seed=0, work=tmp_path)
    with capsys.disabled():
        print("\n" + report.table())
    failures = "\n".join(f"{f['outcome']}: {f['target']} case {f['case']} ({f['seed']}; "
                         f"{f['mutation']}): {f['detail']}" for f in report.failures)
    assert not any(report.total.get(k, 0) for k in FAILURES), failures
    assert sum(report.total.values()) == cases
    for name, counts in report.counts.items():
        # the corpus reaches both sides of every reader: results and typed refusals
        assert counts["ok"] > 0 and counts["typed"] > 0, (name, dict(counts))


def test_same_seed_same_counts(tmp_path):
    a = run_corpus(cases=60, seed=3, only=["rsna_csv", "dicom_ct_index"], work=tmp_path / "a")
    b = run_corpus(cases=60, seed=3, only=["rsna_csv", "dicom_ct_index"], work=tmp_path / "b")
    assert a.counts == b.counts
