"""Redraw time of the WindowExplorer on a 512 x 512 slice (target: < 100 ms).

Measures the whole redraw path a slider move triggers: window the slice, blend the overlay,
encode the PNG, redraw the histogram strip and the readout. Run:
    .venv/bin/python benchmarks/bench_widgets.py [--repeats 50]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from brainlib.widgets import WindowExplorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    volume = rng.normal(30, 300, (8, 512, 512)).astype(np.float32)
    overlay = (rng.random((8, 512, 512)) > 0.9).astype(np.float32)
    for label, ov in (("no overlay", None), ("with overlay", overlay)):
        explorer = WindowExplorer(volume, overlay=ov)
        explorer.widget()
        times = []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            explorer.width = 80.0 + i  # what a slider move does
            times.append(time.perf_counter() - t0)
        ms = np.array(times) * 1e3
        print(f"512x512 redraw, {label}: median {np.median(ms):.1f} ms, "
              f"p95 {np.percentile(ms, 95):.1f} ms, max {ms.max():.1f} ms ({args.repeats} moves)")


if __name__ == "__main__":
    main()
