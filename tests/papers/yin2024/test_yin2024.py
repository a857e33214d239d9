"""yin2024 paper package: settings, preprocessing, views, decision rule and metrics."""
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, cohen_kappa_score, precision_recall_fscore_support

from brainlib.papers.yin2024 import claims, tables
from brainlib.papers.yin2024.data import (DetectionView, ImageSet, body_square, crop_resize,
                                          patient_split, per_scan_cap, stretch)
from brainlib.papers.yin2024.settings import Yin2024Settings
from brainlib.papers.yin2024.train import decide


def test_profiles_resolve_and_readings_are_listed():
    for profile in ("full", "quick", "smoke"):
        s = Yin2024Settings.for_profile(profile)
        assert s.image_size <= s.preprocessed_size
    full = Yin2024Settings.for_profile("full")
    assert full.image_size == 224 and full.preprocessed_size == 256 and full.batch_size == 16
    readings = {r.name for r in full.readings()}
    assert {"n_classes", "mask_mu", "score_thresholds", "cq500_rule", "split", "lr_decay"} <= readings
    with pytest.raises(ValueError):
        Yin2024Settings.for_profile("full", dataset="rsna")


def test_scores_equal_scikit_learn():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    got = tables.scores(y, p, 4)
    prec, rec, f1, _ = precision_recall_fscore_support(y, p, labels=range(4), average=None, zero_division=0)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert got["precision"] == pytest.approx(prec.mean()) and got["recall"] == pytest.approx(rec.mean())
    assert got["f1"] == pytest.approx(f1.mean())
    assert got["kappa"] == pytest.approx(cohen_kappa_score(y, p))


def test_names_and_claim_ids():
    assert tables.display_name("yin2024_tccbam_dresnet10") == "TCCBAM-DResNet10"
    assert tables.classifier_claim("CBAM-DResNet34") == "table4/cbam_dresnet34"
    assert tables.classifier_claim("ResNet50") == "table2/resnet50"
    assert tables.paper_value("table4/tccbam_dresnet10/accuracy") == 98.06
    assert claims.table1_sizes(200)["table1/res4/output_size"] == 7  # Table 1's sizes
    assert claims.table1_sizes(224)["table1/conv1/output_size"] == 112


def test_decision_rule_uses_the_threshold():
    cs = np.array([[0, 0.9, 0.2, 0], [0, 0.3, 0.1, 0.2], [0, 0, 0, 0]])
    assert decide(cs, 0.5).argmax(1).tolist() == [1, 0, 0]
    assert decide(cs, 0.25).argmax(1).tolist() == [1, 1, 0]


def test_preprocessing():
    hu = np.full((40, 40), -1000.0)
    hu[10:30, 5:35] = 40.0
    g = stretch(hu, ((-1000, 0.0), (0, 0.1), (80, 0.9), (1500, 1.0)))
    assert g[0, 0] == 0.0 and g[20, 20] == pytest.approx(0.5)
    r0, c0, side = body_square(hu)
    assert side >= 30 and r0 <= 10 and c0 <= 5
    img = crop_resize(hu, (r0, c0, side), 16, nearest=False)
    mask = crop_resize((hu > 0).astype(np.uint8), (r0, c0, side), 16, nearest=True)
    assert img.shape == (16, 16) and mask.dtype == bool and mask.any()


def test_patient_split_keeps_patients_whole():
    groups = np.repeat([f"p{i}" for i in range(12)], 3)
    label = np.tile([0, 1, 2], 12)
    split = patient_split(groups, label, (0.6, 0.2, 0.2), seed=0)
    for g in np.unique(groups):
        assert len(set(split[groups == g])) == 1
    assert set(split) == {"train", "val", "test"}


def test_per_scan_cap_keeps_at_most_cap_images_of_a_class_per_scan():
    scans = ["a"] * 10 + ["b"] * 3 + ["c"] * 4
    label = np.array([3] * 8 + [1] * 2 + [3] * 3 + [0] * 4)
    keep = per_scan_cap(scans, label, 2, np.random.default_rng(0))
    kept = pd.DataFrame({"scan": np.asarray(scans)[keep], "label": label[keep]})
    assert kept.groupby(["scan", "label"]).size().to_dict() == {("a", 1): 2, ("a", 3): 2, ("b", 3): 2, ("c", 0): 2}
    assert len(set(keep)) == len(keep) and (np.diff(keep) > 0).all()
    again = per_scan_cap(scans, label, 2, np.random.default_rng(0))
    assert again.tolist() == keep.tolist()  # seeded


def test_detection_view_targets_follow_crop_and_flip():
    mask = np.zeros((1, 12, 12), bool)
    mask[0, 2:5, 3:8] = True
    data = ImageSet("x", ("normal", "a"), np.zeros((2, 12, 12), np.float32), np.array([1, 0]), ["i0", "i1"],
                    np.array(["p0", "p1"]), np.array(["test", "test"]), [mask, np.zeros((0, 12, 12), bool)],
                    [np.array([1]), np.zeros(0, np.int64)])
    view = DetectionView(data, "test", 10, train=False)
    item = view[0]
    assert item["x"].shape == (3, 10, 10)
    assert item["targets"]["boxes"].tolist() == [[2.0, 1.0, 7.0, 4.0]]  # centre crop shifts by 1
    assert item["targets"]["labels"].tolist() == [1]
    empty = view[1]
    assert empty["targets"]["boxes"].shape == (0, 4) and empty["targets"]["masks"].shape[0] == 0
    torch.manual_seed(0)
    train = DetectionView(data, "test", 10, train=True)
    for _ in range(5):
        t = train[0]["targets"]
        m = t["masks"][0]
        rows, cols = torch.where(m.any(1))[0], torch.where(m.any(0))[0]
        assert t["boxes"][0].tolist() == [cols[0].item(), rows[0].item(), cols[-1].item() + 1, rows[-1].item() + 1]


