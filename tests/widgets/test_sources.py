"""Sources of the viewers: DICOM files and folders, and folder errors a student can act on."""
from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from brainlib.io.testing import write_ct_slice
from brainlib.widgets import NoCTSeriesError, WindowExplorer, load_volume


def _series(folder, n=3):
    hu = np.full((32, 32), 35.0, np.float32)
    hu[4:8, 4:8] = 1000.0
    for z in (2, 0, 1)[:n]:  # written out of order: the explorer must sort by position
        write_ct_slice(folder / f"IM{(z * 7) % 3}.dcm", hu + z, position=(0.0, 0.0, float(z)),
                       instance_number=z + 1, series_uid="1.2.3.4", study_uid="1.2.3")


def test_dicom_file_and_series_folder(tmp_path):
    _series(tmp_path / "series")
    single = WindowExplorer(next((tmp_path / "series").glob("*.dcm")))
    assert single.volume.shape == (1, 32, 32)
    e = WindowExplorer(tmp_path / "series")
    assert e.volume.shape == (3, 32, 32) and e.skipped == []
    np.testing.assert_allclose(e.volume[:, 0, 0], [35, 36, 37])


def test_real_ct_small_is_read_and_upscaled():
    e = WindowExplorer(get_testdata_file("CT_small.dcm"))
    assert e.volume.shape == (1, 128, 128) and e.scale == 4 and e.render_rgb().shape == (512, 512, 3)


def test_empty_folder_says_it_is_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoCTSeriesError, match="no readable CT series in this folder. Found an empty folder"):
        WindowExplorer(tmp_path / "empty")


def test_folder_without_dicom_counts_what_it_holds(tmp_path):
    for name in ("a.png", "b.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "IM0001")  # DICOM without .dcm
    with pytest.raises(NoCTSeriesError) as info:
        WindowExplorer(tmp_path)
    msg = str(info.value)
    assert msg.startswith(f"{tmp_path}: no readable CT series in this folder. Found 4 files: 0 readable CT slices")
    assert "4 other files not read (2 .png, 1 .txt, 1 (no extension))" in msg
    assert "1 of them look like DICOM but are not named *.dcm" in msg


def test_folder_of_another_modality_names_the_files(tmp_path):
    shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / "mr.dcm")
    with pytest.raises(NoCTSeriesError) as info:
        load_volume(tmp_path)
    assert "1 dropped (1 file of another modality: mr.dcm (Modality is 'MR'" in str(info.value)
    assert [s.error for s in info.value.skipped] == ["NotCTError"]


def test_ct_folder_with_an_mr_file_reads_ct_and_lists_the_mr_file(tmp_path):
    _series(tmp_path)
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.save_as(tmp_path / "stray_mr.dcm")
    e = WindowExplorer(tmp_path)
    assert e.volume.shape == (3, 32, 32)
    assert [(s.path.split("/")[-1], s.error) for s in e.skipped] == [("stray_mr.dcm", "NotCTError")]
    e.widget()
    assert "not shown: 1 file of another modality: stray_mr.dcm" in e._controls["readout"].value


def test_folder_with_two_series_is_refused_with_their_names(tmp_path):
    _series(tmp_path)
    write_ct_slice(tmp_path / "other.dcm", np.zeros((32, 32), np.float32), position=(0.0, 0.0, 0.0),
                   instance_number=1, series_uid="1.2.3.9", study_uid="1.2.3")
    with pytest.raises(ValueError, match="holds 2 series"):
        WindowExplorer(tmp_path)
