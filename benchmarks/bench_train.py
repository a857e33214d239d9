"""Training throughput of each paper's main model: brainlib's engine against a minimal
hand-written PyTorch loop on the same model, data and batches (issue 10, "Use the machine").

Speed (default): for every combination of torch threads, DataLoader workers, channels_last and
fp32/bf16 autocast it times ``--steps`` training steps through `brainlib.engine.fit` and through
a plain loop (model built and kernels warmed up outside the timed region for both; the two are
interleaved ``--repeats`` times so that load from other processes hits both alike), and reports
images (or sequences) per second, the engine/plain ratio of the medians (target >= 0.9) and the
fraction of the plain loop's step time spent waiting for the next batch (target < 10 %).

Numerics (``--numerics``): a short seeded training per setting, compared with the reference
(fp32, 1 thread, 0 workers, channels_last off): largest weight difference and largest
difference of predicted probabilities on held-out images. 0 means bit-identical.

The machine is shared: every row records the 1-minute load average (``os.getloadavg``) seen
when it was measured. A benchmark, not a test.

    python benchmarks/bench_train.py                                  # he2024 + drct2 grid
    python benchmarks/bench_train.py --cases he2024_full --threads 2 --workers 0 2 --amp fp32 bf16
    python benchmarks/bench_train.py --numerics --cases he2024_full drct2
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from brainlib.engine import fit, make_loader, predict, seed_everything
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
    image_input: bool  # 4-D image batches (channels_last applies)


def _logits(out: Any) -> torch.Tensor:
    return out["logits"] if isinstance(out, dict) else out


class _FeatureSequences(Dataset):
    """DrCT2's training input: cached slice features and their zoomed twins, (M, 2, D) per scan."""

    def __init__(self, n: int, seq_len: int, dim: int, classes: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, seq_len, 2, dim, generator=g)
        self.y = (torch.rand(n, classes, generator=g) < 0.3).float()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": self.x[i], "y": self.y[i], "id": str(i)}


def he2024_case() -> Case:
    """he2024's full model at the quick profile: HU input at 64 px, VGG width 1/8 with batch
    norm, batch 16, on the quick profile's phantoms (cached)."""
    from brainlib.data import RSNADataset
    from brainlib.data.synth import ensure_phantoms
    from brainlib.papers.he2024.settings import He2024Settings

    s = He2024Settings.for_profile("quick")
    root = ensure_phantoms("rsna", **s.phantom(0))
    ds = RSNADataset(root, view="slice", windows=None, size=s.image_size, cache=True, seed=0,
                     progress=False)

    def build() -> torch.nn.Module:
        return create_model("he2024_full", width=s.backbone_width, batch_norm=s.batch_norm)

    return Case(f"he2024_full ({s.image_size} px, width {s.backbone_width}, bs {s.batch_size})",
                build, ds, s.batch_size, lambda out, b: masked_bce(_logits(out), b["y"]), True)


def drct2_case() -> Case:
    """DrCT2 at the quick profile on cached 64-d slice features (16 slices, m_key 8, batch 8)."""
    ds = _FeatureSequences(96, 16, 64, 9)

    def build() -> torch.nn.Module:
        return create_model("drct2", num_classes=9, feature_dim=64, hidden=64, fc=(64, 32),
                            m_key=8)

    return Case("drct2 (16 x 64-d features, bs 8)", build, ds, 8,
                lambda out, b: masked_bce(_logits(out), b["y"]), False)


CASES = {"he2024_full": he2024_case, "drct2": drct2_case}


