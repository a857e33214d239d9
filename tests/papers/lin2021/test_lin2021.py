"""lin2021 pipeline pieces: settings, augmentation, the two evaluations, metrics, claims."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from brainlib.metrics import classification_metrics
from brainlib.papers.lin2021.data import ScanData, augment, draw_params, leak_frame, make_split
from brainlib.papers.lin2021.settings import Lin2021Settings
from brainlib.papers.lin2021.tables import macro_metrics, thyroid_gap


def test_settings_profiles_and_readings():
    full = Lin2021Settings.for_profile("full")
    assert full.evaluations == ("augmented_test", "leakage_free") and not full.deviations()
    quick = Lin2021Settings.for_profile("quick")
    assert {d.name for d in quick.deviations()} >= {"baselines", "baseline_width"}
    assert any(r.name == "n_augment" for r in quick.readings())
    assert Lin2021Settings.for_profile("quick", evaluation="leakage_free").comparison_evaluations == ("leakage_free",)
    with pytest.raises(ValueError):
        Lin2021Settings.for_profile("quick", evaluation="test_only")
    with pytest.raises(ValueError, match="image_size"):
        Lin2021Settings.for_profile("quick", image_size=64)  # AlexNet needs width >= 64


def test_augment_identity_and_mirror():
    x = torch.rand(3, 2, 16, 8)
    ident = np.array([[0, 1, 0, 0, 0, 1]] * 3, np.float32)
    assert torch.allclose(augment(x, ident), x, atol=1e-5)
    mirror = ident.copy()
    mirror[:, 4] = 1
    assert torch.allclose(augment(x, mirror), x.flip(-1), atol=1e-5)
    p = draw_params(np.random.default_rng(0), 100, Lin2021Settings())
    assert p.shape == (100, 6) and np.abs(p[:, 0]).max() <= np.radians(10) + 1e-6


class _Toy:
    """A stand-in dataset: 24 scans of 12 patients (two scans each), 4 classes."""

    classes = ("normal", "metastasis", "arthritis", "thyroid_carcinoma")

    def __init__(self) -> None:
        self.ids = [f"s{i}" for i in range(24)]
        self.groups = np.repeat(np.arange(12), 2).astype(str)
        self.labels = np.eye(4, dtype=np.float32)[np.repeat(np.arange(12) % 4, 2)]

    def __len__(self) -> int:
        return 24

    def __getitem__(self, i: int) -> dict:
        return {"x": torch.full((2, 16, 8), float(i))}


def test_paper_evaluation_leaks_and_the_leakage_free_one_does_not():
    s = Lin2021Settings.for_profile("smoke", n_augment=3, image_size=128)
    data = ScanData(_Toy(), None, None)
    paper = make_split(data, "augmented_test", s, seed=0)
    assert leak_frame(paper)["scan_in_train"].mean() > 0.5
    free = make_split(data, "leakage_free", s, seed=0)
    leak = leak_frame(free)
    assert not leak["patient_in_train"].any()
    assert all(i.endswith("|orig") for i in free.test.ids + free.val.ids)
    assert len(free.train) == 4 * len(set(free.train.source))


def test_fast_metrics_equal_brainlib_metrics():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 50)
    s = rng.random((50, 4))
    fast = macro_metrics(y, s)
    ref = classification_metrics(y, s, task="multiclass", class_names=list(_Toy.classes))
    for key, value in fast.items():
        assert value == pytest.approx(ref[key]), key
    perfect = np.eye(4)[y]
    assert thyroid_gap(y, perfect) == 0.0
