"""yin2024 trainings side by side on worker processes give the one-process weights bit for bit."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from brainlib.papers import yin2024

pytestmark = pytest.mark.slow


def _weights(out: Path, workers: int) -> dict[str, dict[str, torch.Tensor]]:
    exp = yin2024.setup(profile="smoke", out_dir=out, dataset="cq500", seed=3)
    exp.settings = dataclasses.replace(exp.settings, train_workers=workers)
    sets = yin2024.load(exp)
    results, classifiers = yin2024.classification(exp, sets)
    detectors = yin2024.detection(exp, sets, results, classifiers)
    if workers > 1:  # the trainings ran in the workers; the main process only loaded them
        assert exp.timings["prefetch"] > 0
        assert any("worker processes" in n for n in exp.notes)
    return {t.name: t.model.state_dict() for t in classifiers + detectors}


def test_prefetched_trainings_equal_sequential_ones(tmp_path: Path) -> None:
    one, two = _weights(tmp_path / "one", 1), _weights(tmp_path / "two", 2)
    assert set(one) == set(two) and len(one) >= 5  # 4 classifiers + 2 detectors at depth 10
    for name in one:
        assert one[name].keys() == two[name].keys()
        for key, value in one[name].items():
            assert torch.equal(value, two[name][key]), f"{name}.{key}"
