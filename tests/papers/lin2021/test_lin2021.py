"""lin2021 pipeline pieces: settings, augmentation, the two evaluations, metrics, claims."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from brainlib.metrics import classification_metrics
from brainlib.papers.lin2021.data import (ScanData, augment, data_table, draw_params, leak_frame,
                                          make_split, make_splits)
from brainlib.papers.lin2021.settings import Lin2021Settings
from brainlib.papers.lin2021.tables import macro_metrics, thyroid_gap


def test_settings_profiles_and_readings():
    full = Lin2021Settings.for_profile("full")
    assert full.evaluations == ("augmented_test", "leakage_free") and not full.deviations()
    quick = Lin2021Settings.for_profile("quick")
    assert "baseline_widths" in {d.name for d in quick.deviations()}  # slimmer networks
    assert "baselines" not in {d.name for d in quick.deviations()}  # all five of the abstract
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

    def __init__(self, size: tuple[int, int] = (16, 8)) -> None:
        self.size = size
        self.ids = [f"s{i}" for i in range(24)]
        self.groups = np.repeat(np.arange(12), 2).astype(str)
        self.labels = np.eye(4, dtype=np.float32)[np.repeat(np.arange(12) % 4, 2)]

    def __len__(self) -> int:
        return 24

    def __getitem__(self, i: int) -> dict:
        return {"x": torch.full((2, *self.size), float(i) / 24)}


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


def test_leakage_free_cross_validation_tests_every_scan_once():
    s = Lin2021Settings.for_profile("smoke", n_augment=2, image_size=128, leakage_free_folds=3)
    data = ScanData(_Toy(), None, None)
    folds = make_splits(data, "leakage_free", s, seed=0)
    assert [f.fold for f in folds] == [0, 1, 2]
    tested = [src for f in folds for src in f.test.source]
    assert sorted(tested) == sorted(data.dataset.ids)  # every scan exactly once
    for f in folds:
        train_p, val_p, test_p = set(f.train.patient), set(f.val.patient), set(f.test.patient)
        assert not (train_p & test_p or val_p & test_p or train_p & val_p)
        assert len(f.train) == 3 * len(set(f.train.source))  # original + 2 copies
        assert all(i.endswith("|orig") for i in f.val.ids + f.test.ids)
    leak = leak_frame(folds)
    assert len(leak) == 24 and not leak["patient_in_train"].any() and set(leak["fold"]) == {0, 1, 2}
    table = data_table(data, {"leakage_free": folds})
    assert table.loc[table["class"] == "all", "leakage_free (3 folds) test"].item() == 24
    # one fold, or the paper's evaluation: a single split as before
    assert len(make_splits(data, "augmented_test", s, 0)) == 1
    one = Lin2021Settings.for_profile("smoke", n_augment=2, image_size=128)
    assert make_splits(data, "leakage_free", one, 0)[0].test.ids == make_split(data, "leakage_free", one, 0).test.ids


def test_settings_refuse_unknown_dscint_head():
    with pytest.raises(ValueError, match="dscint_head"):
        Lin2021Settings.for_profile("smoke", dscint_head="sum")
    with pytest.raises(ValueError, match="leakage_free_folds"):
        Lin2021Settings.for_profile("smoke", leakage_free_folds=0)
    quick = Lin2021Settings.for_profile("quick")
    assert quick.leakage_free_folds > 1 and quick.dscint_head == "flatten"
    assert {r.name for r in quick.readings()} >= {"dscint_head", "dscint_init"}


@pytest.mark.slow
def test_train_folds_pools_every_fold(tmp_path):
    """One epoch of Dscint per fold: predictions pooled in fold order, one checkpoint per fold."""
    import importlib

    from brainlib.experiment import open_experiment
    from brainlib.report import DataSource

    train = importlib.import_module("brainlib.papers.lin2021.train")
    s = Lin2021Settings.for_profile("smoke", n_augment=1, image_size=64, leakage_free_folds=3,
                                    baselines=("lin2021_resnet18",))
    data = ScanData(_Toy(size=(64, 32)), None, None)
    folds = make_splits(data, "leakage_free", s, seed=0)
    exp = open_experiment("lin2021", s, params={}, out_dir=tmp_path, device="cpu", seed=0, threads=1,
                          source=DataSource("phantom", "scintigraphy", None, {}))
    r = train.train_folds(exp, folds, train.DSCINT, keep_model=True)
    assert r.ids == [i for f in folds for i in f.test.ids] and len(r.ids) == 24
    assert r.folds == [f.fold for f in folds for _ in f.test.ids]
    assert r.y_score.shape == (24, 4) and len(r.best_epoch) == 3 and r.model is not None
    assert set(r.history["fold"]) == {0, 1, 2}
    assert len(list((tmp_path / "checkpoints" / "leakage_free").glob("lin2021_dscint-*"))) == 3
    frame = train.predictions_frame({("leakage_free", train.DSCINT): r})
    assert frame["fold"].tolist() == r.folds
    # seeded end to end (initial weights included): a fresh run gives identical predictions
    exp2 = open_experiment("lin2021", s, params={}, out_dir=tmp_path / "again", device="cpu", seed=0,
                           threads=1, source=DataSource("phantom", "scintigraphy", None, {}))
    assert np.array_equal(train.train_folds(exp2, folds, train.DSCINT).y_score, r.y_score)


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


def test_profiles_train_every_baseline_they_can_and_say_why_not():
    from brainlib.papers.lin2021.settings import ALL_BASELINES

    full = Lin2021Settings.for_profile("full")
    assert full.baselines == ALL_BASELINES and not full.not_run
    assert all(full.width_of(b) == 1.0 for b in ALL_BASELINES)
    smoke = Lin2021Settings.for_profile("smoke")
    assert smoke.baselines == ALL_BASELINES and smoke.width_of("lin2021_inception_v4") == 0.125
    quick = Lin2021Settings.for_profile("quick")
    assert quick.baselines == ALL_BASELINES and not quick.not_run  # all five classical networks
    assert quick.width_of("lin2021_inception_v4") == quick.width_of("lin2021_alexnet") == 0.25
    assert quick.width_of("lin2021_vgg16") < quick.width_of("lin2021_alexnet") < 1.0
    assert "Inception-v4" in quick.widths_reason and quick.channels_last
    with pytest.raises(ValueError, match="whole number"):  # refused before any training
        Lin2021Settings.for_profile("quick", baseline_widths=(("lin2021_inception_v4", 0.3),))
    assert quick.dscint_controls == ("avg",) and quick.measure_not_run
    with pytest.raises(ValueError, match="unknown baselines"):
        Lin2021Settings.for_profile("quick", baselines=("lin2021_resnet50",))
    with pytest.raises(ValueError, match="dscint_controls"):
        Lin2021Settings.for_profile("quick", dscint_controls=("flatten",))  # that is Dscint itself


def test_dscint_head_controls_are_named_built_and_kept_out_of_the_baselines():
    import importlib

    train = importlib.import_module("brainlib.papers.lin2021.train")
    s = Lin2021Settings.for_profile("smoke")
    name = train.control_name("avg")
    assert train.is_dscint(name) and train.is_dscint(train.DSCINT)
    assert not train.is_dscint("lin2021_alexnet")
    assert train.dscint_head(name, s) == "avg" and train.dscint_head(train.DSCINT, s) == "flatten"
    assert train.dscint_head("lin2021_vgg16", s) is None
    assert "avg head" in train.model_label(name) and train.model_label(train.DSCINT) == "Dscint"
    model = train.build(name, s)
    assert model.head == "avg" and type(model).__name__ == "Dscint"
    assert train.build("lin2021_vgg16", s).init_note.startswith("VGG-16 (BN) at width 0.125")


def _result(name: str, label: str, y: np.ndarray, s: np.ndarray):
    import importlib

    train = importlib.import_module("brainlib.papers.lin2021.train")
    return train.ModelResult(name, label, "augmented_test", [f"i{k}" for k in range(len(y))],
                             [f"p{k // 2}" for k in range(len(y))], y, s, None, 3, 1.0, 1000,
                             "random", steps=40, cpu_seconds=0.5)


def test_comparison_table_rows_budget_and_not_run():
    from brainlib.papers.lin2021.tables import comparison_table

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    perfect, noisy = np.eye(4)[y], rng.random((40, 4))
    results = {("augmented_test", "lin2021_dscint"): _result("lin2021_dscint", "Dscint", y, perfect),
               ("augmented_test", "lin2021_alexnet"): _result("lin2021_alexnet", "AlexNet", y, noisy)}
    cost = {"evaluation": "augmented_test", "label": "Inception-v4", "n_params": 4.1e7,
            "steps in budget": 40, "CPU s per step": 2.5, "input": "upsampled"}
    table = comparison_table(results, n_boot=50, seed=0, not_run=[cost], reason="too slow")
    assert list(table["model"]) == ["Dscint", "AlexNet", "Inception-v4"]
    assert list(table["status"]) == ["trained", "trained", "not run: too slow"]
    assert (table["optimiser steps"] == 40).all()  # the same budget in every row
    alex = table.set_index("model").loc["AlexNet"]
    assert alex["Dscint - model (accuracy)"] == pytest.approx(1 - alex["accuracy"], abs=1e-4)
    inc = table.set_index("model").loc["Inception-v4"]
    assert inc["train CPU s (estimated)"] == 100 and np.isnan(inc["accuracy"])


def test_setup_states_widths_not_run_and_budget(tmp_path):
    from brainlib.papers import lin2021
    from brainlib.papers.lin2021.settings import ALL_BASELINES

    quick = lin2021.setup(profile="quick", out_dir=tmp_path / "q", device="cpu")
    text = " ".join(quick.extra_deviations)
    assert "widths" in text and "CPU s per training step" in text
    assert "not trained" not in text and "upsampled (bilinear)" in text  # Inception-v4 at 128 x 64
    assert any("same training budget" in n for n in quick.notes)
    left_out = Lin2021Settings.for_profile("quick", baselines=("lin2021_alexnet",))
    assert left_out.not_run == ALL_BASELINES[1:]  # a profile leaving networks out names them
    smoke = lin2021.setup(profile="smoke", out_dir=tmp_path / "s", device="cpu")
    assert any("upsampled (bilinear)" in d for d in smoke.extra_deviations)
    assert not any("not trained" in d for d in smoke.extra_deviations)


def test_fixed_location_table_tests_thyroid_against_bone_lesions():
    from brainlib.papers.lin2021.tables import fixed_location_table

    y = np.repeat(np.arange(4), 20)  # normal, metastasis, arthritis, thyroid carcinoma
    s = np.eye(4)[y].copy()
    s[y == 1] = np.eye(4)[0]  # every metastasis called normal: recall 0
    s[np.flatnonzero(y == 2)[:10]] = np.eye(4)[0]  # half the arthritis missed: recall 0.5
    res = {("augmented_test", "lin2021_dscint"): _result("lin2021_dscint", "Dscint", y, s)}
    table = fixed_location_table(res, n_boot=200, seed=0).set_index("metric")
    rec = table.loc["recall"]
    assert rec["thyroid carcinoma (fixed)"] == 1.0
    assert rec["metastasis, arthritis (non-fixed, mean)"] == 0.25
    assert rec["fixed - non-fixed"] == 0.75 and rec["bootstrap p"] < 0.05
    lo, hi = map(float, rec["95 % CI"].strip("[]").split(","))
    assert 0 < lo <= 0.75 <= hi
    assert rec["n test (thyroid / non-fixed)"] == "20 / 40"
    even = {("augmented_test", "lin2021_dscint"): _result("lin2021_dscint", "Dscint", y, np.eye(4)[y])}
    flat = fixed_location_table(even, n_boot=50, seed=0).set_index("metric").loc["recall"]
    assert flat["fixed - non-fixed"] == 0 and flat["bootstrap p"] == 1.0


def test_head_notes_say_whether_the_lead_rests_on_the_head():
    from brainlib.papers.lin2021.tables import head_notes

    y = np.repeat(np.arange(4), 10)
    rng = np.random.default_rng(0)
    good, half = np.eye(4)[y], np.eye(4)[np.where(np.arange(40) % 2 == 0, y, (y + 1) % 4)]
    bad = rng.random((40, 4))
    res = {("augmented_test", "lin2021_dscint"): _result("lin2021_dscint", "Dscint", y, good),
           ("augmented_test", "lin2021_dscint_avghead"): _result("lin2021_dscint_avghead", "c", y, bad),
           ("augmented_test", "lin2021_alexnet"): _result("lin2021_alexnet", "AlexNet", y, half)}
    (note,) = head_notes(res)
    assert "rests on the flatten head" in note and "AlexNet" in note and "0.5000" in note
    res[("augmented_test", "lin2021_dscint_avghead")] = _result("lin2021_dscint_avghead", "c", y, good)
    assert "does not rest on the head alone" in head_notes(res)[0]
    del res[("augmented_test", "lin2021_dscint_avghead")]
    assert head_notes(res) == []  # no control trained: nothing to say


def test_leakage_table_reports_the_inflation():
    import pandas as pd

    from brainlib.papers.lin2021.tables import leakage_table

    y = np.repeat(np.arange(4), 10)
    seen = np.arange(40) % 2 == 0
    s_aug = np.where(seen[:, None], np.eye(4)[y], np.eye(4)[(y + 1) % 4])  # right iff scan seen
    aug = _result("lin2021_dscint", "Dscint", y, s_aug)
    free = _result("lin2021_dscint", "Dscint", y, np.eye(4)[(y + 1) % 4])
    free.evaluation = "leakage_free"
    leaks = {"augmented_test": pd.DataFrame({"case_id": aug.ids, "scan_in_train": seen}),
             "leakage_free": pd.DataFrame({"case_id": free.ids, "scan_in_train": False})}
    table = leakage_table({("augmented_test", "lin2021_dscint"): aug,
                           ("leakage_free", "lin2021_dscint"): free}, leaks, n_boot=100, seed=0)
    infl = table[table["evaluation"] == "inflation"].set_index("test images")
    assert infl.loc["augmented test minus leakage-free", "accuracy"].startswith("+0.5000")
    assert infl.loc["augmented test: scan also in training minus not", "accuracy"].startswith("+1.0000")
