"""brainlib.engine.fit under torchrun: 2 gloo processes on CPU (tests/distributed/ddp_worker.py).

Tolerance of the DDP-vs-one-process comparison: |w_ddp - w_1proc| <= 1e-5 + 1e-4 |w_1proc| per
weight after 3 epochs (18 Adam steps of a global batch of 8); measured ~1.2e-7 (float
summation order of the gradient all-reduce and of the global batch-norm statistics).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("ddp_worker.py")


def _worker_module():
    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _torchrun(mode: str, out: Path, timeout: float = 120, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **env}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(WORKER), mode, str(out)], capture_output=True, text=True, timeout=timeout, env=environ)
    return proc, time.perf_counter() - start


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    for mode in ("straight", "resume"):  # resume: a new torchrun job continues run b
        proc, _ = _torchrun(mode, out)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _load(out: Path, name: str, rank: int) -> dict:
    return torch.load(out / f"{name}_rank{rank}.pt", weights_only=True)


def test_ddp_training_matches_one_process_with_the_same_global_batch(runs):
    torch.set_num_threads(1)
    ref = _worker_module().train(None, 3)
    for rank in (0, 1):
        got = _load(runs, "a", rank)
        assert got["world_size"] == 2
        assert got["state"].keys() == ref.model.state_dict().keys()
        for key, value in ref.model.state_dict().items():
            torch.testing.assert_close(got["state"][key], value, rtol=1e-4, atol=1e-5, msg=key)
        hist = got["history"]
        assert hist["n_val"] == [13.0] * 3 and hist["first_id"] == [0.0] * 3  # gathered, in order
        assert hist["acc"] == list(ref.history["acc"])
        assert got["best_epoch"] == ref.best_epoch
        for key in ("train_loss", "val_loss"):
            assert hist[key] == pytest.approx(list(ref.history[key]), rel=1e-4)


def test_fewer_validation_cases_than_ranks(runs):
    ref = _worker_module().train(None, 1, n_val=1)
    for rank in (0, 1):
        got = _load(runs, "c", rank)
        assert got["history"]["n_val"] == [1.0]
        assert got["history"]["val_loss"] == pytest.approx(list(ref.history["val_loss"]), rel=1e-4)


def test_the_ranks_end_with_identical_weights(runs):
    a0, a1 = _load(runs, "a", 0), _load(runs, "a", 1)
    for key in a0["state"]:
        torch.testing.assert_close(a0["state"][key], a1["state"][key], rtol=0, atol=0, msg=key)
    drop = ("seconds",)
    assert ({k: v for k, v in a0["history"].items() if k not in drop}
            == {k: v for k, v in a1["history"].items() if k not in drop})


def test_only_rank_0_writes_checkpoints_into_its_folder(runs):
    assert sorted(p.name for p in (runs / "a").iterdir()) == ["best.pt", "last.pt"]
    assert not (runs / "a_rank1_unused").exists() and not (runs / "b_rank1_unused").exists()
    last = torch.load(runs / "a" / "last.pt", weights_only=True)  # weights-only loadable
    assert last["epoch"] == 3 and len(last["rng_ranks"]) == 2


def test_resume_under_ddp_reproduces_the_uninterrupted_run(runs):
    assert _load(runs, "b2", 0)["history"]["epoch"] == [1, 2]
    for rank in (0, 1):
        straight, resumed = _load(runs, "a", rank), _load(runs, "b3", rank)
        assert resumed["history"]["epoch"] == [1, 2, 3]
        for key in straight["state"]:
            torch.testing.assert_close(resumed["state"][key], straight["state"][key],
                                       rtol=0, atol=0, msg=key)
        drop = {"seconds"}
        assert ({k: v for k, v in resumed["history"].items() if k not in drop}
                == {k: v for k, v in straight["history"].items() if k not in drop})


def test_a_failing_rank_ends_the_job_with_its_error(tmp_path):
    proc, seconds = _torchrun("fail", tmp_path, timeout=180, BRAINLIB_DIST_TIMEOUT="30")
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "RankFailure" in output and "rank 1 failed on purpose in epoch 2" in output
    assert "ChildFailedError" in output or "FAILED" in output
    assert seconds < 120  # no hang: torchrun stops rank 0, the gloo timeout (30 s) bounds it anyway
    last = torch.load(tmp_path / "f" / "last.pt", weights_only=True)
    assert last["epoch"] == 1  # epoch 1 was checkpointed; a rerun resumes from it


def test_drct2_with_parameters_left_without_gradient_trains_under_ddp():
    script = Path(__file__).with_name("ddp_models.py")
    cfg = '{"num_classes": 4, "feature_dim": 32, "hidden": 16, "fc": [16, 8], "m_key": 4}'
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(script), "drct2", "[20, 2, 32]", "4", cfg], capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = sorted(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    assert len(lines) == 2 and "world 2" in lines[0]
    assert lines[0].split("loss")[1] == lines[1].split("loss")[1]  # both ranks, same losses
