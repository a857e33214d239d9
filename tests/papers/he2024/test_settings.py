"""He2024Settings: the paper's values at `full`, profiles as overrides, deviations derived."""
from __future__ import annotations

import pytest

from brainlib.papers.he2024 import He2024Settings, captions
from brainlib.papers.he2024.settings import SETTING_CLAIMS


def test_full_profile_is_the_paper():
    full = He2024Settings.for_profile("full")
    assert full.deviations() == []
    assert (full.epochs, full.batch_size, full.lr, full.lr_step, full.lr_gamma, full.optimizer,
            full.test_fraction, full.split_unit, full.cam_threshold, full.iou_threshold) == \
        (20, 8, 1e-3, 5, 0.1, "adam", 0.01, "slice", 0.2, 0.5)
    assert {r.name for r in full.readings()} == {
        "image_size", "val_fraction", "min_positives", "reduction", "random_window_scale",
        "hu_scale", "monitor", "ap_recall_points"}
    assert full.threads is None and full.channels_last
    assert not full.batch_norm and full.window_lr is None and full.phantom_difficulty == 0.5
    assert full.train_negatives is None and full.label_min_pixels == 8  # every slice, as written


@pytest.mark.parametrize("profile, values", [
    ("quick", dict(epochs=8, batch_size=8, lr_step=6, image_size=64, backbone_width=0.125,
                   batch_norm=True, window_lr=1e-4, train_negatives=1.0, eval_batch_size=64,
                   max_studies=None, test_fraction=0.25, split_unit="study", val_fraction=0.2,
                   max_steps_per_epoch=None, phantom_studies=96, phantom_size=128,
                   phantom_difficulty=0.0, label_min_pixels=16, n_boot=200, min_positives=5,
                   n_fig_cases=4, threads=1, channels_last=True)),
    ("smoke", dict(epochs=1, batch_size=16, lr_step=1, image_size=32, backbone_width=0.0625,
                   max_studies=None, test_fraction=0.34, split_unit="study", val_fraction=0.25,
                   max_steps_per_epoch=4, phantom_studies=6, phantom_size=64, train_negatives=None,
                   phantom_difficulty=0.5, label_min_pixels=8, n_boot=50, min_positives=2,
                   n_fig_cases=2, threads=1, channels_last=True)),
])
def test_profiles_keep_the_values_of_the_pipeline(profile, values):
    s = He2024Settings.for_profile(profile)
    assert {k: getattr(s, k) for k in values} == values
    assert s.phantom(3) == {"n_studies": values["phantom_studies"],
                            "size": values["phantom_size"],
                            "difficulty": values["phantom_difficulty"], "seed": 3,
                            "label_size": values["image_size"],
                            "label_min_pixels": values["label_min_pixels"]}
    devs = {d.name for d in s.deviations()}
    assert {"batch_norm", "window_lr"} <= devs  # CPU-profile changes, declared


def test_changing_a_profile_value_changes_the_deviation_list(monkeypatch):
    before = {d.name for d in He2024Settings.for_profile("quick").deviations()}
    assert "epochs" in before and "lr" not in before
    quick = dict(He2024Settings.PROFILES["quick"], lr=0.01)
    del quick["epochs"]
    monkeypatch.setattr(He2024Settings, "PROFILES", {**He2024Settings.PROFILES, "quick": quick})
    after = {d.name for d in He2024Settings.for_profile("quick").deviations()}
    assert after == (before - {"epochs"}) | {"lr"}
    # runtime fields never become deviations
    quick["n_boot"] = 7
    assert {d.name for d in He2024Settings.for_profile("quick").deviations()} == after


def test_caller_overrides_are_deviations_with_their_reason():
    s = He2024Settings.for_profile("smoke", epochs=2, batch_size=None)
    dev = {d.name: d for d in s.deviations()}
    assert dev["epochs"].value == 2 and "set by the caller" in dev["epochs"].reason
    assert s.batch_size == 16
    t = s.table().set_index("setting")
    assert t.at["epochs", "status"] == "changed" and t.at["lr", "status"] == "as in paper"
    assert t.at["n_boot", "status"] == "runtime"


def test_bad_values_raise():
    with pytest.raises(ValueError, match="multiple of 16"):
        He2024Settings.for_profile("smoke", image_size=40)
    with pytest.raises(ValueError, match="unknown settings"):
        He2024Settings.for_profile("smoke", epoch=2)


def test_setting_claims_name_fields_and_captions_follow_settings():
    fields = He2024Settings.for_profile("full").to_dict()
    assert set(SETTING_CLAIMS.values()) <= set(fields)
    text = captions(He2024Settings.for_profile("smoke"))["ap_localization"]
    assert "fewer than 2 ground-truth" in text and "2x2 feature map (32 px" in text
