"""Tests for brainlib.engine: seeding, fit/resume, checkpoints, predict, k-fold."""
from __future__ import annotations

import os
import random

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from brainlib import engine
from brainlib.engine import (
    EpochShuffleSampler,
    Predictions,
    evaluate,
    fit,
    kfold_split,
    make_loader,
    predict,
    resolve_device,
    seed_everything,
)

torch.set_num_threads(1)


class ToyDataset(Dataset):
    """Two Gaussian blobs in 8-D; the label is which blob. Adds numpy noise in __getitem__
    so that worker/numpy seeding matters."""

    def __init__(self, n: int = 48, seed: int = 0, noise: bool = True) -> None:
        g = np.random.default_rng(seed)
        self.y = (np.arange(n) % 2).astype(np.float32)
        self.x = (g.normal(size=(n, 8)) + self.y[:, None] * 1.5).astype(np.float32)
        self.noise = noise

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        x = self.x[i] + (np.random.normal(scale=0.05, size=8).astype(np.float32)
                         if self.noise else 0)
        return {"x": torch.from_numpy(np.asarray(x, dtype=np.float32)),
                "y": torch.tensor([self.y[i]]), "id": f"case{i}"}


class ToyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2))
        self.head = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(x)
        return {"logits": self.head(h), "features": h}


def bce(outputs, batch):
    return F.binary_cross_entropy_with_logits(outputs["logits"], batch["y"])


def l2_features(outputs, batch):
    return outputs["features"].pow(2).mean()


LOSSES = [("bce", bce, 1.0), ("l2", l2_features, 0.01)]


def accuracy_metric(pred: Predictions) -> dict[str, float]:
    return {"acc": float(((pred.y_score >= 0.5) == (pred.y_true >= 0.5)).mean())}


def _model(seed: int = 1) -> ToyNet:
    torch.manual_seed(seed)
    return ToyNet()


def _loaders(seed: int = 0, workers: int = 0):
    train = make_loader(ToyDataset(48, 0), batch_size=8, shuffle=True, seed=seed, workers=workers)
    val = make_loader(ToyDataset(24, 1, noise=False), batch_size=8, shuffle=False, seed=seed)
    return train, val


def _fit(tmp_path=None, epochs=4, resume=False, losses=LOSSES, **kw):
    train, val = _loaders()
    return fit(_model(), train, val, losses=losses, epochs=epochs, lr=1e-2, lr_step=2,
               lr_gamma=0.5, metric_fn=accuracy_metric, checkpoint_dir=tmp_path,
               resume=resume, device="cpu", seed=7, progress=False, **kw)


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):
            resolve_device("cuda")


def test_seed_everything_repeats_all_rngs():
    seed_everything(3)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(3)
    assert a == (random.random(), np.random.rand(), torch.rand(1).item())


def test_epoch_sampler_order_depends_on_seed_and_epoch_only():
    s = EpochShuffleSampler(20, seed=5)
    s.set_epoch(3)
    first = list(s)
    torch.manual_seed(123)  # the global RNG must not matter
    s2 = EpochShuffleSampler(20, seed=5)
    s2.set_epoch(3)
    assert list(s2) == first and sorted(first) == list(range(20))
    s2.set_epoch(4)
    assert list(s2) != first


def test_fit_is_bit_identical_per_seed():
    a, b = _fit(), _fit()
    _assert_same_state(a.model.state_dict(), b.model.state_dict())
    pd.testing.assert_frame_equal(a.history.drop(columns="seconds"),
                                  b.history.drop(columns="seconds"))


def test_workers_are_seeded_identically():
    """Two runs with 2 worker processes (numpy noise inside __getitem__) agree bit for bit."""
    def run():
        train, val = _loaders(workers=2)
        return fit(_model(), train, val, losses=LOSSES, epochs=1, lr=1e-2, device="cpu",
                   seed=7, progress=False).model.state_dict()
    _assert_same_state(run(), run())


