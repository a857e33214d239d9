"""The engine's optimisers use PyTorch's multi-tensor (foreach) update, which is faster on the CPU
and must not change a single weight: same seed, same result as the per-parameter loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from brainlib.engine import fit, make_loader, optim


class _Data(torch.utils.data.Dataset):
    def __init__(self, n: int = 24) -> None:
        g = np.random.default_rng(0)
        self.x = g.normal(size=(n, 2, 6, 6)).astype(np.float32)
        self.y = (self.x[:, 0].mean(axis=(1, 2)) > 0).astype(np.float32)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return {"x": torch.from_numpy(self.x[i]), "y": torch.tensor([self.y[i]]), "id": str(i)}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 1))


def _train(optimizer: str, weight_decay: float) -> dict[str, torch.Tensor]:
    model = _model()
    loss = [("bce", lambda o, b: F.binary_cross_entropy_with_logits(o, b["y"]), 1.0)]
    result = fit(model, make_loader(_Data(), 4, shuffle=True, seed=1), None, losses=loss,
                 epochs=3, lr=1e-2, optimizer=optimizer, weight_decay=weight_decay, lr_step=2,
                 param_groups=[("0", 3e-2)], device="cpu", seed=3, progress=False)
    return {k: v.clone() for k, v in result.model.state_dict().items()}


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_foreach_update_gives_the_same_weights_as_the_loop(monkeypatch, optimizer, weight_decay):
    assert optim.FOREACH is True
    fast = _train(optimizer, weight_decay)
    monkeypatch.setattr(optim, "FOREACH", False)
    loop = _train(optimizer, weight_decay)
    assert fast.keys() == loop.keys()
    for key in fast:
        assert torch.equal(fast[key], loop[key]), key
    initial = _model().state_dict()
    assert any(not torch.equal(fast[k], initial[k]) for k in fast)  # it did train


def test_the_engine_builds_foreach_optimisers():
    model = nn.Linear(3, 1)
    groups = optim._param_groups(model, 1e-3, None)
    for name in ("adam", "adamw", "sgd"):
        assert optim._make_optimizer(name, groups, 1e-3, 0.0).defaults["foreach"] is True
