"""Checkpoints load with torch.load(weights_only=True): no code runs when a file is read."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from brainlib import engine
from brainlib.engine import fit, load_checkpoint, make_loader


class _Data(torch.utils.data.Dataset):
    def __init__(self, n: int = 16) -> None:
        g = np.random.default_rng(0)
        self.x = g.normal(size=(n, 4)).astype(np.float32)
        self.y = (self.x[:, 0] > 0).astype(np.float32)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return {"x": torch.from_numpy(self.x[i]), "y": torch.tensor([self.y[i]]), "id": str(i)}


def _fit(ckpt, epochs, val=True, **kw):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    loss = [("bce", lambda o, b: F.binary_cross_entropy_with_logits(o, b["y"]), 1.0)]
    kw = {"lr_step": 1, "checkpoint_meta": {"net": ("mlp", 8)}, **kw}
    return fit(model, make_loader(_Data(), 4, shuffle=True, seed=1),
               make_loader(_Data(8), 4) if val else None, losses=loss, epochs=epochs, lr=1e-2,
               checkpoint_dir=ckpt, device="cpu", seed=3, progress=False, **kw)


def test_fit_checkpoints_are_plain_weights_only_files(tmp_path):
    _fit(tmp_path, 2)
    for name in ("last.pt", "best.pt"):  # torch's own weights-only loader, nothing allowed extra
        state = torch.load(tmp_path / name, weights_only=True)
        assert state["meta"] == {"net": ["mlp", 8]}
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert isinstance(last["rng"]["numpy"]["keys"], torch.Tensor)
    assert last["scheduler"]["last_epoch"] == 2


class _Payload:
    def __reduce__(self):  # would create a file if it were ever unpickled
        return (open, ("/tmp/brainlib-weights-only-was-bypassed", "w"))


def test_a_checkpoint_carrying_code_is_refused_without_running_it(tmp_path):
    marker = "/tmp/brainlib-weights-only-was-bypassed"
    torch.save({"model": {}, "evil": _Payload()}, tmp_path / "last.pt")
    with pytest.raises(RuntimeError, match="last.pt: cannot read checkpoint"):
        load_checkpoint(tmp_path / "last.pt")
    import os

    assert not os.path.exists(marker)


def test_checkpoint_of_the_older_format_still_resumes(tmp_path):
    straight = _fit(tmp_path / "straight", 3)
    _fit(tmp_path / "old", 2)
    state = torch.load(tmp_path / "old" / "last.pt", weights_only=True)
    engine.checkpoint._set_numpy_state(state["rng"]["numpy"])
    state["rng"]["numpy"] = np.random.get_state()  # as written before: a tuple with an ndarray
    torch.save(state, tmp_path / "old" / "last.pt")
    with pytest.raises(Exception):
        torch.load(tmp_path / "old" / "last.pt", weights_only=True)  # plain weights_only refuses
    resumed = _fit(tmp_path / "old", 3)
    assert resumed.resumed_from == 2
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def _fit_latest_best(ckpt, epochs, val: bool):
    return _fit(ckpt, epochs, val, lr_step=None, checkpoint_meta=None,
                monitor="epoch" if val else "val_loss", mode="max" if val else None)


@pytest.mark.parametrize("val", [False, True], ids=["no-validation", "monitor-epoch"])
def test_when_every_epoch_is_the_best_only_last_pt_is_written(tmp_path, val):
    (tmp_path / "best.pt").write_bytes(b"stale file of an older run")
    straight = _fit_latest_best(None, 3, val)
    result = _fit_latest_best(tmp_path, 2, val)  # a best.pt alone is not resumed from
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]
    assert result.best_checkpoint == tmp_path / "last.pt" and result.best_epoch == 2
    resumed = _fit_latest_best(tmp_path, 3, val)
    assert resumed.resumed_from == 2 and resumed.best_epoch == 3
    saved = load_checkpoint(resumed.best_checkpoint)["model"]
    for key, value in straight.model.state_dict().items():  # the returned model is the last
        assert torch.equal(value, resumed.model.state_dict()[key]), key
        assert torch.equal(value, saved[key]), key
    again = _fit_latest_best(tmp_path, 3, val)  # a finished training is loaded, not retrained
    assert again.resumed_from == 3
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key
    assert (tmp_path / "best.pt").read_bytes() == b"stale file of an older run"  # untouched


def test_a_fresh_start_removes_an_old_best_pt_too(tmp_path):
    (tmp_path / "best.pt").write_bytes(b"old")
    fit(nn.Linear(4, 1), make_loader(_Data(), 4), None,
        losses=[("bce", lambda o, b: F.binary_cross_entropy_with_logits(o, b["y"]), 1.0)],
        epochs=1, checkpoint_dir=tmp_path, resume=False, device="cpu", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