class NumpyNoise(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {"v": torch.tensor(np.random.random()), "id": str(i)}


def test_worker_numpy_streams_differ_between_workers_and_epochs():
    """numpy randomness inside workers: distinct per worker and per epoch, fixed per seed."""
    loader = make_loader(NumpyNoise(), batch_size=1, workers=2, seed=0)
    first = [float(b["v"]) for b in loader]  # items 0, 2 from worker 0; 1, 3 from worker 1
    second = [float(b["v"]) for b in loader]
    assert first[0] != first[1] and first != second
    again = [float(b["v"]) for b in make_loader(NumpyNoise(), batch_size=1, workers=2, seed=0)]
    assert again == first  # but reproducible per loader seed


def test_history_columns_and_best_selection(tmp_path):
    res = _fit(tmp_path, monitor="acc")
    h = res.history
    for col in ["epoch", "train_loss", "train_bce", "train_l2", "val_loss", "val_bce",
                "val_l2", "acc", "lr", "seconds"]:
        assert col in h.columns, col
    assert list(h["epoch"]) == [1, 2, 3, 4]
    assert list(h["lr"]) == pytest.approx([1e-2, 1e-2, 5e-3, 5e-3])  # StepLR(2, 0.5)
    # train_loss is the weighted sum of the named losses (averaged over cases)
    assert np.allclose(h["train_loss"], h["train_bce"] + 0.01 * h["train_l2"], atol=1e-5)
    best = int(h["acc"].to_numpy().argmax())  # first maximum wins (strict improvement)
    assert res.best_epoch == best + 1 and res.best_score == h["acc"].iloc[best]
    # the returned model carries the best weights, equal to best.pt
    best_ckpt = engine.load_checkpoint(res.best_checkpoint)
    assert best_ckpt["epoch"] == res.best_epoch
    _assert_same_state(res.model.state_dict(), best_ckpt["model"])
    assert evaluate(res.model, _loaders()[1], LOSSES, accuracy_metric, "cpu")["acc"] == \
        pytest.approx(res.best_score)
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    straight = _fit(tmp_path / "a", epochs=4)
    last_a = engine.load_checkpoint(straight.last_checkpoint)

    # interrupted run: the loss raises in the middle of epoch 3 (6 train + 3 val calls per epoch)
    calls = {"n": 0}

    def flaky_bce(outputs, batch):
        calls["n"] += 1
        if calls["n"] == 2 * 9 + 3:
            raise KeyboardInterrupt("simulated interruption")
        return bce(outputs, batch)

    flaky = [("bce", flaky_bce, 1.0), ("l2", l2_features, 0.01)]
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "b", epochs=4, losses=flaky)
    assert engine.load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 2

    # a fresh process would rebuild the model (here with a different init: must not matter)
    torch.manual_seed(999)
    random.random()
    resumed = _fit(tmp_path / "b", epochs=4, resume=True)
    last_b = engine.load_checkpoint(resumed.last_checkpoint)
    _assert_same_state(last_a["model"], last_b["model"])
    _assert_same_state(straight.model.state_dict(), resumed.model.state_dict())
    assert straight.best_epoch == resumed.best_epoch
    pd.testing.assert_frame_equal(straight.history.drop(columns="seconds"),
                                  resumed.history.drop(columns="seconds"))


def test_param_groups_per_module_lr():
    model = _model()
    groups = engine._param_groups(model, 5e-4, [(model.body, 3e-4)])
    assert [g["lr"] for g in groups] == [3e-4, 5e-4]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    by_prefix = engine._param_groups(model, 5e-4, [("head", 1e-3)])
    assert by_prefix[0]["params"] == list(model.head.parameters())
    with pytest.raises(ValueError, match="matches no"):
        engine._param_groups(model, 5e-4, [("nonexistent", 1e-3)])
    train, val = _loaders()
    res = fit(model, train, val, losses=LOSSES, epochs=1, lr=5e-4, device="cpu",
              param_groups=[(model.body, 3e-4)], progress=False)
    assert res.history["lr_default"].iloc[0] == 5e-4
    assert res.history["lr"].iloc[0] == 3e-4


