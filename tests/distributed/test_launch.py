"""``brainlib run --nproc 2``: a notebook's engine.fit call trains on 2 gloo ranks end to end."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from brainlib.cli import build_parser
from brainlib.engine import launch as launch_module
from brainlib.engine.launch import _rank_entry, dispatch_run, run_argv, torchrun_command

PROBE = '''
import json, os
from pathlib import Path
import numpy as np, torch
from torch import nn
from torch.nn import functional as F
from brainlib.engine import fit, make_loader

class Blobs(torch.utils.data.Dataset):
    def __init__(self, n):
        g = np.random.default_rng(n)
        self.y = (np.arange(n) % 2).astype(np.float32)
        self.x = (g.normal(size=(n, 4)) + self.y[:, None]).astype(np.float32)
    def __len__(self):
        return len(self.y)
    def __getitem__(self, i):
        return {"x": torch.from_numpy(self.x[i]), "y": torch.tensor([self.y[i]]), "id": str(i)}

torch.manual_seed(seed)
model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
res = fit(model, make_loader(Blobs(32), 8, shuffle=True, seed=seed), make_loader(Blobs(9), 4),
          losses=[("bce", lambda o, b: F.binary_cross_entropy_with_logits(o, b["y"]), 1.0)],
          epochs=2, checkpoint_dir=Path(out_dir) / "ckpt", device=device, seed=seed, progress=False)
Path(out_dir, "result.json").write_text(json.dumps({
    "world_size": res.world_size, "rank": int(os.environ.get("RANK", 0)),
    "epochs": list(res.history["epoch"]), "bn": type(model[1]).__name__}))
'''


def _notebook(folder: Path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'profile = "smoke"\ndata_root = None\nout_dir = "out"\ndevice = "cpu"\nseed = 0')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(PROBE)]
    nb.metadata["kernelspec"] = {"name": "brainlib", "display_name": "brainlib", "language": "python"}
    nbformat.write(nb, folder / "ddp_probe.ipynb")


def test_run_argv_round_trips_without_nproc():
    args = build_parser().parse_args(["run", "--nproc", "4", "--only", "he2024", "--profile", "full",
                                      "--data-root", "/data", "--seed", "3", "--out", "o"])
    again = build_parser().parse_args(run_argv(args))
    assert again.nproc == 1 and again.only == "he2024" and again.profile == "full"
    assert again.data_root == "/data" and again.seed == 3 and again.out == "o"
    assert torchrun_command(4, ["run"])[1:5] == ["-m", "torch.distributed.run", "--standalone",
                                                 "--nproc-per-node=4"]


def test_launch_does_not_import_the_cli_that_imports_it():
    tree = ast.parse(Path(launch_module.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert not {m for m in imported if m and m.startswith("brainlib.cli")}, imported


def test_dispatch_run_hands_the_cli_entry_to_the_launcher(monkeypatch):
    seen = {}
    monkeypatch.setattr(launch_module, "launch",
                        lambda nproc, argv, entry: seen.update(nproc=nproc, argv=argv, entry=entry) or 0)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    args = build_parser().parse_args(["run", "--nproc", "3", "--out", "o"])
    sentinel = lambda argv: 0  # noqa: E731
    assert dispatch_run(args, lambda **kw: 1, sentinel) == 0
    assert seen == {"nproc": 3, "argv": run_argv(args), "entry": sentinel}
    args = build_parser().parse_args(["run", "--out", "o"])
    assert dispatch_run(args, lambda **kw: 1, sentinel) is None  # one process: the caller runs


def test_rank_entry_fails_the_rank_on_a_nonzero_status():
    assert _rank_entry(lambda argv: 0, ["run"]) == 0
    with pytest.raises(SystemExit) as stop:
        _rank_entry(lambda argv: 7, ["run"])
    assert stop.value.code == 7


@pytest.mark.slow
def test_brainlib_run_nproc_2_trains_a_notebook_on_two_ranks(tmp_path):
    notebooks, out, scratch = tmp_path / "nb", tmp_path / "out", tmp_path / "tmp"
    notebooks.mkdir(), scratch.mkdir()
    _notebook(notebooks)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(scratch),
           "BRAINLIB_DIST_TIMEOUT": "60"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "brainlib", "run", "--nproc", "2", "--notebooks", str(notebooks),
         "--out", str(out), "--device", "cpu", "--profile", "smoke"],
        capture_output=True, text=True, timeout=400, env=env)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((out / "ddp_probe" / "result.json").read_text())
    assert result == {"world_size": 2, "rank": 0, "epochs": [1, 2], "bn": "GlobalBatchNorm"}
    assert json.loads((out / "ddp_probe" / "status.json").read_text())["status"] == "ok"
    assert sorted(p.name for p in (out / "ddp_probe" / "ckpt").iterdir()) == ["best.pt", "last.pt"]
    assert torch.load(out / "ddp_probe" / "ckpt" / "last.pt", weights_only=True)["epoch"] == 2
    assert not [p for p in scratch.iterdir() if p.name.startswith("brainlib-rank")]  # removed
    print(f"brainlib run --nproc 2 of one notebook: {seconds:.1f} s wall")