# --------------------------------------------------------------------------- the two loops
def _built(case: Case, channels_last: bool) -> torch.nn.Module:
    seed_everything(0)
    model = case.build()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _plain_steps(case: Case, model: torch.nn.Module, loader: DataLoader, amp: str,
                 channels_last: bool, steps: int) -> tuple[float, float, float, int]:
    """(seconds, CPU seconds of this process, seconds waiting for data, samples) of `steps`
    steps of a minimal loop."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    wait, n = 0.0, 0
    c0, t0 = time.process_time(), time.perf_counter()
    it = iter(loader)
    for _ in range(steps):
        t_data = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            break
        wait += time.perf_counter() - t_data
        x = batch["x"]
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", torch.bfloat16, enabled=amp == "bf16"):
            loss = case.loss(model(x), batch)
        loss.backward()
        opt.step()
        n += len(batch["y"])
    return time.perf_counter() - t0, time.process_time() - c0, wait, n


def _engine_steps(case: Case, model: torch.nn.Module, loader: DataLoader, amp: str,
                  channels_last: bool, steps: int) -> tuple[float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    fit(model, loader, None, losses=[("bce", case.loss, 1.0)], epochs=1, lr=1e-3,
        device="cpu", seed=0, amp="bf16" if amp == "bf16" else None,
        channels_last=channels_last, progress=False, max_steps_per_epoch=steps)
    return time.perf_counter() - t0, time.process_time() - c0


def measure(case: Case, threads: int, amp: str, workers: int, channels_last: bool, steps: int,
            repeats: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    loader = make_loader(case.dataset, case.batch_size, shuffle=True, seed=0, workers=workers,
                         drop_last=True)
    steps = min(steps, len(loader))
    _plain_steps(case, _built(case, channels_last), loader, amp, channels_last, 3)  # warm-up
    plain, engine, ratio, cpu_ratio, waits, loads = [], [], [], [], [], []
    n = 0
    for _ in range(repeats):  # paired: each engine run right after its plain twin
        loads.append(os.getloadavg()[0])
        seconds, cpu, wait, n = _plain_steps(case, _built(case, channels_last), loader, amp,
                                             channels_last, steps)
        e_seconds, e_cpu = _engine_steps(case, _built(case, channels_last), loader, amp,
                                         channels_last, steps)
        plain.append(seconds)
        engine.append(e_seconds)
        ratio.append(seconds / e_seconds)
        cpu_ratio.append(cpu / e_cpu)
        waits.append(wait / seconds)
    med = statistics.median
    return {"case": case.name.split(" ")[0], "threads": threads, "workers": workers,
            "channels_last": channels_last if case.image_input else "n/a", "amp": amp,
            "steps": steps, "repeats": repeats,
            "plain_per_s": round(n / med(plain), 1), "engine_per_s": round(n / med(engine), 1),
            "best_plain_per_s": round(n / min(plain), 1),
            "engine_vs_plain": round(med(ratio), 3),  # median of paired wall-time ratios
            "engine_vs_plain_cpu": round(med(cpu_ratio), 3),  # the same in CPU time
            "data_wait_%": round(100 * med(waits), 1),
            "load_1min": round(statistics.mean(loads), 2)}


# --------------------------------------------------------------------------- numerics
def _short_training(case: Case, threads: int, amp: str, workers: int, channels_last: bool,
                    steps: int, epochs: int, held_out: Dataset) -> tuple[dict, torch.Tensor, list]:
    torch.set_num_threads(threads)
    n_train = min(len(case.dataset), steps * case.batch_size)
    train = Subset(case.dataset, range(n_train))
    loader = make_loader(train, case.batch_size, shuffle=True, seed=0, workers=workers)
    res = fit(_built(case, channels_last), loader, None, losses=[("bce", case.loss, 1.0)],
              epochs=epochs, lr=1e-3, device="cpu", seed=0,
              amp="bf16" if amp == "bf16" else None, channels_last=channels_last,
              progress=False)
    pred = predict(res.model, make_loader(held_out, case.batch_size), device="cpu",
                   channels_last=channels_last, amp="bf16" if amp == "bf16" else None,
                   keep_extras=False)
    state = {k: v.detach().float().clone() for k, v in res.model.state_dict().items()
             if v.is_floating_point()}
    return state, torch.from_numpy(pred.y_score), list(res.history["train_loss"])


def numerics(case: Case, settings: list[dict[str, Any]], steps: int, epochs: int
             ) -> list[dict[str, Any]]:
    """Each setting against the reference (fp32, 1 thread, 0 workers, channels_last off)."""
    n = len(case.dataset)
    held_out = Subset(case.dataset, range(max(0, n - 128), n))
    ref_kw = dict(threads=1, amp="fp32", workers=0, channels_last=False)
    ref_state, ref_pred, ref_loss = _short_training(case, **ref_kw, steps=steps, epochs=epochs,
                                                    held_out=held_out)
    rows = []
    for kw in settings:
        full = {**ref_kw, **kw}
        if not case.image_input and full["channels_last"]:
            continue
        load = os.getloadavg()[0]
        state, pred, loss = _short_training(case, **full, steps=steps, epochs=epochs,
                                            held_out=held_out)
        weight_diff = max(float((state[k] - ref_state[k]).abs().max()) for k in ref_state)
        scale = max(float(ref_state[k].abs().max()) for k in ref_state)
        rows.append({"case": case.name.split(" ")[0], **full, "steps": steps * epochs,
                     "max_weight_diff": weight_diff, "rel_weight_diff": weight_diff / scale,
                     "max_prob_diff": float((pred - ref_pred).abs().max()),
                     "mean_prob_diff": float((pred - ref_pred).abs().mean()),
                     "final_loss_ref": round(ref_loss[-1], 5), "final_loss": round(loss[-1], 5),
                     "bit_identical": weight_diff == 0.0 and bool(torch.equal(pred, ref_pred)),
                     "load_1min": round(load, 2)})
        print(rows[-1], flush=True)
    return rows


NUMERIC_SETTINGS = [
    {},  # the reference again: determinism per seed
    {"threads": 2},
    {"workers": 2},
    {"channels_last": True},
    {"threads": 2, "channels_last": True},
    {"amp": "bf16"},
    {"threads": 2, "amp": "bf16"},
]


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--amp", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--channels-last", nargs="+", default=["on", "off"],
                        choices=["on", "off"])
    parser.add_argument("--steps", type=int, default=25, help="training steps per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--numerics", action="store_true",
                        help="compare short trainings per setting instead of timing them")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of a --numerics training")
    parser.add_argument("--csv", help="also write the table here")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()}", flush=True)
    rows: list[dict[str, Any]] = []
    for key in args.cases:
        case = CASES[key]()
        if args.numerics:
            rows += numerics(case, NUMERIC_SETTINGS, args.steps, args.epochs)
            continue
        layouts = [c == "on" for c in args.channels_last] if case.image_input else [False]
        for threads in args.threads:
            for amp in args.amp:
                for workers in args.workers:
                    for channels_last in layouts:
                        rows.append(measure(case, threads, amp, workers, channels_last,
                                            args.steps, args.repeats))
                        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return table


if __name__ == "__main__":
    main()
