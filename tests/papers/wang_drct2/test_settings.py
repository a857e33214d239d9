"""wang_drct2 settings: one dataclass, profiles as overrides, deviations derived."""
from __future__ import annotations

import pytest

from brainlib.papers.wang_drct2.settings import WangDrct2Settings, datasets_for, settings_for


def test_full_is_the_paper_and_overrides_map_to_both_datasets():
    s = settings_for("full")
    assert s.deviations() == [] and s.seq_len_cq500 == 32 and s.folds_rsna == 5
    assert s.fig6_m_keys == (4, 8, 12, 16, 20, 24, 28) and s.lr_aps == 3e-4
    s = settings_for("quick", folds=2, epochs=4, max_studies=10)
    assert s.folds_cq500 == s.folds_rsna == 2 and s.max_studies_rsna == 10
    assert s.of("folds", "cq500") == 2
    dev = {d.name: d for d in s.deviations()}
    assert dev["epochs"].value == 4 and dev["epochs"].paper_value == 100
    assert "set by the caller" in dev["epochs"].reason and "Sec. VI.A.1" in dev["epochs"].where
    assert "hidden" not in dev and "n_boot" not in dev          # not paper settings
    assert {r.name for r in s.readings()} >= {"hidden", "fc", "encoder"}
    with pytest.raises(ValueError, match="unknown"):
        settings_for("quick", learning_rate=1)
    with pytest.raises(ValueError, match="zoom_size"):
        settings_for("quick", image_size=64, zoom_size=32)
    assert datasets_for("both") == ("cq500", "rsna")
    with pytest.raises(ValueError):
        datasets_for("deeplesion")


def test_profiles_keep_their_values():
    quick, smoke = settings_for("quick"), settings_for("smoke")
    assert (quick.image_size, quick.zoom_size, quick.m_key, quick.width, quick.epochs) == (
        64, 146, 8, 0.125, 20)
    assert (smoke.seq_len_cq500, smoke.seq_len_rsna, smoke.fc, smoke.n_boot) == (8, 7, (16, 16), 50)
    assert quick.train_threads == smoke.train_threads == 1 and smoke.encoder == "auto"
    # quick: conspicuous phantoms labelled at the working size, a trained shallow encoder
    assert (quick.difficulty, quick.phantom_label_size, quick.encoder, quick.encoder_arch) == (
        0.0, 64, "phantom_pretrained", "small_bn")
    assert (quick.pretrain_studies, quick.pretrain_augment, settings_for("full").pretrain_augment
            ) == (144, True, False)
    full = settings_for("full")
    assert (full.difficulty, full.encoder_arch, full.feature_standardize) == (0.5, "vgg16", False)
    # the paper's eq. 3 reads raw z; the readings of eqs. 4-6 are listed as readings
    readings = {r.name for r in full.readings()}
    assert {"output_activation", "slice_pooling", "aps_pooling", "feature_rescale"} <= readings


def test_deviations_are_computed_from_the_dataclass(monkeypatch):
    before = [d.name for d in settings_for("smoke").deviations()]
    assert "epochs" in before and "dropout" not in before
    profiles = {k: dict(v) for k, v in WangDrct2Settings.PROFILES.items()}
    profiles["smoke"].update(dropout=0.25)
    del profiles["smoke"]["epochs"]
    monkeypatch.setattr(WangDrct2Settings, "PROFILES", profiles)
    after = {d.name: d for d in settings_for("smoke").deviations()}
    assert "dropout" in after and after["dropout"].paper_value == 0.5
    assert "epochs" not in after
    table = settings_for("smoke").table().set_index("setting")
    assert table.loc["dropout", "status"] == "changed"
    assert table.loc["epochs", "status"] == "as in paper"


def test_fig6_random_at_every_slice_is_not_retrained():
    """At m_key = sequence length attention and random proposals pick the same slices, in the
    same order, so the random variant is not trained again (quick: m_key 16 of 16)."""
    import torch

    from brainlib.layers.sequence_attention import select_key_slices
    from brainlib.papers.wang_drct2.crossval import variants_for

    w = torch.softmax(torch.randn(3, 16), 1)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(select_key_slices(w, 16),
                       select_key_slices(w, 16, random=True, generator=gen))
    s = settings_for("quick", fig6_m_keys=(4, 8, 16))
    names = {v.name for v in variants_for("cq500", s)}
    assert {"drct2_random_k4", "drct2_random_k8", "drct2_k4", "drct2_k16"} <= names
    assert "drct2_random_k16" not in names and "drct2_k8" not in names  # k8: DrCT2 itself
