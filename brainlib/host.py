"""What machine a run ran on, and how fast it is: the context every run time needs.

Run times of the same code differ 2-2.5x between hosts of the same kind here (2 vCPUs named
"AMD EPYC": docs/PERFORMANCE.md, "Budget of he2024 + wang_drct2"), and a shared machine's load
changes them again. A time budget or a regression read from a bare number of seconds is
therefore ambiguous. `host_profile` records, once per ``./reproduce.sh`` run and before any
notebook starts, the CPU model, the logical CPUs, the vector extensions, the 1-minute load
average and a **reference speed**: single-thread float32 GEMM throughput (512 x 512, numpy's
BLAS; under a second). The runner stores it in every notebook's status.json and the
report shows it beside each run time, so two runs' seconds can be compared with their hosts'.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

#: Matrix side of the reference GEMM: small enough for caches, large enough for BLAS kernels.
GEMM_SIDE = 512
#: Seconds spent per measurement block; the reported speed is the best of `GEMM_BLOCKS` blocks
#: (the least disturbed by other processes).
GEMM_SECONDS = 0.15
GEMM_BLOCKS = 3
_FLAGS = ("avx512f", "avx512_bf16", "amx_bf16", "avx2", "fma", "avx")


def _cpuinfo(path: str = "/proc/cpuinfo") -> tuple[str, list[str]]:
    """Model name and the known vector flags of the first CPU (Linux); else platform's name."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine() or "unknown", []
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model or platform.machine() or "unknown", [f for f in _FLAGS if f in flags]


def reference_gflops(side: int = GEMM_SIDE, seconds: float = GEMM_SECONDS,
                     blocks: int = GEMM_BLOCKS) -> float:
    """Single-thread float32 GEMM throughput in GFLOP/s: best of `blocks` timed blocks."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((side, side), dtype=np.float32)
    b = rng.standard_normal((side, side), dtype=np.float32)
    flops = 2.0 * side ** 3
    best = 0.0
    with threadpool_limits(limits=1, user_api="blas"):
        a @ b  # warm-up: BLAS initialisation, page faults
        for _ in range(max(1, blocks)):
            n, start = 0, time.perf_counter()
            while True:
                a @ b
                n += 1
                elapsed = time.perf_counter() - start
                if elapsed >= seconds:
                    break
            best = max(best, n * flops / elapsed / 1e9)
    return best


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def host_profile(measure: bool = True) -> dict[str, Any]:
    """CPU model, logical CPUs, vector flags, load and (``measure``) the reference GEMM speed."""
    model, flags = _cpuinfo()
    out: dict[str, Any] = {"cpu": model, "logical_cpus": os.cpu_count(), "vector": flags,
                           "load_1min": load_average()}
    if measure:
        out["gemm_gflops_1thread"] = round(reference_gflops(), 1)
    return out


def describe(host: dict[str, Any] | None) -> str:
    """One line for the console and the report, e.g. ``AMD EPYC, 2 CPUs (avx2, fma),
    reference GEMM 17.3 GFLOP/s (1 thread), load 0.4 at the start, 1.9 at the end``."""
    if not host:
        return "not recorded"
    parts = [str(host.get("cpu") or "unknown CPU")]
    cpus = host.get("logical_cpus")
    vec = [v for v in host.get("vector") or [] if v != "avx"]
    if cpus:
        parts[0] += f", {cpus} CPUs" + (f" ({', '.join(vec)})" if vec else "")
    if host.get("gemm_gflops_1thread") is not None:
        parts.append(f"reference GEMM {host['gemm_gflops_1thread']:.1f} GFLOP/s (1 thread)")
    load = [f"{host[k]:.1f} at the {when}" for k, when in (("load_1min", "start"),
                                                           ("load_1min_end", "end"))
            if host.get(k) is not None]
    if load:
        parts.append("load " + ", ".join(load))
    return ", ".join(parts)
