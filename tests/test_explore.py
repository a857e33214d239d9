"""The student notebook's data: phantom study with masks, or any DICOM folder."""
from __future__ import annotations

import numpy as np
import pytest

from brainlib.explore import load_example_study, window_contrast_table
from brainlib.io.testing import write_ct_slice


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


def test_contrast_table_shows_subdural_window_separates_blood_from_bone():
    hu = np.full((40, 40), 35.0, np.float32)
    hu[:, :5] = 1200.0  # skull
    blood = np.zeros((40, 40), bool)
    blood[10:30, 5:8] = True  # a crescent against the skull
    hu[blood] = 70.0
    table = window_contrast_table(hu, blood).set_index("window")
    assert abs(table.loc["subdural", "blood vs bone"]) > abs(table.loc["brain", "blood vs bone"])
    assert table.loc["brain", "blood vs brain"] > table.loc["subdural", "blood vs brain"]
    with pytest.raises(ValueError, match="empty"):
        window_contrast_table(hu, np.zeros_like(blood))
