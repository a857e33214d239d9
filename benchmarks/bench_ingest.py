"""Ingest throughput: DICOM -> cached 3-window tensor at 256 px (issue 2, benchmark).

Measured in one run, interleaved round by round so that load from other processes on a
shared machine hits every method alike:
  (a) pydicom `dcmread` + `pixel_array` alone (the floor: decoding only);
  (b) a naive loop: float32 HU at full size, three windows with numpy, then a 2x2 mean resize;
  (c) `brainlib.data.cache.build_cache` (DICOM -> uint8 (3, 256, 256) memmap) with
      0 (in-process, one core), 1 and 2 worker processes.
Targets (one core): (c, 0 workers) >= 0.5 x (a) and >= 3 x (b).
Also: peak Python memory (tracemalloc) of `scan_folder` on N/2 and N files, to show it grows
with the index only (compare with the pixel bytes on disk).

Usage: python benchmarks/bench_ingest.py [--n 200] [--rounds 3] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom

from brainlib.data.cache import build_cache
from brainlib.io import BRAIN, SOFT_TISSUE, SUBDURAL, scan_folder
from brainlib.io.testing import write_ct_slice

WINDOWS = (BRAIN, SUBDURAL, SOFT_TISSUE)


def head_slice(rng: np.random.Generator, n: int = 512) -> np.ndarray:
    """A crude head-like HU slice (air, skull ring, brain, noise): realistic value ranges."""
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot((yy - n / 2) / (0.42 * n), (xx - n / 2) / (0.36 * n))
    hu = np.full((n, n), -1000.0)
    hu[r < 1.0] = 1200.0
    hu[r < 0.93] = 35.0
    hu += rng.normal(0.0, 8.0, hu.shape)
    return hu


def write_folder(root: Path, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        part = root / f"part{i % 2}"
        paths.append(str(write_ct_slice(part / f"IM{i:05d}.dcm", head_slice(rng), instance_number=i + 1,
                                        patient_id="BENCH", windows=[(40, 80), (600, 2800)])))
    return paths


def decode_only(paths: list[str]) -> None:
    for p in paths:
        pydicom.dcmread(p).pixel_array


def naive(paths: list[str], size: int = 256) -> list[np.ndarray]:
    out = []
    for p in paths:
        ds = pydicom.dcmread(p)
        hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        chans = [np.clip((hu - (w.level - w.width / 2)) / w.width, 0.0, 1.0) for w in WINDOWS]
        x = np.stack(chans)
        f = hu.shape[0] // size
        out.append(x.reshape(len(WINDOWS), size, f, size, f).mean(axis=(2, 4)))
    return out


def strided(paths: list[str]) -> list[np.ndarray]:
    """A less naive float32 reference: same maths, 2x2 mean by strided adds (no reshape-mean)."""
    out = []
    for p in paths:
        ds = pydicom.dcmread(p)
        hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        small = (hu[0::2, 0::2] + hu[1::2, 0::2] + hu[0::2, 1::2] + hu[1::2, 1::2]) * np.float32(0.25)
        out.append(np.stack([np.clip((small - (w.level - w.width / 2)) / w.width, 0.0, 1.0) for w in WINDOWS]))
    return out


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def scan_peak(root: Path, pattern: str) -> tuple[int, int]:
    tracemalloc.start()
    index, skipped = scan_folder(root, pattern)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return len(index) + len(skipped), peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="number of 512x512 slices")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best and median reported)")
    ap.add_argument("--workdir", type=Path, default=None, help="where to write the files (default: temp)")
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        paths = write_folder(work / "dicom", args.n)
        print(f"wrote {args.n} 512x512 CT slices in {time.perf_counter() - t:.1f} s under {work}")
        decode_only(paths[:20])  # warm the page cache and imports

        methods: dict[str, Callable[[], object]] = {
            "(a) dcmread+pixel_array": lambda: decode_only(paths),
            "(b) naive float32 3-window+resize": lambda: naive(paths),
            "(b') float32 resize-then-window (ref.)": lambda: strided(paths),
        }
        for w in (0, 1, 2):
            methods[f"(c) brainlib cache, workers={w}"] = (
                lambda w=w: build_cache(paths, WINDOWS, 256, cache_dir=work / "cache", workers=w,
                                        progress=False, rebuild=True)
            )
        rates: dict[str, list[float]] = {k: [] for k in methods}
        for _ in range(args.rounds):
            for name, fn in methods.items():
                rates[name].append(args.n / timed(fn))
        reuse = timed(lambda: build_cache(paths, WINDOWS, 256, cache_dir=work / "cache", progress=False))

        print(f"\nslices/s over {args.rounds} interleaved rounds (best / median):")
        for name, r in rates.items():
            print(f"  {name:40s} {max(r):8.0f} / {statistics.median(r):8.0f}")
        best = {k: max(v) for k, v in rates.items()}
        med = {k: statistics.median(v) for k, v in rates.items()}
        a, b = "(a) dcmread+pixel_array", "(b) naive float32 3-window+resize"
        print("\nratios (best-vs-best; median-vs-median):")
        for w in (0, 1, 2):
            c = f"(c) brainlib cache, workers={w}"
            print(f"  workers={w}: {best[c] / best[a]:.2f}x (a) [{med[c] / med[a]:.2f}x]   "
                  f"{best[c] / best[b]:.2f}x (b) [{med[c] / med[b]:.2f}x]")
        b2 = "(b') float32 resize-then-window (ref.)"
        print(f"  workers=0 vs (b'): {best['(c) brainlib cache, workers=0'] / best[b2]:.2f}x")
        print("  targets (one core, workers=0): >= 0.5x (a), >= 3x (b)")
        print(f"load average during the run: {os.getloadavg()} on {os.cpu_count()} CPUs (shared machine)")
        print(f"cache reuse (second call, same key): {reuse * 1e3:.1f} ms")

        n_half, peak_half = scan_peak(work / "dicom", "part0/*.dcm")
        n_all, peak_all = scan_peak(work / "dicom", "**/*.dcm")
        pixel_bytes = sum(Path(p).stat().st_size for p in paths)
        print(f"\nscan_folder peak Python memory (tracemalloc): {n_half} files {peak_half / 1e6:.2f} MB, "
              f"{n_all} files {peak_all / 1e6:.2f} MB "
              f"(~{(peak_all - peak_half) / max(1, n_all - n_half) / 1e3:.1f} kB per extra file; "
              f"files on disk {pixel_bytes / 1e6:.0f} MB)")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
