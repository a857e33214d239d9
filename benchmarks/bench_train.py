"""Training throughput of each paper's main model: brainlib's engine against a minimal
hand-written PyTorch loop on the same model, data and batches (issue 10, "Use the machine").

For each case it reports images (or sequences) per second of one training epoch through
`brainlib.engine.fit` and through the plain loop, their ratio (target >= 0.9), the fraction of
the plain loop's step time spent waiting for the data loader (target < 10 %), and fp32 vs bf16
autocast, at the given torch thread counts. A benchmark, not a test: run it on a quiet machine.

    python benchmarks/bench_train.py                      # he2024 + drct2, threads 1 and 2
    python benchmarks/bench_train.py --cases he2024_full --threads 2 --amp fp32 bf16
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from brainlib.data import RSNADataset
from brainlib.data.synth import ensure_phantoms
from brainlib.engine import fit, make_loader, seed_everything
from brainlib.metrics import masked_bce
from brainlib.models import create_model


@dataclass
class Case:
    """A model, its training data and its loss, as the paper's quick profile uses them."""

    name: str
    build: Callable[[], torch.nn.Module]
    dataset: Dataset
    batch_size: int
    loss: Callable[[Any, dict], torch.Tensor]
    channels_last: bool


class _FeatureSequences(Dataset):
    """DrCT2's training input: cached slice features (M, D) and zoomed features per scan."""

    def __init__(self, n: int, seq_len: int, dim: int, classes: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, seq_len, 2, dim, generator=g)
        self.y = (torch.rand(n, classes, generator=g) < 0.3).float()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": self.x[i], "y": self.y[i], "id": str(i)}


def he2024_case(workers: int = 0) -> Case:
    root = ensure_phantoms("rsna", n_studies=24, seed=0, size=128, difficulty=0.5)
    ds = RSNADataset(root, view="slice", windows=None, size=64, cache=True, seed=0)
    return Case("he2024_full (64 px, width 0.125)",
                lambda: create_model("he2024_full", width=0.125), ds, 16,
                lambda out, b: masked_bce(out, b["y"]), True)


def drct2_case() -> Case:
    ds = _FeatureSequences(96, 16, 64, 9)

    def loss(out: Any, b: dict) -> torch.Tensor:
        return masked_bce(out["logits"] if isinstance(out, dict) else out, b["y"])

    def build() -> torch.nn.Module:
        return create_model("drct2", num_classes=9, feature_dim=64, hidden=64, fc=(64, 32),
                            m_key=8)

    return Case("drct2 (16 x 64-d features)", build, ds, 8, loss, False)


def _plain_epoch(case: Case, loader: DataLoader, amp: str) -> tuple[float, float, int]:
    """(seconds, seconds waiting for data, samples) of one epoch of a minimal loop."""
    seed_everything(0)
    model = case.build()
    if case.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    wait = 0.0
    n = 0
    t0 = time.perf_counter()
    it = iter(loader)
    while True:
        t_data = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            break
        wait += time.perf_counter() - t_data
        x = batch["x"]
        if case.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", torch.bfloat16, enabled=amp == "bf16"):
            loss = case.loss(model(x), batch)
        loss.backward()
        opt.step()
        n += len(batch["y"])
    return time.perf_counter() - t0, wait, n


def _engine_epoch(case: Case, loader: DataLoader, amp: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    fit(case.build(), loader, None, losses=[("bce", case.loss, 1.0)], epochs=1,
        device="cpu", seed=0, amp="bf16" if amp == "bf16" else None,
        channels_last=case.channels_last, progress=False)
    return time.perf_counter() - t0, len(loader.dataset)


def measure(case: Case, threads: int, amp: str, workers: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    loader = make_loader(case.dataset, case.batch_size, shuffle=True, seed=0, workers=workers)
    _plain_epoch(case, loader, amp)  # warm-up: allocator, caches, oneDNN kernels
    plain_s, wait_s, n = _plain_epoch(case, loader, amp)
    engine_s, n_engine = _engine_epoch(case, loader, amp)
    return {"case": case.name, "threads": threads, "amp": amp, "workers": workers,
            "samples": n, "plain_per_s": round(n / plain_s, 1),
            "engine_per_s": round(n_engine / engine_s, 1),
            "engine_vs_plain": round(plain_s / engine_s, 3),
            "data_wait_%": round(100 * wait_s / plain_s, 1)}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["he2024_full", "drct2"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--amp", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--workers", nargs="+", type=int, default=[0])
    args = parser.parse_args(argv)
    makers = {"he2024_full": he2024_case, "drct2": drct2_case}
    rows = []
    for key in args.cases:
        case = makers[key]()
        for threads in args.threads:
            for amp in args.amp:
                for workers in args.workers:
                    rows.append(measure(case, threads, amp, workers))
                    print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
