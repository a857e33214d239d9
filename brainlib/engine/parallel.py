"""Independent trainings of one notebook side by side in worker processes ("prefetch").

A paper notebook trains many independent networks (ablation rows, table variants) one after the
other, each through :func:`brainlib.engine.fit` with its own ``checkpoint_dir`` and seed. On a
multi-core CPU with one torch thread per training (the quick profiles: small models scale
badly over threads, docs/PERFORMANCE.md) the other cores sit idle. :func:`run_jobs` runs such
trainings in a pool of spawned processes, respecting dependencies (a detector after the
classifier that initialises its backbone). Each job writes only its finished checkpoint; the
notebook then runs its ordinary sequential code, whose ``fit(..., resume=True)`` finds every
training finished and loads it. Results are therefore the sequential ones by construction:
the same function, seed, data and thread count produce the same checkpoint in any process
(tested bit for bit). With ``workers <= 1`` nothing runs here and the notebook trains as before.
"""
from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Job:
    """One training to run in a worker: ``fn(*args)`` after the jobs named in ``after``.

    ``fn`` must be a module-level function (it is pickled into a spawned process) and its
    arguments picklable; its return value is discarded (the checkpoint is the result).
    """

    name: str
    fn: Callable[..., Any]
    args: tuple = ()
    after: tuple[str, ...] = ()


def _init_worker(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(int(threads))


def _timed_call(fn: Callable[..., Any], args: tuple) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _check(jobs: Sequence[Job]) -> None:
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names must be unique, got {names}")
    known = set(names)
    for j in jobs:
        missing = [a for a in j.after if a not in known]
        if missing:
            raise ValueError(f"job {j.name!r} waits for unknown jobs {missing}")
    done: set[str] = set()
    pending = list(jobs)
    while pending:  # a cycle leaves jobs that never become ready
        ready = [j for j in pending if set(j.after) <= done]
        if not ready:
            raise ValueError(f"jobs wait on each other in a cycle: {[j.name for j in pending]}")
        done.update(j.name for j in ready)
        pending = [j for j in pending if j.name not in done]


def run_jobs(jobs: Sequence[Job], workers: int, threads: int | None = 1) -> dict[str, float]:
    """Run `jobs` on `workers` spawned processes with `threads` torch threads each.

    Jobs start in the given order as soon as their ``after`` jobs have finished. Returns the
    wall seconds of each job (empty when ``workers <= 1`` or there are no jobs: then nothing
    runs and the caller's sequential code trains). The first job that raises (or an
    interrupt) stops the pool: queued jobs are cancelled, running ones terminated (their
    last completed epoch stays checkpointed), and the exception is raised here.

    Raises:
        ValueError: duplicate names, unknown or cyclic dependencies.
    """
    _check(jobs)
    if workers <= 1 or not jobs:
        return {}
    seconds: dict[str, float] = {}
    pending = list(jobs)
    running: dict[Future, str] = {}
    ctx = multiprocessing.get_context("spawn")  # fork after torch's thread pools is unsafe
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                             initializer=_init_worker, initargs=(threads,)) as pool:
        try:
            while pending or running:
                done_names = set(seconds)
                for job in [j for j in pending if set(j.after) <= done_names]:
                    if len(running) >= workers:
                        break
                    running[pool.submit(_timed_call, job.fn, job.args)] = job.name
                    pending.remove(job)
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    name = running.pop(fut)
                    seconds[name] = fut.result()  # re-raises the worker's exception
        except BaseException:  # a failed job or an interrupt: stop the others now
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()  # checkpoints are written atomically: a rerun resumes
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return seconds
