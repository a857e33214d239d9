"""pandiyaraju2024 pipeline pieces: settings, split, masked crop, segmentation metrics, claims."""
from __future__ import annotations

import numpy as np
import pytest

from brainlib.papers.pandiyaraju2024.data import masked_crop, stratified_split
from brainlib.papers.pandiyaraju2024.settings import Pandiyaraju2024Settings
from brainlib.papers.pandiyaraju2024.tables import (macro_scores, paper_value, per_image_metrics,
                                                    pixel_counts, pooled)


def test_settings_profiles_and_readings() -> None:
    full = Pandiyaraju2024Settings.for_profile("full")
    assert full.encoder == "inceptionresnetv2" and not full.deviations()
    quick = Pandiyaraju2024Settings.for_profile("quick", seg_epochs=3)
    assert {d.name for d in quick.deviations()} == {"encoder"}
    readings = {r.name for r in quick.readings()}
    assert {"split", "seg_loss", "attention", "classifier_input", "leak_threshold"} <= readings
    with pytest.raises(ValueError, match="multiple of 32"):
        Pandiyaraju2024Settings.for_profile("smoke", image_size=50)


def test_stratified_split_keeps_every_class_in_every_part() -> None:
    classes = np.repeat([0, 1, 2], [20, 10, 6])
    parts = stratified_split(classes, (0.7, 0.1, 0.2), seed=0)
    allidx = np.concatenate(list(parts.values()))
    assert sorted(allidx) == list(range(36))
    for idx in parts.values():
        assert set(classes[idx]) == {0, 1, 2}
    assert np.array_equal(parts["test"], stratified_split(classes, (0.7, 0.1, 0.2), seed=0)["test"])


def test_masked_crop() -> None:
    image = np.full((64, 64), 200, np.uint8)
    mask = np.zeros((64, 64), bool)
    assert not masked_crop(image, mask, 16, 0.5).any()  # empty mask -> blank input
    mask[20:30, 10:40] = True
    crop = masked_crop(image, mask, 16, 0.5)
    assert crop.shape == (16, 16) and crop.max() == pytest.approx(200 / 255, abs=1e-3)
    assert crop[0].max() == 0  # the square around a wide lesion keeps background above it
    whole = masked_crop(image, mask, 16, 0.5, crop=False)
    assert whole[0, 0] == 0 and whole[6, 8] > 0


def test_segmentation_metric_definitions() -> None:
    truth = np.zeros((3, 4, 4), bool)
    pred = np.zeros((3, 4, 4), bool)
    truth[0, :2, :2] = True
    pred[0, :2, :] = True           # tp 4, fp 4
    pred[2, 0, 0] = True            # empty truth, one false pixel
    counts = pixel_counts(pred, truth)
    assert counts[0].tolist() == [4, 4, 0, 8]
    per = per_image_metrics(counts, empty=1.0)
    assert per.loc[0, "dice"] == pytest.approx(8 / 12) and per.loc[0, "iou"] == pytest.approx(0.5)
    assert per.loc[1, "dice"] == 1.0 and per.loc[2, "dice"] == 0.0
    assert per.loc[1, "pixel_accuracy"] == 1.0
    assert pooled(counts)["dice"] == pytest.approx(8 / 13)


def test_macro_scores_match_sklearn() -> None:
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 3, 30), rng.integers(0, 2, 30)
    ref = precision_recall_fscore_support(y, p, labels=[0, 1, 2], average="macro", zero_division=0)
    got = macro_scores(y, p, 3)
    assert [got["precision"], got["recall"], got["F1"]] == pytest.approx(list(ref[:3]))


def test_paper_values_from_the_claims_yaml() -> None:
    assert paper_value("abstract/segmentation/dice") == 97.2
    assert paper_value("abstract/classification/accuracy") == 99.2


def test_largest_component_feeds_the_classifier() -> None:
    from brainlib.papers.pandiyaraju2024.train import largest_component

    m = np.zeros((20, 20), bool)
    m[2:8, 2:8] = True     # 36 px lesion
    m[15, 15] = True       # speck
    out = largest_component(m, min_fraction=0.01)
    assert out.sum() == 36 and not out[15, 15]
    assert not largest_component(m, min_fraction=0.2).any()  # 36 / 400 < 20 %: empty -> normal
    assert not largest_component(np.zeros((5, 5), bool)).any()


@pytest.mark.slow
def test_segmentation_is_bit_identical_per_seed(tmp_path) -> None:
    from brainlib.papers import pandiyaraju2024 as P

    frames = []
    for run in ("a", "b"):
        exp = P.setup(profile="smoke", out_dir=tmp_path / run, epochs=1)
        frames.append(P.segmentation(exp, P.load(exp)).predictions)
    assert frames[0].equals(frames[1])
