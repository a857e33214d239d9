"""Run a fixed-seed corpus of mutated files through every reader and count the outcomes.

Each case is one mutated copy of a seed written to a fresh file and given to one reader. Its
outcome is ``ok`` (a valid result), ``typed`` (an exception of the reader's family whose
message names the file), or a failure: ``escaped`` (any other exception), ``invalid`` (a
result that fails the target's check), ``unnamed`` (a typed error that does not name the
file), ``timeout`` (over :data:`CASE_TIME_LIMIT` CPU seconds) or ``memory`` (more than
:data:`CASE_MEMORY_LIMIT` traced by ``tracemalloc``: numpy, pydicom and pandas buffers).
Same seed, same corpus, same counts.

    python -m brainlib.fuzzing --cases 3000 --seed 0          # what the test suite runs
    python -m brainlib.fuzzing --cases 100000 --seed 1 --json fuzz.json   # the long run
"""
from __future__ import annotations

import signal
import tempfile
import time
import tracemalloc
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainlib.fuzzing.mutate import mutate
from brainlib.fuzzing.targets import Target, targets

__all__ = ["CASE_TIME_LIMIT", "CASE_WALL_LIMIT", "CASE_MEMORY_LIMIT", "FAILURES", "CaseTimeout", "Report", "run_case",
           "run_corpus"]

#: CPU seconds one case may take (the slowest seeds decode in ~50 ms): measured in CPU time
#: (ITIMER_PROF) so a loaded machine does not turn slow wall-clock into false hangs (a 15000-case
#: run under load 10 saw a 0.5 s-CPU case take 10.4 s of wall time).
CASE_TIME_LIMIT = 10.0
#: Wall-clock backstop for a case blocked without using CPU.
CASE_WALL_LIMIT = 120.0
#: Bytes one case may allocate (traced peak). Seeds decode to < 5 MB; a bomb asks for GBs.
CASE_MEMORY_LIMIT = 64 * 2**20
FAILURES = ("escaped", "invalid", "unnamed", "timeout", "memory")


class CaseTimeout(BaseException):
    """Raised by the interval timer inside a reader (a BaseException, so readers' broad
    ``except Exception`` guards cannot turn a hang into a typed error)."""


@dataclass
class Report:
    """Outcome counts per target and the failing cases (up to 50 kept per kind)."""

    counts: dict[str, Counter] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    max_case_seconds: float = 0.0
    max_case_bytes: int = 0
    target_cpu: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> Counter:
        out: Counter = Counter()
        for c in self.counts.values():
            out.update(c)
        return out

    def table(self) -> str:
        """Plain-text table: one row per target, columns ok / typed / each failure kind."""
        cols = ("ok", "typed") + FAILURES
        lines = [f"{'target':<18}" + "".join(f"{c:>9}" for c in cols) + f"{'CPU s':>8}"]
        for name, c in list(self.counts.items()) + [("TOTAL", self.total)]:
            cpu = self.target_cpu.get(name, self.cpu_seconds)
            lines.append(f"{name:<18}" + "".join(f"{c.get(k, 0):>9}" for k in cols) + f"{cpu:>8.1f}")
        lines.append(f"cases {sum(self.total.values())}, CPU {self.cpu_seconds:.1f} s, wall "
                     f"{self.wall_seconds:.1f} s, slowest case {self.max_case_seconds:.2f} s, "
                     f"largest traced allocation {self.max_case_bytes / 2**20:.1f} MiB")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"counts": {k: dict(v) for k, v in self.counts.items()}, "total": dict(self.total),
                "failures": self.failures, "cpu_seconds": self.cpu_seconds,
                "wall_seconds": self.wall_seconds, "max_case_seconds": self.max_case_seconds,
                "max_case_bytes": self.max_case_bytes, "target_cpu": self.target_cpu}


def _names_file(exc: BaseException, path: Path) -> bool:
    return str(path) in str(exc) and len(str(exc)) > len(str(path)) + 2


def _on_alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout()


def run_case(target: Target, path: Path, data: bytes,
             time_limit: float = CASE_TIME_LIMIT) -> tuple[str, str, float, int]:
    """Write ``data`` to ``path``, read it with ``target``; (outcome, detail, seconds, peak bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    old = signal.signal(signal.SIGALRM, _on_alarm)
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    old_prof = signal.signal(signal.SIGPROF, _on_alarm)
    signal.setitimer(signal.ITIMER_PROF, time_limit)
    signal.setitimer(signal.ITIMER_REAL, max(CASE_WALL_LIMIT, time_limit))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = target.read(path)
        outcome, detail = ("ok", "") if target.valid(result) else ("invalid", repr(result)[:200])
    except CaseTimeout:
        outcome, detail = "timeout", f"over {time_limit} s of CPU or {CASE_WALL_LIMIT} s of wall time"
    except target.family as exc:
        outcome, detail = ("typed", "") if _names_file(exc, path) else ("unnamed", str(exc)[:200])
    except Exception as exc:  # noqa: BLE001 - counting escapes is the point
        outcome, detail = "escaped", f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        signal.signal(signal.SIGPROF, old_prof)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    if not tracing:
        tracemalloc.stop()
    if outcome in ("ok", "typed") and peak > CASE_MEMORY_LIMIT:
        outcome, detail = "memory", f"{peak / 2**20:.0f} MiB traced"
    return outcome, detail, seconds, peak


def run_corpus(cases: int = 3000, seed: int = 0, only: Sequence[str] | None = None,
               work: Path | None = None, time_limit: float = CASE_TIME_LIMIT) -> Report:
    """``cases`` mutated files spread evenly over the targets (or those in ``only``)."""
    report = Report()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="brainlib-fuzz-") as tmp:
        base = Path(work or tmp)
        chosen = [t for t in targets(base / "seeds") if not only or t.name in only]
        if not chosen:
            raise ValueError(f"no target among {only}")
        tracing = tracemalloc.is_tracing()
        if not tracing:
            tracemalloc.start()
        try:
            for t_index, target in enumerate(chosen):
                counts = report.counts.setdefault(target.name, Counter())
                rng = np.random.default_rng([seed, t_index])
                n = cases // len(chosen) + (t_index < cases % len(chosen))
                cpu_t = time.process_time()
                for i in range(n):
                    s = target.seeds[i % len(target.seeds)]
                    data, how = mutate(s, rng)
                    path = base / "cases" / target.name / f"case{i:06d}{target.suffix}"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    outcome, detail, secs, peak = run_case(target, path, data, time_limit)
                    counts[outcome] += 1
                    report.max_case_seconds = max(report.max_case_seconds, secs)
                    report.max_case_bytes = max(report.max_case_bytes, peak)
                    if outcome in FAILURES and sum(f["outcome"] == outcome for f in report.failures) < 50:
                        report.failures.append({"target": target.name, "case": i, "seed": s.name,
                                                "mutation": how, "outcome": outcome, "detail": detail})
                    path.unlink(missing_ok=True)
                report.target_cpu[target.name] = time.process_time() - cpu_t
        finally:
            if not tracing:
                tracemalloc.stop()
    report.cpu_seconds = time.process_time() - cpu0
    report.wall_seconds = time.perf_counter() - wall0
    return report
