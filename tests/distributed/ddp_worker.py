"""A tiny training run by the DDP tests, under torchrun (2 gloo ranks) or in one process.

Usage: python -m torch.distributed.run --standalone --nproc-per-node 2 ddp_worker.py MODE OUT
MODE: ``straight`` (3 epochs into OUT/a, 2 epochs into OUT/b), ``resume`` (OUT/b to 3 epochs),
``fail`` (rank 1 raises during epoch 2). Rank 0 saves the weights and history it ended with to
OUT/<run>_rank<r>.pt for every rank, so the test can compare ranks and runs.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from brainlib.engine import fit, make_loader

GLOBAL_BATCH = 8
N_TRAIN, N_VAL = 48, 13  # 13: validation shards of 7 and 6 cases, gathered back in order


class Blobs(Dataset):
    """Two Gaussian blobs in 8-D (label = blob); deterministic items (no noise)."""

    def __init__(self, n: int, seed: int) -> None:
        g = np.random.default_rng(seed)
        self.y = (np.arange(n) % 2).astype(np.float32)
        self.x = (g.normal(size=(n, 8)) + self.y[:, None] * 1.5).astype(np.float32)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        return {"x": torch.from_numpy(self.x[i]), "y": torch.tensor([self.y[i]]), "id": f"c{i}"}


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))


def accuracy(preds) -> dict:
    return {"acc": float(((preds.y_score > 0.5) == (preds.y_true > 0.5)).mean()),
            "n_val": float(len(preds)), "first_id": float(preds.ids[0][1:])}


def bce(out, batch):
    return F.binary_cross_entropy_with_logits(out, batch["y"])


def train(ckpt: Path | None, epochs: int, losses=None, n_val: int = N_VAL):
    train_loader = make_loader(Blobs(N_TRAIN, 1), GLOBAL_BATCH, shuffle=True, seed=3)
    val_loader = make_loader(Blobs(n_val, 2), 4)
    return fit(build_model(), train_loader, val_loader, losses=losses or [("bce", bce, 1.0)],
               epochs=epochs, lr=1e-2, monitor="acc", metric_fn=accuracy, checkpoint_dir=ckpt,
               device="cpu", seed=0, progress=False)


def _save(out: Path, name: str, res) -> None:
    rank = int(os.environ.get("RANK", "0"))
    torch.save({"state": res.model.state_dict(), "history": res.history.to_dict("list"),
                "best_epoch": res.best_epoch, "world_size": res.world_size},
               out / f"{name}_rank{rank}.pt")


class RankFailure(RuntimeError):
    pass


def main(mode: str, out: Path) -> None:
    torch.set_num_threads(1)
    rank = int(os.environ.get("RANK", "0"))
    # rank 1 names a folder of its own: fit must use rank 0's and leave this one alone
    ckpt = (lambda run: out / (f"{run}" if rank == 0 else f"{run}_rank{rank}_unused"))
    if mode == "straight":
        _save(out, "a", train(ckpt("a"), 3))
        _save(out, "b2", train(ckpt("b"), 2))
        _save(out, "c", train(None, 1, n_val=1))  # rank 1's validation shard is empty
    elif mode == "resume":
        _save(out, "b3", train(ckpt("b"), 3))
    elif mode == "fail":
        steps = {"n": 0}

        def failing(outputs, batch):
            steps["n"] += torch.is_grad_enabled()  # training steps only, not validation
            if rank == 1 and steps["n"] == 8:  # epoch 2 (6 local steps of 4 cases per epoch)
                raise RankFailure("rank 1 failed on purpose in epoch 2")
            return bce(outputs, batch)

        train(ckpt("f"), 3, losses=[("bce", failing, 1.0)])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    from torch.distributed.elastic.multiprocessing.errors import record

    record(main)(sys.argv[1], Path(sys.argv[2]))
