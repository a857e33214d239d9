"""brainlib.host: the machine a run ran on and its reference speed."""
from __future__ import annotations

import math

from threadpoolctl import threadpool_info

from brainlib import host


def test_cpuinfo_reads_model_and_vector_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx fma avx2 bmi2\n\n"
                    "processor\t: 1\nmodel name\t: other\nflags\t\t: avx512f\n")
    model, flags = host._cpuinfo(str(info))
    assert model == "AMD EPYC"  # the first CPU's
    assert flags == ["avx2", "fma", "avx"]  # known vector flags only, in a fixed order
    model, flags = host._cpuinfo(str(tmp_path / "missing"))
    assert model and flags == []  # no /proc: the platform's name, no flags


def test_reference_gflops_is_a_speed_and_leaves_blas_threads_alone():
    before = [(i["user_api"], i["num_threads"]) for i in threadpool_info()]
    speed = host.reference_gflops(side=64, seconds=0.01, blocks=2)
    assert math.isfinite(speed) and speed > 0.01
    assert [(i["user_api"], i["num_threads"]) for i in threadpool_info()] == before


def test_host_profile_and_its_line():
    prof = host.host_profile(measure=False)
    assert prof["logical_cpus"] >= 1 and "gemm_gflops_1thread" not in prof
    line = host.describe({"cpu": "X", "logical_cpus": 4, "vector": ["avx2", "avx"],
                          "gemm_gflops_1thread": 20.04, "load_1min": 3.0})
    assert line == "X, 4 CPUs (avx2), reference GEMM 20.0 GFLOP/s (1 thread), load 3.0 at the start"
    assert host.describe({"cpu": "Y"}) == "Y"
    assert host.describe(None) == "not recorded"
