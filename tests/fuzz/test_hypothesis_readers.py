"""Property-based fuzzing of every reader with hypothesis: any mutation of a real seed file is
read into a valid result or refused with the reader's typed error naming the file.

Profiles: ``ci`` (default; derandomized, so the same examples every run, no example
database written into the tree) and ``long`` (``BRAINLIB_HYPOTHESIS_PROFILE=long``: 2000
examples per reader, random).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brainlib.fuzzing import mutate, run_case, targets

pytestmark = pytest.mark.slow

settings.register_profile("ci", max_examples=30, derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=2000, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("BRAINLIB_HYPOTHESIS_PROFILE", "ci")

_WORK = tempfile.TemporaryDirectory(prefix="brainlib-hypothesis-")  # removed at exit
TARGETS = {t.name: t for t in targets(Path(_WORK.name) / "seeds")}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_reader_returns_valid_result_or_typed_error(name, tmp_path_factory):
    target = TARGETS[name]
    folder = tmp_path_factory.mktemp(name)
    counter = iter(range(10**9))

    @settings(settings.get_profile(PROFILE))
    @given(seed_index=st.integers(0, len(target.seeds) - 1), rng_seed=st.integers(0, 2**32 - 1),
           steps=st.integers(1, 4))
    def check(seed_index: int, rng_seed: int, steps: int) -> None:
        data, how = mutate(target.seeds[seed_index], np.random.default_rng(rng_seed), max_steps=steps)
        path = folder / f"case{next(counter)}{target.suffix}"  # fresh name: no reader cache hit
        outcome, detail, _, _ = run_case(target, path, data)
        assert outcome in ("ok", "typed"), f"{outcome}: {how}: {detail}"

    check()