def test_predict_and_extras_and_input_fn():
    model = _model()
    _, val = _loaders()
    pred = predict(model, val, activation="sigmoid", device="cpu")
    assert len(pred) == 24 and pred.ids[:2] == ["case0", "case1"]
    assert pred.y_score.shape == (24, 1) and ((pred.y_score > 0) & (pred.y_score < 1)).all()
    assert pred.extras["features"].shape == (24, 16)
    assert pred.y_true.shape == (24, 1)
    raw = predict(model, val, activation=None, output_key="features", device="cpu")
    assert raw.y_score.shape == (24, 16) and "logits" in raw.extras
    # multi-input model through input_fn
    class TwoInput(nn.Module):
        def forward(self, inputs):
            return inputs[0].sum(1, keepdim=True) - inputs[1].sum(1, keepdim=True)
    out = predict(TwoInput(), val, activation=None, device="cpu",
                  input_fn=lambda b: (b["x"], b["x"] * 0.5))
    assert np.allclose(out.y_score[:, 0], 0.5 * ToyDataset(24, 1, noise=False).x.sum(1), atol=1e-5)


def test_bf16_autocast_on_cpu_and_channels_last():
    class Conv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.fc = nn.Linear(4, 1)

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3)))

    class Img(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return {"x": torch.full((1, 6, 6), float(i)) / 8, "y": torch.tensor([i % 2.0]),
                    "id": str(i)}

    torch.manual_seed(0)
    loader = make_loader(Img(), 4, shuffle=True, seed=0)
    lossf = [("bce", lambda o, b: F.binary_cross_entropy_with_logits(o, b["y"]), 1.0)]
    res = fit(Conv(), loader, loader, losses=lossf, epochs=1, device="cpu", amp="bf16",
              channels_last=True, progress=False)
    assert np.isfinite(res.history["train_loss"]).all()
    assert res.model.conv.weight.dtype == torch.float32
    with pytest.raises(ValueError, match="fp16"):
        fit(Conv(), loader, None, losses=lossf, epochs=1, device="cpu", amp="fp16",
            progress=False)


def test_fit_with_library_metric_fn_monitors_auc():
    from brainlib.metrics import make_metric_fn

    train, val = _loaders()
    res = fit(_model(), train, val, losses=LOSSES, epochs=2, lr=1e-2, device="cpu",
              metric_fn=make_metric_fn(task="binary", keys=["auc", "f1"]), monitor="auc",
              progress=False)
    assert res.history["auc"].between(0, 1).all()
    assert res.best_score == res.history["auc"].max()


def test_max_steps_and_no_validation():
    train, _ = _loaders()
    res = fit(_model(), train, None, losses=LOSSES, epochs=2, device="cpu",
              max_steps_per_epoch=2, progress=False)
    assert res.best_epoch == 2 and "val_loss" not in res.history.columns


def test_bad_loss_and_monitor_errors():
    train, val = _loaders()
    with pytest.raises(ValueError, match="scalar"):
        fit(_model(), train, val, losses=[("bad", lambda o, b: o["logits"], 1.0)], epochs=1,
            device="cpu", progress=False)
    with pytest.raises(KeyError, match="monitor"):
        fit(_model(), train, val, losses=LOSSES, epochs=1, device="cpu", monitor="auc",
            progress=False)


# ----------------------------------------------------------------------------- k-fold
def _check_partition(folds, n):
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(n))  # each index in exactly one test fold
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0
        assert train.size + test.size == n


def test_kfold_multiclass_stratified_and_deterministic():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    folds = kfold_split(y, 5, seed=1)
    _check_partition(folds, 100)
    for _, test in folds:
        assert np.bincount(y[test], minlength=3).tolist() == [10, 6, 4]
    again = kfold_split(y, 5, seed=1)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    other = kfold_split(y, 5, seed=2)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(folds, other))


def test_kfold_multilabel_with_groups():
    rng = np.random.default_rng(0)
    n = 300
    groups = rng.integers(0, 90, size=n)  # ~90 patients, several slices each
    y = (rng.random((n, 4)) < np.array([0.5, 0.2, 0.08, 0.03])).astype(float)
    y[rng.random((n, 4)) < 0.02] = np.nan  # unknown labels are tolerated
    folds = kfold_split(y, 5, seed=3, groups=groups)
    _check_partition(folds, n)
    for train, test in folds:  # groups never split
        assert not set(groups[train]) & set(groups[test])
    overall = np.nanmean(y, 0)
    for _, test in folds:
        # label prevalence per fold close to overall (group-level units allow some slack)
        assert np.all(np.abs(np.nanmean(y[test], 0) - overall) < 0.08)
        assert abs(test.size - n / 5) < 0.15 * n
    # every positive of the rarest label is spread over several folds
    rare_pos_folds = {k for k, (_, t) in enumerate(folds) if np.nansum(y[t, 3]) > 0}
    assert len(rare_pos_folds) >= 3


