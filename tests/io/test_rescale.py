"""The modality LUT (RescaleSlope / RescaleIntercept) CT and NM readers share (io.dicom.rescale)."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest

from brainlib.data.synth.bone_scan import write_nm
from brainlib.io import read_hu
from brainlib.io.dicom import rescale
from brainlib.io.errors import UnreadableDicomError
from brainlib.io.nm import read_nm
from brainlib.io.testing import write_ct_slice


def _ct(tmp_path):
    return write_ct_slice(tmp_path / "ct.dcm", np.full((8, 8), 40.0), style="uint16", intercept=-1024.0)


def _nm(tmp_path):
    return write_nm(tmp_path / "nm.dcm", np.ones((1, 8, 4), np.uint16), patient_id="P1",
                    study_uid="1.2.3", seed=0, study_index=0, views=("anterior",))


def _set(path, **tags):
    ds = pydicom.dcmread(path)
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.save_as(path)
    return path


def test_defaults_and_first_values(tmp_path):
    ds = pydicom.Dataset()
    assert rescale(ds, "x.dcm") == (1.0, 0.0)  # absent: identity
    ds.RescaleSlope, ds.RescaleIntercept = "", ""
    assert rescale(ds, "x.dcm") == (1.0, 0.0)  # empty: identity
    ds.RescaleSlope, ds.RescaleIntercept = [2, 3], [-1000, 5]
    assert rescale(ds, "x.dcm") == (2.0, -1000.0)  # multi-valued: the first value


@pytest.mark.parametrize("write, read", [(_ct, read_hu), (_nm, read_nm)], ids=["ct", "nm"])
def test_both_readers_apply_it_and_refuse_bad_values_naming_the_file(tmp_path, write, read):
    path = _set(write(tmp_path), RescaleSlope="2", RescaleIntercept="-3")
    stored = pydicom.dcmread(path).pixel_array.astype(np.float64)
    out = read(path)
    values = out if isinstance(out, np.ndarray) else out.counts
    np.testing.assert_allclose(values.reshape(stored.shape), 2 * stored - 3)
    ds = pydicom.Dataset()
    ds.RescaleIntercept = "inf"
    with pytest.raises(UnreadableDicomError, match="x.dcm: RescaleSlope 1.0 / RescaleIntercept inf not finite"):
        rescale(ds, "x.dcm")
    _set(path, RescaleSlope="inf")
    with pytest.raises(UnreadableDicomError, match=f"^{path}: .*not finite"):
        read(path)
