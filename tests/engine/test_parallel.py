"""brainlib.engine.parallel: jobs in spawned workers, dependencies honoured, errors raised."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from brainlib.engine.parallel import Job, run_jobs


def test_dependencies_run_in_order_on_two_workers(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in ("a.txt", "b.txt", "c.txt"))
    jobs = [Job("copy_b", shutil.copyfile, (a, b), after=("write_a",)),  # listed first, waits
            Job("write_a", Path.write_text, (a, "hello")),
            Job("copy_c", shutil.copyfile, (b, c), after=("copy_b",))]
    seconds = run_jobs(jobs, workers=2)
    assert set(seconds) == {"write_a", "copy_b", "copy_c"}
    assert c.read_text() == "hello"  # copy_c ran after copy_b, which ran after write_a


def test_one_worker_runs_nothing(tmp_path: Path) -> None:
    out = tmp_path / "a.txt"
    assert run_jobs([Job("write", Path.write_text, (out, "x"))], workers=1) == {}
    assert not out.exists()  # the caller's sequential code trains


def test_a_failing_job_raises_at_once_and_stops_the_others(tmp_path: Path) -> None:
    jobs = [Job("long", time.sleep, (120,)),
            Job("copy", shutil.copyfile, (tmp_path / "missing", tmp_path / "b")),
            Job("later", Path.write_text, (tmp_path / "later.txt", "x"), after=("long",))]
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError):
        run_jobs(jobs, workers=2)
    assert time.perf_counter() - t0 < 100  # the 120-s job was terminated, not awaited
    assert not (tmp_path / "later.txt").exists()


@pytest.mark.parametrize("jobs, message", [
    ([Job("a", print), Job("a", print)], "unique"),
    ([Job("a", print, after=("nope",))], "unknown"),
    ([Job("a", print, after=("b",)), Job("b", print, after=("a",))], "cycle"),
])
def test_bad_job_lists_are_refused_before_anything_runs(jobs: list[Job], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_jobs(jobs, workers=2)