def test_kfold_errors():
    with pytest.raises(ValueError, match="folds"):
        kfold_split([0, 1, 0, 1], 5)
    with pytest.raises(ValueError, match="groups"):
        kfold_split([0, 1, 0, 1, 0, 1], 3, groups=["a", "a", "a", "b", "b", "b"])


# --------------------------------------------------------------------------- resume by default
def _counting_losses():
    calls = {"train": 0}

    def counted_bce(outputs, batch):
        if torch.is_grad_enabled():
            calls["train"] += 1
        return bce(outputs, batch)

    return calls, [("bce", counted_bce, 1.0), ("l2", l2_features, 0.01)]


def _fit_default(ckpt, epochs=4, losses=LOSSES, model=None, **kw):
    """Like `_fit` but without `resume=`: the default must resume when checkpoint_dir is set."""
    train, val = _loaders()
    return fit(model or _model(), train, val, losses=losses, epochs=epochs, lr=kw.pop("lr", 1e-2),
               lr_step=2, lr_gamma=0.5, metric_fn=accuracy_metric, checkpoint_dir=ckpt,
               device="cpu", seed=7, progress=False, **kw)


def test_resume_is_the_default_and_a_finished_training_returns_at_once(tmp_path):
    first = _fit_default(tmp_path, epochs=2)
    assert first.resumed_from == 0
    calls, counted = _counting_losses()
    longer = _fit_default(tmp_path, epochs=4, losses=counted)  # continues at epoch 3
    assert longer.resumed_from == 2 and calls["train"] == 2 * 6
    straight = _fit(tmp_path / "straight", epochs=4)
    _assert_same_state(straight.model.state_dict(), longer.model.state_dict())

    calls, counted = _counting_losses()
    again = _fit_default(tmp_path, epochs=4, losses=counted)
    assert calls["train"] == 0 and again.resumed_from == 4  # nothing retrained
    assert again.best_epoch == straight.best_epoch
    _assert_same_state(straight.model.state_dict(), again.model.state_dict())
    pd.testing.assert_frame_equal(straight.history.drop(columns="seconds"),
                                  again.history.drop(columns="seconds"))
    # the RNGs continue as after the uninterrupted training (what follows fit() is unchanged)
    after_straight = (_fit(tmp_path / "s2", epochs=4), torch.rand(3))[1]
    after_resume = (_fit_default(tmp_path, epochs=4), torch.rand(3))[1]
    assert torch.equal(after_straight, after_resume)


def test_resume_false_starts_afresh(tmp_path):
    _fit_default(tmp_path, epochs=3)
    calls, counted = _counting_losses()
    fresh = _fit_default(tmp_path, epochs=2, losses=counted, resume=False)
    assert fresh.resumed_from == 0 and calls["train"] == 2 * 6
    assert engine.load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    _assert_same_state(_fit(tmp_path / "s", epochs=2).model.state_dict(),
                       fresh.model.state_dict())


class WideNet(ToyNet):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2))
        self.head = nn.Linear(32, 1)


@pytest.mark.parametrize("change, match", [
    ({"model": "wide"}, "model parameters differ .*body.0.weight \\[16, 8\\] -> \\[32, 8\\]"),
    ({"lr": 5e-2}, "param_groups"),
    ({"optimizer": "sgd"}, "optimizer"),
    ({"checkpoint_meta": {"size": 128}}, "meta"),
    ({"amp": "bf16"}, "amp"),
    ({"epochs": 2}, "past epochs=2"),
])
def test_refuses_to_resume_another_configuration(tmp_path, change, match):
    _fit_default(tmp_path, epochs=3)
    kw = dict(change)
    if kw.pop("model", None):
        torch.manual_seed(1)
        kw["model"] = WideNet()
    with pytest.raises(engine.CheckpointMismatchError, match=match) as info:
        _fit_default(tmp_path, **{"epochs": 3, **kw})
    assert "resume=False" in str(info.value) and str(tmp_path / "last.pt") in str(info.value)
    assert engine.load_checkpoint(tmp_path / "last.pt")["epoch"] == 3  # left untouched


