"""wang_drct2 trainings survive interruption: checkpoints per variant/dataset/fold, resume."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import brainlib.engine as engine
from brainlib.papers import wang_drct2 as wang
from brainlib.papers.wang_drct2 import crossval

torch.set_num_threads(1)


def _toy(n_scans=12, m=5, d=8, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(m, 2 * m + 2, n_scans)
    feats, labels, sls = [], [], []
    for z in lengths:
        f = rng.random((z, 2, d)).astype(np.float32)
        sl = np.zeros((z, 2), np.float32)
        if rng.random() < 0.5:
            s = rng.integers(0, z - 2)
            sl[s:s + 3, :] = 1
            f[s:s + 3, :, 1] += 3.0
        feats.append(f), labels.append(sl.max(0)), sls.append(sl)
    return wang.ScanData(
        name="rsna", classes=("any", "a"), dataset=None, features=np.concatenate(feats),
        offsets=np.concatenate([[0], np.cumsum(lengths)]), labels=np.array(labels),
        case_ids=[f"scan{i}" for i in range(n_scans)],
        groups=np.array([f"p{i}" for i in range(n_scans)]), slice_labels=sls, seq_len=m,
        encoder_note="toy", cache_path=None, cached=True, seconds=0.0)


def _settings(epochs):
    return wang.settings_for("smoke", epochs=epochs, hidden=8, fc=(8, 8), m_key=3, folds=2)


def _variants(s):
    return [v for v in wang.variants_for("rsna", s) if v.name in ("drct2", "drct2_norm_ablation")]


_EPOCH = engine._train_one_epoch


class _Kill(Exception):
    """Stands for a kill: raised by the patched epoch loop after `after` epochs."""


def _count_epochs(monkeypatch, after=None):
    """Count the engine's training epochs; with `after`, 'kill' the run at that epoch."""
    calls, orig = [], _EPOCH

    def epoch(*a, **k):
        if after is not None and len(calls) >= after:
            raise _Kill()
        calls.append(1)
        return orig(*a, **k)

    monkeypatch.setattr(engine, "_train_one_epoch", epoch)
    return calls


def test_checkpoint_names_and_finished_folds_are_not_retrained(tmp_path, monkeypatch):
    data, s = _toy(), _settings(2)
    names = []

    def ckpt(name):
        names.append(name)
        return tmp_path / name

    cv1 = wang.cross_validate(data, s, seed=0, device="cpu", variants=_variants(s),
                              checkpoint_dir=ckpt)
    assert sorted(set(names)) == sorted(f"{v}-rsna-fold{k}" for k in (0, 1)
                                        for v in ("drct2", "drct2_norm_ablation"))
    assert all((tmp_path / n / "last.pt").is_file() for n in names)
    calls = _count_epochs(monkeypatch)
    cv2 = wang.cross_validate(data, s, seed=0, device="cpu", variants=_variants(s),
                              checkpoint_dir=ckpt)
    assert calls == []                                  # finished: loaded, not retrained
    for v in ("drct2", "drct2_norm_ablation"):
        assert np.array_equal(cv1.scores[v], cv2.scores[v])


@pytest.mark.slow
def test_resumed_training_equals_uninterrupted(tmp_path, monkeypatch):
    """A run killed in the middle of its third training and rerun gives the same final weights
    and scores as one uninterrupted run, and retrains only what was not finished (random APS
    selection included: while training it draws from the checkpointed global generator)."""
    data, s = _toy(), _settings(4)
    variants = [v for v in wang.variants_for("rsna", s) if v.name == "drct2"]
    variants.append(crossval.Variant("drct2_random_k3", "drct2_random", "mse", "both", 3))
    full = wang.cross_validate(data, s, seed=1, device="cpu", variants=variants,
                               checkpoint_dir=lambda n: tmp_path / "a" / n)
    # trainings run fold by fold: (fold 0: drct2, random), (fold 1: drct2, random), 4 epochs
    _count_epochs(monkeypatch, after=4 + 4 + 2)          # killed after epoch 2 of the third
    with pytest.raises(_Kill):
        wang.cross_validate(data, s, seed=1, device="cpu", variants=variants,
                            checkpoint_dir=lambda n: tmp_path / "b" / n)
    calls = _count_epochs(monkeypatch)
    resumed = wang.cross_validate(data, s, seed=1, device="cpu", variants=variants,
                                  checkpoint_dir=lambda n: tmp_path / "b" / n)
    assert len(calls) == 2 + 4                           # the rest of the third, all the fourth
    for key, state in full.states.items():
        for name, t in state.items():
            assert torch.equal(t, resumed.states[key][name]), (key, name)
    for v in ("drct2", "drct2_random_k3"):
        assert np.array_equal(full.scores[v], resumed.scores[v])
    assert resumed.histories[("drct2", 1)]["epoch"].tolist() == [1, 2, 3, 4]
