"""The student notebook's data and lessons: every number is measured on the masks given."""
from __future__ import annotations

import numpy as np
import pytest

from brainlib.explore import (describe_contrast, describe_visibility, load_example_study, split_lesion,
                              visibility_table, window_contrast_table)
from brainlib.io import Window
from brainlib.io.testing import write_ct_slice
from brainlib.widgets import NoCTSeriesError


def _write_series(folder, series_uid, study_uid, n, base_hu):
    for z in range(n):
        write_ct_slice(folder / f"{series_uid[-1]}_{(z * 5) % n}.dcm",
                       np.full((16, 16), base_hu + z, np.float32), position=(0.0, 0.0, float(z)),
                       instance_number=z + 1, series_uid=series_uid, study_uid=study_uid)


def test_real_folder_with_several_series(tmp_path):
    _write_series(tmp_path, "1.2.3.1", "1.2.3", 3, 10.0)
    _write_series(tmp_path, "1.2.4.2", "1.2.4", 4, 50.0)
    first = load_example_study(tmp_path)
    assert first.source == "real" and first.volume.shape == (3, 16, 16) and not first.masks
    np.testing.assert_allclose(first.volume[:, 0, 0], [10, 11, 12])
    by_uid = load_example_study(tmp_path, study="1.2.4")
    assert by_uid.volume.shape == (4, 16, 16)
    assert load_example_study(tmp_path, study=1).volume.shape == (4, 16, 16)
    with pytest.raises(KeyError, match="no series or study"):
        load_example_study(tmp_path, study="9.9")
    with pytest.raises(IndexError):
        load_example_study(tmp_path, study=5)
    with pytest.raises(FileNotFoundError):
        load_example_study(tmp_path / "nope")


def test_real_folder_errors_are_the_widgets_errors(tmp_path):
    (tmp_path / "x.txt").write_text("not an image")
    with pytest.raises(NoCTSeriesError, match=r"Found 1 file: 0 readable CT slices; 1 other file not read \(1 .txt\)"):
        load_example_study(tmp_path)


def _two_crescents(seed=0, acute=85.0, old=22.0, brain=36.0, noise=4.0):
    """A head-like slab: brain, skull on the left, an acute crescent against the skull on the
    upper half and an older one on the lower half, with Gaussian noise."""
    rng = np.random.default_rng(seed)
    hu = np.full((3, 60, 60), brain, np.float32)
    hu[:, :, :6] = 1200.0
    mask = np.zeros(hu.shape, bool)
    mask[:, 5:25, 6:10] = True
    hu[mask] = acute
    second = np.zeros(hu.shape, bool)
    second[:, 35:55, 6:10] = True
    hu[second] = old
    hu += rng.normal(0, noise, hu.shape).astype(np.float32)
    return hu, mask | second, mask, second


def test_split_lesion_measures_each_crescent_on_its_own_mask():
    hu, both, acute, old = _two_crescents()
    parts = split_lesion(hu, both)
    assert len(parts) == 2
    np.testing.assert_array_equal(parts[0].mask, acute)  # largest difference from brain first
    np.testing.assert_array_equal(parts[1].mask, old)
    assert parts[0].median_hu == pytest.approx(float(np.median(hu[acute])))
    assert parts[1].median_hu == pytest.approx(float(np.median(hu[old])))
    assert parts[0].brain_hu == pytest.approx(36.0, abs=1.5)
    assert parts[1].brain_noise == pytest.approx(4.0, rel=0.35)
    # the same call on an edited mask gives other numbers: they come from the masks
    hu2 = hu.copy()
    hu2[old] += 30.0
    assert split_lesion(hu2, both)[-1].median_hu == pytest.approx(parts[1].median_hu + 30.0, abs=1e-3)
    with pytest.raises(ValueError, match="empty"):
        split_lesion(hu, np.zeros_like(both))


def test_contrast_table_shows_subdural_window_separates_blood_from_bone():
    hu, _, acute, _ = _two_crescents(noise=0.0)
    table = window_contrast_table(hu[1], acute[1])
    assert list(table.index) == ["brain", "subdural", "soft tissue", "bone"]  # no bare 0..3 index
    assert abs(table.loc["subdural", "blood vs bone"]) > abs(table.loc["brain", "blood vs bone"])
    assert table.loc["brain", "blood vs brain"] > table.loc["subdural", "blood vs brain"] > 0
    assert table.loc["brain", "blood vs bone"] == pytest.approx(0.0)  # 85 HU and bone: both white
    text = describe_contrast(table)
    assert f"{table.loc['subdural', 'blood vs bone']:+.2f}" in text
    with pytest.raises(ValueError, match="empty"):
        window_contrast_table(hu[1], np.zeros_like(acute[1]))


def test_no_window_raises_contrast_to_noise():
    hu, both, _, old = _two_crescents(noise=5.0)
    wins = {"brain": Window(40, 80), "subdural": Window(80, 200), "narrow": Window(30, 60),
            "bone": Window(600, 2800)}
    table = visibility_table(hu[1], old[1], windows=wins)
    ratios = table["contrast / noise"]
    assert (ratios < 0).all()  # the old blood is darker than brain in every window
    assert ratios.max() - ratios.min() < 0.05 * abs(ratios.mean())
    assert table.loc["narrow", "blood - brain (grey)"] < table.loc["subdural", "blood - brain (grey)"]
    part = split_lesion(hu, both)[1]
    text = describe_visibility(part, table)
    assert f"{part.median_hu:.0f} HU" in text and f"{ratios.min():+.2f}" in text


def test_real_folder_lists_a_file_of_another_modality(tmp_path):
    import shutil

    from pydicom.data import get_testdata_file

    _write_series(tmp_path, "1.2.3.1", "1.2.3", 3, 10.0)
    shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / "stray.dcm")
    study = load_example_study(tmp_path)
    assert study.volume.shape == (3, 16, 16)
    assert [(s.path.split("/")[-1], s.error) for s in study.skipped] == [("stray.dcm", "NotCTError")]
    assert "not read: 1 file of another modality: stray.dcm (Modality is 'MR'" in study.description