def test_old_checkpoint_without_config_is_checked_by_weights(tmp_path):
    _fit_default(tmp_path, epochs=2)
    state = engine.load_checkpoint(tmp_path / "last.pt")
    del state["config"]
    torch.save(state, tmp_path / "last.pt")
    assert _fit_default(tmp_path, epochs=3).resumed_from == 2
    state = engine.load_checkpoint(tmp_path / "last.pt")
    del state["config"]
    torch.save(state, tmp_path / "last.pt")
    torch.manual_seed(1)
    with pytest.raises(engine.CheckpointMismatchError, match="model parameters differ"):
        _fit_default(tmp_path, epochs=4, model=WideNet())


def test_fit_removes_partial_checkpoints_of_a_killed_run(tmp_path):
    from pathlib import Path

    dead = int(Path("/proc/sys/kernel/pid_max").read_text())  # no live process has this pid
    partial = tmp_path / f".last.pt.{dead}-0123abcd.tmp.pt"
    partial.write_bytes(b"half a checkpoint")
    alive = tmp_path / f".best.pt.{os.getpid()}-0123abcd.tmp.pt"  # a live writer's: kept
    alive.write_bytes(b"being written")
    _fit_default(tmp_path, epochs=1)
    assert not partial.exists() and alive.exists()


_CHILD = '''
import os, sys, time
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset
from brainlib.engine import fit, make_loader

torch.set_num_threads(1)
ckpt, out, hang_at = sys.argv[1], sys.argv[2], int(sys.argv[3])

class Data(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.y = (torch.arange(n) % 2).float()[:, None]
        self.x = torch.randn(n, 1, 8, 8, generator=g) + self.y[:, :, None, None]
    def __len__(self):
        return len(self.y)
    def __getitem__(self, i):
        return {"x": self.x[i] + 0.05 * torch.randn(1, 8, 8), "y": self.y[i], "id": str(i)}

torch.manual_seed(0)  # the same initial weights in every run of the command
model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(),
                      nn.Linear(4 * 36, 1))
calls = {"n": 0}
def loss(out, batch):
    if torch.is_grad_enabled():
        calls["n"] += 1
        if calls["n"] == hang_at:  # mid-epoch: tell the parent, wait to be killed
            open(os.path.join(ckpt, "READY"), "w").close()
            time.sleep(600)
    return F.binary_cross_entropy_with_logits(out, batch["y"])

train = make_loader(Data(40, 0), batch_size=8, shuffle=True, seed=3)
val = make_loader(Data(16, 1), batch_size=8)
res = fit(model, train, val, losses=[("bce", loss, 1.0)], epochs=5, lr=1e-2, lr_step=2,
          device="cpu", seed=11, progress=False, checkpoint_dir=ckpt)
torch.save({"model": res.model.state_dict(), "last": torch.load(os.path.join(ckpt, "last.pt"),
           weights_only=False)["model"], "resumed_from": res.resumed_from}, out)
'''


@pytest.mark.slow  # three fresh Python processes importing torch: ~10 s idle, ~40 s under load
def test_sigkill_mid_training_then_rerun_gives_identical_weights(tmp_path):
    """A real kill: the training process gets SIGKILL in epoch 3 (after its 2nd checkpoint);
    rerunning the same command resumes and ends bit-identical to an uninterrupted run."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "train.py"
    script.write_text(_CHILD)
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    run_a.mkdir()
    run_b.mkdir()

    def start(folder, hang_at):
        return subprocess.Popen([sys.executable, str(script), str(folder), str(folder / "out.pt"),
                                 str(hang_at)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    straight = start(run_a, 0)
    victim = start(run_b, 2 * 5 + 3)  # 5 steps per epoch: step 3 of epoch 3
    deadline = time.monotonic() + 120
    while not (run_b / "READY").exists():
        assert victim.poll() is None, victim.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "the training never reached epoch 3"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert engine.load_checkpoint(run_b / "last.pt")["epoch"] == 2
    assert not (run_b / "out.pt").exists()

    rerun = start(run_b, 0)  # the same command again
    for proc in (straight, rerun):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    a = torch.load(run_a / "out.pt", weights_only=False)
    b = torch.load(run_b / "out.pt", weights_only=False)
    assert a["resumed_from"] == 0 and b["resumed_from"] == 2
    _assert_same_state(a["last"], b["last"])
    _assert_same_state(a["model"], b["model"])
