"""brainlib.report.tables and the CSVs a Run writes: formula-starting text neutralised (CSV
injection), numbers untouched, and the report reading its CSVs back bounded and unchanged."""
from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from brainlib.data.csvfile import CsvFileError, CsvLimitError
from brainlib.report import start_run
from brainlib.report.collect import paper_section, read_csv
from brainlib.report.tables import (FORMULA_STARTS, neutralise_cell, restore_frame, to_csv_text)

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)",
           "\tq", "'quoted", "-", "plain.dcm"]


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_text_cells_that_could_start_a_formula_get_a_quote_and_numbers_do_not():
    frame = pd.DataFrame({"path": HOSTILE, "delta": np.linspace(-1.5, 2.0, len(HOSTILE)),
                          "count": np.arange(-4, len(HOSTILE) - 4)})
    rows = _cells(to_csv_text(frame))
    assert rows[0] == ["path", "delta", "count"]
    for (path, delta, count), original in zip(rows[1:], HOSTILE):
        assert not path.startswith(FORMULA_STARTS), path  # nothing a spreadsheet evaluates
        assert path == ("'" + original if original.startswith((*FORMULA_STARTS, "'")) else original)
    assert rows[1][1] == "-1.5" and rows[1][2] == "-4"  # negative numbers stay numbers
    assert neutralise_cell("\rq") == "'\rq"
    assert neutralise_cell("-0.25") == "-0.25" and neutralise_cell("+3e-2") == "+3e-2"
    assert neutralise_cell("-inf") == "'-inf"  # not a plain number: a spreadsheet makes it a formula
    assert neutralise_cell(-3) == -3 and neutralise_cell(None) is None


def test_header_names_from_data_are_neutralised_too_and_everything_round_trips():
    frame = pd.DataFrame({"=cmd": ["a", "-x"], "score": [-0.5, 0.25]})
    text = to_csv_text(frame)
    assert _cells(text)[0] == ["'=cmd", "score"]
    back = restore_frame(pd.read_csv(io.StringIO(text)))
    pd.testing.assert_frame_equal(back, frame)


def test_run_csvs_are_written_through_the_guard(tmp_path):
    run = start_run("he2024", {"seed": 0}, tmp_path / "he2024", "phantom:rsna")
    run.save_table(pd.DataFrame({"file": ["=1+1", "ok"], "value": [-1.0, 2.0]}), "table1")
    run.save_predictions(pd.DataFrame({"case_id": ["@id", "-7"], "label_a": [1, 0],
                                       "score_a": [-0.1, 0.9]}), "test")
    run.add_skipped([{"path": "+evil.dcm", "error": "NotCTError", "reason": "-modality MR"}])
    assert _cells((run.out_dir / "tables" / "table1.csv").read_text())[1] == ["'=1+1", "-1.0"]
    assert _cells((run.out_dir / "predictions" / "test.csv").read_text())[1:] == [
        ["'@id", "1", "-0.1"], ["-7", "0", "0.9"]]
    assert _cells((run.out_dir / "skipped.csv").read_text())[1] == ["'+evil.dcm", "NotCTError",
                                                                   "'-modality MR"]
    # the Markdown and LaTeX copies are not spreadsheets: they keep the text as it is
    assert "=1+1" in (run.out_dir / "tables" / "table1.md").read_text()
    # what the report reads back is the original text
    assert read_csv(run.out_dir / "skipped.csv")["path"].tolist() == ["+evil.dcm"]
    assert read_csv(run.out_dir / "tables" / "table1.csv")["file"].tolist() == ["=1+1", "ok"]


def test_report_reads_csvs_bounded_with_typed_errors(tmp_path, monkeypatch):
    assert read_csv(tmp_path / "absent.csv") is None
    (tmp_path / "empty.csv").write_text("")
    assert read_csv(tmp_path / "empty.csv").empty
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(5000)) + "\n")
    with pytest.raises(CsvLimitError, match="wide.csv"):
        read_csv(wide)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2,3,4\n")
    with pytest.raises(CsvFileError, match="ragged.csv"):
        read_csv(ragged)
    import brainlib.data.csvfile as csvfile

    monkeypatch.setattr(csvfile, "MAX_CSV_BYTES", 64)
    big = tmp_path / "he2024" / "skipped.csv"
    big.parent.mkdir()
    big.write_text("path,error,reason\n" + "x.dcm,E,r\n" * 20)
    (tmp_path / "he2024" / "status.json").write_text('{"status": "ok"}')
    with pytest.raises(CsvLimitError, match="skipped.csv"):  # the report names the file
        paper_section("he2024", tmp_path / "he2024", None)


def test_skipped_list_and_viewer_readout_are_neutralised(tmp_path):
    """A file named like a formula stays text in skipped.csv; a readout never carries markup."""
    from brainlib.io import Skipped, write_skipped
    from brainlib.widgets.base import Viewer

    out = write_skipped([Skipped("=HYPERLINK(evil).dcm", "NotCTError", "-modality MR")],
                        tmp_path / "skipped.csv")
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[1].startswith("'=HYPERLINK") and ",'-modality MR" in rows[1]

    class _Plain(Viewer):
        def readout(self) -> str:
            return "class <img src=x onerror=alert(1)>"

    html = _Plain.readout_html(object.__new__(_Plain))
    assert "<img" not in html and "&lt;img" in html