def test_paired_rows_align_by_case():
    classes = ("normal", "a")
    a = pd.DataFrame({"case_id": ["x", "y"], "label_normal": [1, 0], "label_a": [0, 1],
                      "score_normal": [0.9, 0.2], "score_a": [0.1, 0.8]})
    b = a.iloc[::-1].copy()
    b[["score_normal", "score_a"]] = [[0.9, 0.1], [0.1, 0.9]]  # rows y, x: B wrong on both
    rows = tables.paired_rows({"A": a, "B": b}, [("A", "B")], classes, n_boot=20, seed=0)
    assert rows.iloc[0]["F1 A %"] == 100.0 and rows.iloc[0]["F1 B %"] == 0.0
    assert rows.iloc[0]["only A right"] == 2 and rows.iloc[0]["only B right"] == 0


def test_grid_accuracy_takes_the_best_threshold():
    from brainlib.engine import Predictions
    from brainlib.papers.yin2024.train import grid_accuracy

    cs = np.array([[0, 0.04, 0, 0], [0, 0, 0.03, 0], [0, 0.01, 0, 0]])
    truth = np.eye(4)[[1, 2, 0]]
    pred = Predictions(["a", "b", "c"], truth, cs)
    assert grid_accuracy((0.5,))(pred)["accuracy"] == pytest.approx(1 / 3)   # all normal
    assert grid_accuracy((0.5, 0.02))(pred)["accuracy"] == pytest.approx(1.0)


def _control_data() -> ImageSet:
    """Three test lesions visible at the 10 px centre crop (or not) and one normal test image."""
    masks, inst = [], []
    for boxes in ([], [(1, (3, 8, 3, 8))], [(2, (5, 7, 5, 7))], [(1, (0, 1, 0, 12))],
                  [(2, (2, 6, 2, 7)), (1, (8, 9, 8, 10))], [], []):
        m = np.zeros((len(boxes), 12, 12), bool)
        for k, (_, (r0, r1, c0, c1)) in enumerate(boxes):
            m[k, r0:r1, c0:c1] = True
        masks.append(m)
        inst.append(np.array([c for c, _ in boxes], np.int64))
    label = np.array([0, 1, 2, 1, 2, 0, 0])
    return ImageSet("x", ("normal", "a", "b"), np.zeros((7, 12, 12), np.float32), label,
                    [f"i{j}" for j in range(7)], np.array([f"p{j}" for j in range(7)]),
                    np.array(["test"] * 5 + ["train"] * 2), masks, inst)


def _frame(data: ImageSet, pred: list[int]) -> pd.DataFrame:
    test = data.part("test")
    rows = {"case_id": [data.ids[j] for j in test]}
    for k, c in enumerate(data.classes):
        rows[f"label_{c}"] = (data.label[test] == k).astype(int)
        rows[f"score_{c}"] = (np.asarray(pred) == k).astype(float)
    return pd.DataFrame(rows)


def test_visibility_counts_own_class_pixels_in_the_evaluation_crop():
    data = _control_data()
    # 5x5 lesion; 2x2 lesion; lesion on row 0 is cropped away; 4x5 of its class (the 1x2 of another is not counted)
    assert claims.lesion_pixels(data, 10).tolist() == [0, 25, 4, 0, 20, 0, 0]
    assert claims.visible_rows(_frame(data, [0] * 5), data, 10, 16).tolist() == [True, True, False, False, True]
    bad = _frame(data, [0] * 5)
    bad.loc[0, "case_id"] = "nope"
    with pytest.raises(ValueError, match="nope"):
        claims.visible_rows(bad, data, 10)


def test_positive_control_gates_on_visible_lesions_only(tmp_path):
    from brainlib.papers import yin2024

    data = _control_data()
    floors = {"accuracy": 0.5, "margin": 0.15}
    # right on every visible image, wrong on both tiny lesions: passes (all-images 0.6 is not gating)
    exp = yin2024.setup(profile="quick", out_dir=tmp_path / "pass")
    assert claims.positive_control(exp, _frame(data, [0, 1, 0, 0, 2]), data, 10, floors)
    gate, whole = exp.checks
    assert gate["status"] == "pass" and gate["value"] == 1.0 and gate["floor"] == pytest.approx(0.5)
    assert "3 of 5" in gate["what"] and "chance with 3 classes is 0.33" in gate["what"]
    assert whole["status"] == "not enforced" and whole["value"] == pytest.approx(0.6)
    # right on both tiny lesions and the normal image only: 1/3 on the visible ones fails
    exp = yin2024.setup(profile="quick", out_dir=tmp_path / "fail")
    assert not claims.positive_control(exp, _frame(data, [0, 0, 2, 1, 1]), data, 10, floors)
    assert [c["status"] for c in exp.checks] == ["FAIL", "not enforced"]
    assert exp.checks[0]["value"] == pytest.approx(1 / 3) and exp.failed_checks() == [exp.checks[0]]
