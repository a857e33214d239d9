"""load_truth reads the sidecar CSVs bounded (brainlib.data.csvfile): typed errors naming the file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from brainlib.data.csvfile import CsvFileError, CsvLimitError
from brainlib.data.synth import load_truth
from brainlib.data.synth.truth import TRUTH_DIR


def _sidecar(root: Path, slice_labels: str, study_labels: str = "study_id,study_seed\n007,1\n") -> Path:
    tdir = root / TRUTH_DIR
    tdir.mkdir(parents=True)
    (tdir / "params.json").write_text(json.dumps({"version": "test"}))
    (tdir / "slice_labels.csv").write_text(slice_labels)
    (tdir / "study_labels.csv").write_text(study_labels)
    (tdir / "COMPLETE").write_text("")
    return root


def test_sidecar_read_with_its_id_columns_as_text(tmp_path):
    truth = load_truth(_sidecar(tmp_path, "sop_uid,image_id,study_id,series_uid,any\n1.2,ID_0a,007,1.3,1\n"))
    assert truth.slice_labels["study_id"].tolist() == ["007"]  # ids stay text, leading zeros kept
    assert truth.slice_labels["sop_uid"].tolist() == ["1.2"] and truth.slice_labels["any"].tolist() == [1]
    assert truth.study_labels["study_id"].tolist() == ["007"]


def test_a_damaged_sidecar_is_a_typed_error_naming_the_file(tmp_path):
    wide = ",".join(f"c{i}" for i in range(3000)) + "\n"
    with pytest.raises(CsvLimitError, match="slice_labels.csv"):
        load_truth(_sidecar(tmp_path / "wide", wide))
    with pytest.raises(CsvLimitError, match="slice_labels.csv.*line 2"):
        load_truth(_sidecar(tmp_path / "long", "sop_uid,image_id\n" + "x" * 70_000 + ",y\n"))
    with pytest.raises(CsvFileError, match="study_labels.csv"):
        load_truth(_sidecar(tmp_path / "ragged", "sop_uid\n1\n", "study_id\n1,2,3\n"))
