"""GPU-hour estimates of the full profile (brainlib.experiment.estimate)."""
from __future__ import annotations

import math

import pytest

from brainlib.experiment import estimate as est


def test_flops_are_counted_not_assumed():
    # ResNet-50 at 224 px: 4.1 GMAC forward (torchvision's documented 4.09 GFLOPS as MACs),
    # forward + backward ~ 3 x 2 x 4.09 = 24.5 GFLOP per image
    resnet = est.flops_per_case("resnet50", ((3, 224, 224),))
    assert resnet / 1e9 == pytest.approx(24.5, rel=0.03)
    forward = est.flops_per_case("resnet50", ((3, 224, 224),), forward_only=True)
    assert resnet / forward == pytest.approx(3.0, rel=0.05)
    # input size scales convolution FLOPs by area
    big = est.flops_per_case("resnet50", ((3, 448, 448),), forward_only=True)
    assert big / forward == pytest.approx(4.0, rel=0.02)


def test_estimate_is_cases_times_epochs_times_flops_over_throughput():
    t = est.Training("probe", "resnet50", ((3, 224, 224),), cases=1000, epochs=3, runs=2)
    e = est.estimate("probe", [t])
    flops = est.flops_per_case("resnet50", ((3, 224, 224),))
    assert e.gpu_hours == pytest.approx(flops * 1000 * 3 * 2 / (est.GPU_TFLOPS * 1e12) / 3600)
    assert e.to_dict()["gpu_tflops"] == est.GPU_TFLOPS and "A100" in e.text()


@pytest.mark.slow
def test_he2024_full_estimate_uses_its_settings():
    e = est.full_estimate("he2024")
    (row,) = e.rows
    assert row["epochs"] == 20 and row["cases"] == pytest.approx(752_803 * 0.99 * 0.9)
    assert 100 < e.gpu_hours < 1000  # VGG-16 at 512 px over ~670,000 slices x 20 epochs x 9


def test_unknown_paper_is_reported_not_raised():
    text = est.full_run_text(["no_such_paper"])
    assert "no_such_paper" in text and "no estimate" in text
    assert math.isnan(est.Estimate("x", [], float("nan")).gpu_hours)


def test_cache_plan_sizes_and_checks_free_space(tmp_path):
    import shutil

    plan = est.cache_plan(752_803, 512, 1, 2, tmp_path / "not" / "yet")
    assert plan.bytes_needed == 752_803 * 512 * 512 * 2  # RSNA int16 HU at 512 px: ~395 GB
    assert plan.folder == str(tmp_path) and plan.bytes_free == shutil.disk_usage(tmp_path).free
    assert plan.fits == (plan.bytes_needed <= plan.bytes_free - 0.1 * shutil.disk_usage(tmp_path).total)
    small = est.cache_plan(100, 64, 3, 1, tmp_path)
    assert small.fits and "fits" in small.text()
    huge = est.cache_plan(10**9, 512, 3, 2, tmp_path)
    assert not huge.fits and "does NOT fit" in huge.text()


@pytest.mark.slow
def test_a_full_run_records_its_gpu_hour_estimate_in_the_manifest(tmp_path, monkeypatch):
    import json

    from brainlib.experiment import Settings, open_experiment, paper
    from brainlib.report import DataSource

    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Tiny(Settings):
        epochs: int = paper(3, "Sec. 1")

    monkeypatch.setattr(est, "_PLANS", {"pandiyaraju2024": lambda: (
        [est.Training("probe", "resnet50", ((3, 32, 32),), 10, 1)], ["probe plan"])})
    for key in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(key, raising=False)
    exp = open_experiment("pandiyaraju2024", Tiny(), params={"profile": "full"},
                          out_dir=tmp_path / "p", device="cpu", seed=0,
                          source=DataSource("phantom", "busi"))
    exp.finish()
    notes = json.loads((tmp_path / "p" / "manifest.json").read_text())["notes"]
    (note,) = [n for n in notes if n.startswith("GPU-hour estimate")]
    assert "pandiyaraju2024 full profile: about" in note and "probe plan" in note
