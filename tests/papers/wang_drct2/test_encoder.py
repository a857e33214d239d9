"""The DrCT slice encoder: choice, and phantom pretraining (substitute for ImageNet weights)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from brainlib.models.slice_encoder import SliceEncoder, weights_digest
from brainlib.papers.wang_drct2.encoder import (PretrainSpec, SliceClassifier, augment_slices,
                                                make_encoder, pretrain_encoder, pretrain_spec,
                                                resolve_encoder)
from brainlib.papers.wang_drct2.settings import settings_for

torch.set_num_threads(1)


#: PretrainSpec fields added after encoders were first cached (left out of keys at defaults).
_LATER = ("label_min_pixels", "optimizer", "weight_decay", "lr_step", "lr_gamma", "threads")


def _spec(**kw) -> PretrainSpec:
    base = dict(width=0.125, image_size=32, studies=4, phantom_seed=10_000, phantom_size=64,
                difficulty=0.5, epochs=1, seed=0, batch=16)
    return PretrainSpec(**{**base, **kw})


def _state(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_pretraining_is_deterministic_cached_and_seed_dependent(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path))
    spec = _spec()
    first = pretrain_encoder(spec, device="cpu", cache=False, scratch_dir=tmp_path / "scratch")
    second = pretrain_encoder(spec, device="cpu")          # trains again, into the cache
    assert not first.cached and not second.cached
    assert tmp_path in second.path.parents and second.path.name == "encoder.pt"
    a, b = _state(first.path), _state(second.path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit-identical
    again = pretrain_encoder(spec, device="cpu")           # reused, not retrained
    assert again.cached and again.path == second.path
    assert again.summary["train_slices"] == second.summary["train_slices"] > 0
    assert 0.0 <= again.summary["val_auc"] <= 1.0 or again.summary["val_auc"] != again.summary["val_auc"]
    # the weights moved away from the random initialisation they started from
    rand = SliceEncoder(0.125, False, seed=0)
    assert weights_digest(rand.features) != SliceEncoder.from_pretrained(
        again.path, 0.125, "n").weights_digest()
    other = pretrain_encoder(_spec(seed=1), device="cpu")
    assert other.path != second.path
    c = _state(other.path)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert "disjoint" in again.note and "phantom seed 10000" in again.note


def test_spec_key_covers_every_setting():
    keys = {_spec().key(), _spec(epochs=2).key(), _spec(width=0.25).key(),
            _spec(image_size=64).key(), _spec(phantom_seed=10_001).key(), _spec(studies=5).key(),
            _spec(lr=3e-4).key(), _spec(augment=True).key(),
            _spec(label_size=32, label_min_pixels=16).key(), _spec(label_size=32).key()}
    assert len(keys) == 10


def test_default_label_rule_keeps_the_cache_key_of_specs_written_before_the_field():
    spec = _spec(label_size=32)
    ident = {k: v for k, v in dataclasses.asdict(spec).items() if k not in _LATER}
    assert spec.key() == _key_without_field(ident)  # cached quick encoders stay valid
    assert _spec(label_size=32, label_min_pixels=16).key() != spec.key()


def test_optimiser_fields_keep_old_keys_at_defaults_and_reach_key_note_and_fit(monkeypatch):
    old = {k: v for k, v in dataclasses.asdict(_spec(label_size=32)).items() if k not in _LATER}
    assert _spec(label_size=32).key() == _key_without_field(old)  # cached encoders stay valid
    variants = [_spec(optimizer="adamw"), _spec(weight_decay=1e-4), _spec(lr_step=10),
                _spec(lr_step=10, lr_gamma=0.5)]
    assert len({_spec().key(), *(v.key() for v in variants)}) == 5
    assert _note(_spec()).count("weight decay") == 0
    assert "adamw lr 0.001 weight decay 0.01, lr x 0.1 every 12 epochs" in _note(
        _spec(optimizer="adamw", weight_decay=0.01, lr_step=12))
    s = settings_for("quick", pretrain_optimizer="adamw", pretrain_weight_decay=0.01,
                     pretrain_lr_step=12)
    spec = pretrain_spec(s, 0)
    assert (spec.optimizer, spec.weight_decay, spec.lr_step) == ("adamw", 0.01, 12)
    seen = _stop_at_fit(monkeypatch)
    with pytest.raises(RuntimeError, match="stop"):
        pretrain_encoder(_spec(optimizer="adamw", weight_decay=0.01, lr_step=12), device="cpu",
                         cache=False, scratch_dir=Path("/nonexistent"))
    assert (seen["optimizer"], seen["weight_decay"], seen["lr_step"], seen["lr_gamma"]) == (
        "adamw", 0.01, 12, 0.1)


def _stop_at_fit(monkeypatch) -> dict:
    """Ten blank 32-px slices of five patients, two labels; `fit` records its keyword
    arguments and the torch thread count it ran with, then stops with RuntimeError("stop")."""
    seen: dict = {}

    def fake_fit(*args, **kw):
        seen.update(kw, threads=torch.get_num_threads())
        raise RuntimeError("stop")
    monkeypatch.setattr("brainlib.papers.wang_drct2.encoder.fit", fake_fit)
    monkeypatch.setattr("brainlib.papers.wang_drct2.encoder.load_phantom_slices",
                        lambda sp: (torch.zeros(10, 3, 32, 32), torch.zeros(10, 2),
                                    __import__("numpy").array([str(i // 2) for i in range(10)]),
                                    [str(i) for i in range(10)], ("a", "b")))
    return seen


def _key_without_field(ident: dict) -> str:
    import hashlib
    import json

    from brainlib.data.synth import GENERATOR_VERSION
    from brainlib.papers.wang_drct2.encoder import PRETRAIN_VERSION
    full = {**ident, "version": PRETRAIN_VERSION, "phantoms": str(GENERATOR_VERSION)}
    return hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()[:20]


def test_stricter_pretraining_label_rule_leaves_small_lesions_out(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path))
    from brainlib.papers.wang_drct2.encoder import load_phantom_slices
    _, y8, *_ = load_phantom_slices(_spec(studies=3, label_size=32))
    _, y16, *_ = load_phantom_slices(_spec(studies=3, label_size=32, label_min_pixels=16))
    known8, known16 = ~torch.isnan(y8), ~torch.isnan(y16)
    assert (known16 <= known8).all() and known16.sum() < known8.sum()  # more slices uncertain
    assert torch.equal(y16[known16], y8[known16])        # certain labels are not changed
    s = settings_for("quick", pretrain_label_min_pixels=16)
    assert pretrain_spec(s, 0).label_min_pixels == 16
    assert "< 16 px at 64 px" in _note(pretrain_spec(s, 0))


def _note(spec: PretrainSpec) -> str:
    from brainlib.papers.wang_drct2.encoder import PretrainedEncoder
    summary = {"train_slices": 1, "val_auc": 0.5, "val_slices": 1, "val_patients": 1}
    return PretrainedEncoder(path=None, spec=spec, summary=summary, cached=True, seconds=0.0).note


def test_augmentation_flips_and_shifts_training_batches_only():
    x = torch.zeros(64, 3, 32, 32)
    x[:, :, 10:14, 3:6] = 1.0                           # an off-centre blob on the left
    torch.manual_seed(0)
    a = augment_slices(x)
    torch.manual_seed(0)
    assert torch.equal(a, augment_slices(x))             # seeded by torch's generator
    assert torch.allclose(a.sum((1, 2, 3)), x.sum((1, 2, 3)))  # rolled, nothing lost
    cols = a[:, 0].sum(1).argmax(1)
    assert (cols < 16).any() and (cols >= 16).any()      # some slices flipped, some not
    model = SliceClassifier(0.125, 2, seed=0, arch="small_bn", augment=True).eval()
    with torch.no_grad():
        assert torch.equal(model(x[:4]), model(x[:4]))   # evaluation: no augmentation
    assert pretrain_spec(settings_for("quick"), 0).augment


def test_from_pretrained_is_frozen_and_stated(tmp_path):
    enc = SliceEncoder(0.125, False, seed=3)
    path = tmp_path / "w.pt"
    torch.save(enc.features.state_dict(), path)
    loaded = SliceEncoder.from_pretrained(path, 0.125, "trained on phantoms")
    assert loaded.weights_digest() == enc.weights_digest()
    assert loaded.init.note == "trained on phantoms" and loaded.init.source == str(path)
    assert not any(p.requires_grad for p in loaded.parameters())
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(loaded(x), enc(x))


def test_encoder_choice_and_random_ignores_env_weights(monkeypatch):
    monkeypatch.delenv("BRAINLIB_VGG16_WEIGHTS", raising=False)
    s = settings_for("smoke")
    assert s.encoder == "auto"
    assert resolve_encoder(s) == "random"           # measured better on phantoms; never silent
    pre = dataclasses.replace(s, encoder="phantom_pretrained")
    assert resolve_encoder(pre) == "phantom_pretrained"
    with pytest.raises(FileNotFoundError, match="BRAINLIB_VGG16_WEIGHTS"):
        resolve_encoder(dataclasses.replace(s, encoder="imagenet"))
    with pytest.raises(ValueError, match="encoder"):
        settings_for("smoke", encoder="resnet")
    monkeypatch.setenv("BRAINLIB_VGG16_WEIGHTS", "/nonexistent/vgg16.pth")
    assert resolve_encoder(s) == "imagenet"
    assert resolve_encoder(dataclasses.replace(s, encoder="random")) == "random"
    enc, pre_enc = make_encoder("random", s, seed=0)     # does not touch the env file
    assert pre_enc is None and "random initialisation" in enc.init.note
    spec = pretrain_spec(s, seed=2)
    assert spec.phantom_seed == s.phantom_seed + 10_000 and spec.seed == 2
    assert spec.image_size == s.image_size and spec.width == s.width


def test_uncached_pretraining_needs_a_folder_the_caller_owns():
    with pytest.raises(ValueError, match="scratch_dir"):
        pretrain_encoder(_spec(), device="cpu", cache=False)


def test_pretraining_threads_are_part_of_the_key_and_applied(monkeypatch):
    """1 and 2 torch threads give different weights on CPU: a cached encoder must say which."""
    assert len({_spec().key(), _spec(threads=1).key(), _spec(threads=2).key()}) == 3
    assert _spec(label_size=32).key() == _key_without_field(  # None: keys written before it
        {k: v for k, v in dataclasses.asdict(_spec(label_size=32)).items() if k not in _LATER})
    s = settings_for("quick", encode_threads=2)
    assert pretrain_spec(s, 0).threads == 2
    assert pretrain_spec(dataclasses.replace(s, encode_threads=1), 0).threads == 1
    seen = _stop_at_fit(monkeypatch)
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="stop"):
        pretrain_encoder(_spec(threads=2), device="cpu", cache=False,
                         scratch_dir=Path("/nonexistent"))
    assert seen["threads"] == 2 and torch.get_num_threads() == before
