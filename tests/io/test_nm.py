"""brainlib.io.nm: counts and views of NM files, typed errors naming the path, size limits."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest

from brainlib.data.synth.bone_scan import write_nm
from brainlib.io.errors import DicomError, MissingPixelDataError, UnreadableDicomError
from brainlib.io.nm import ImplausibleNMError, NotNMError, frame_views, read_nm, read_nm_header


def _write(tmp_path, counts=None, **kw):
    counts = np.arange(2 * 8 * 4, dtype=np.uint16).reshape(2, 8, 4) if counts is None else counts
    return write_nm(tmp_path / "scan.dcm", counts, patient_id="P1", study_uid="1.2.3", seed=0,
                    study_index=0, **kw)


def test_counts_and_views_round_trip(tmp_path):
    path = _write(tmp_path)
    scan = read_nm(path)
    assert scan.counts.shape == (2, 8, 4) and scan.counts.dtype == np.float32
    assert scan.counts[1, 0, 0] == 32 and scan.views == ("anterior", "posterior")
    assert scan.patient_id == "P1" and scan.manufacturer == "brainlib phantom"


def test_views_follow_the_detector_vector(tmp_path):
    ds = pydicom.dcmread(_write(tmp_path, views=("posterior", "anterior")))
    assert frame_views(ds) == ("posterior", "anterior")
    ds.DetectorVector = [2, 1]
    assert frame_views(ds) == ("anterior", "posterior")
    del ds.DetectorInformationSequence
    assert frame_views(ds) == ("frame1", "frame2")


def test_single_view_from_the_description(tmp_path):
    path = _write(tmp_path, counts=np.ones((1, 8, 4), np.uint16), views=("anterior",))
    ds = pydicom.dcmread(path)
    del ds.DetectorInformationSequence
    ds.SeriesDescription = "WB POST"
    assert frame_views(ds) == ("posterior",)


def test_errors_are_typed_and_start_with_the_path(tmp_path):
    bad = tmp_path / "junk.dcm"
    bad.write_bytes(b"not dicom at all")
    with pytest.raises(UnreadableDicomError, match=f"^{bad}"):
        read_nm(bad)
    path = _write(tmp_path)
    ds = pydicom.dcmread(path)
    ds.Modality = "CT"
    ds.save_as(path)
    with pytest.raises(NotNMError, match=f"^{path}: Modality"):
        read_nm(path)


def test_absurd_sizes_are_refused_before_decoding(tmp_path):
    path = _write(tmp_path)
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 10000
    ds.save_as(path)
    with pytest.raises(ImplausibleNMError, match="10000 frames"):
        read_nm(path)
    ds.NumberOfFrames, ds.Rows = 2, 65535
    ds.save_as(path)
    with pytest.raises(ImplausibleNMError, match="65535"):
        read_nm_header(path)


def test_truncated_pixel_data(tmp_path):
    path = _write(tmp_path)
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData[:20]
    ds.save_as(path)
    with pytest.raises(MissingPixelDataError, match="truncated") as err:
        read_nm(path)
    assert isinstance(err.value, DicomError) and err.value.path == str(path)
