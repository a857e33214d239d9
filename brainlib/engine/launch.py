"""``brainlib run --nproc N``: the notebooks' trainings on N processes through torch.distributed.

How a notebook's training gets distributed: ``brainlib run --nproc N`` starts N ranks with
torch.distributed's elastic launcher (what ``torchrun --standalone --nproc-per-node N`` runs;
processes forked, so a lock descriptor reproduce.sh passes down reaches rank 0). Each rank runs
the same notebooks with papermill; the kernel inherits the rank's ``RANK``/``WORLD_SIZE``/
``MASTER_ADDR`` environment, and every :func:`brainlib.engine.fit` call joins the job's process
group (:mod:`brainlib.engine.distributed`): the training steps are shared and synchronised,
everything else in the notebook (data loading, evaluation, tables) runs identically on every
rank. Rank 0 writes into the real output folder; ranks > 0 write into a scratch folder deleted
when they finish, and ``fit`` makes every rank use rank 0's checkpoint folder. Because a rank
that skipped a notebook another rank runs would leave the other's ``fit`` waiting, a
distributed run re-runs every selected notebook (as ``--force``): finished trainings return at
once from their checkpoints. A failing rank stops the job (the launcher ends the others and
exits non-zero naming the rank and its error).

Multi-node: start ``torchrun`` yourself with its rendezvous arguments and ``-m brainlib run``
(README, docs/slurm_example.sh); the output folder must be on a shared file system.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from brainlib.engine.distributed import env_info


def torchrun_command(nproc: int, brainlib_args: Sequence[str]) -> list[str]:
    """The equivalent command line: ``brainlib <brainlib_args>`` on ``nproc`` local processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "brainlib", *brainlib_args]


#: The ``brainlib`` command's entry point (:func:`brainlib.cli.main`), handed in by the caller so
#: this module never imports the CLI that imports it.
Entry = Callable[[list[str]], int]


def _rank_entry(entry: Entry, brainlib_args: list[str]) -> int:
    status = entry(brainlib_args)
    if status:
        raise SystemExit(status)  # the launcher reports the rank as failed
    return 0


def launch(nproc: int, brainlib_args: Sequence[str], entry: Entry) -> int:
    """Run ``entry(brainlib_args)`` (the ``brainlib`` command) on ``nproc`` ranks; 0 if every
    rank succeeded."""
    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {nproc}")
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    print(f"brainlib: {nproc} processes (as: {' '.join(torchrun_command(nproc, brainlib_args))})",
          flush=True)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc,
                          run_id=f"brainlib-{os.getpid()}", rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0, start_method="fork",
                          monitor_interval=0.5)
    try:
        elastic_launch(config, _rank_entry)(entry, list(brainlib_args))
    except ChildFailedError as exc:
        print(f"brainlib: a rank failed, the job was stopped:\n{exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def run_as_rank(run: Callable[..., int], out_dir: Path, **kwargs) -> int:
    """Inside a torchrun job: ``run(out_dir=..., force=True, **kwargs)`` for this rank.

    Rank 0 uses ``out_dir``; a rank > 0 a scratch folder (removed afterwards) and its console
    output is dropped unless it fails.
    """
    info = env_info()
    if info.is_main:
        return run(out_dir=out_dir, force=True, **kwargs)
    scratch = Path(tempfile.mkdtemp(prefix=f"brainlib-rank{info.rank}-"))
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            status = run(out_dir=scratch, force=True, **kwargs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if status:
        print(f"[rank {info.rank}]\n{buffer.getvalue()}", file=sys.stderr, flush=True)
    return status


def run_argv(args) -> list[str]:
    """``brainlib run`` arguments (an argparse namespace) for the ranks, without ``--nproc``."""
    argv = ["run", "--profile", args.profile, "--out", str(args.out), "--device", args.device,
            "--notebooks", str(args.notebooks)]
    if args.only:
        argv += ["--only", args.only]
    if args.data_root:
        argv += ["--data-root", str(args.data_root)]
    if args.seed is not None:
        argv += ["--seed", str(args.seed)]
    if getattr(args, "wait", None) is not None:
        argv += ["--wait", str(args.wait)]
    return argv


def dispatch_run(args, run: Callable[..., int], entry: Entry, **kwargs) -> int | None:
    """What ``brainlib run`` does about processes: launch torchrun (``--nproc`` > 1 outside a
    job; each rank calls ``entry``, the CLI's ``main``), run as a rank (inside one), or None
    (one process: the caller runs as usual)."""
    if env_info().active:
        return run_as_rank(run, Path(args.out), **kwargs)
    if getattr(args, "nproc", 1) > 1:
        return launch(args.nproc, run_argv(args), entry)
    return None
