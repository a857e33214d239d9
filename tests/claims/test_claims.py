"""Claims registry: every file loads and validates, compare() statuses and units, the audit."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainlib import PAPERS
from brainlib.claims import (COMPARE_COLUMNS, ClaimsError, audit, audit_checks, compare,
                             load_claims, load_paper)
from brainlib.claims.schema import printed_decimals

HEADER = """paper: toy
citation: Toy et al.
datasets: {d: a toy data set}
reproducible_offline: {readers: a reader study}
"""


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


# -- every real claims file ------------------------------------------------------------------

@pytest.mark.parametrize("paper", PAPERS)
def test_every_claims_file_loads_and_validates(paper: str) -> None:
    df = load_claims(paper)
    assert len(df) > 0
    assert df["claim_id"].is_unique
    assert set(df["kind"]) <= {"value", "setting", "comparison"}
    # every numeric claim has a value; comparisons name two sides and a direction
    assert df.loc[df["kind"] != "comparison", "value"].notna().all()
    cmp = df[df["kind"] == "comparison"]
    assert cmp[["a", "b", "direction"]].notna().all().all()
    assert df.attrs["citation"]


@pytest.mark.parametrize("paper", PAPERS)
def test_every_paper_audit_runs(paper: str, tmp_path: Path) -> None:
    found = audit(paper, out_dir=tmp_path)
    csv = tmp_path / paper / "tables" / "audit.csv"
    assert csv.exists() and (tmp_path / paper / "tables" / "audit_checks.csv").exists()
    assert len(pd.read_csv(csv)) == len(found)
    assert set(found["status"]) <= {"inconsistent"}
    assert not list((tmp_path / paper / "tables").glob(".*tmp*"))  # atomic: no temp files left


def test_ids_needed_by_notebooks_exist() -> None:
    he = set(load_claims("he2024")["claim_id"])
    assert {"table3/full/any/auc", "table3/full/average/auc", "table4/three_windows/trained/auc",
            "table2/brain/W", "cmp/table3/full_vs_no_window/average_auc"} <= he
    wang = set(load_claims("wang_drct2")["claim_id"])
    assert {"table3/cq500/drct2/f1", "table5/easy/drct2/accuracy",
            "cmp/table3/cq500/drct2_vs_drct1/f1"} <= wang


def test_private_and_reader_study_claims_are_marked() -> None:
    lin = load_claims("lin2021")
    assert lin["not_reproducible"].all() and lin["reason"].str.contains("private").all()
    he = load_claims("he2024").set_index("claim_id")
    assert he.loc["table3/junior_radiologist/any/auc", "not_reproducible"]
    assert not he.loc["table3/full/any/auc", "not_reproducible"]
    wang = load_claims("wang_drct2").set_index("claim_id")
    assert wang.loc["table8/jr_a/exp1/f1", "not_reproducible"]


# -- schema errors are clear -----------------------------------------------------------------

def test_printed_decimals() -> None:
    assert printed_decimals("0.990") == 3
    assert printed_decimals("0.99") == 2
    assert printed_decimals("750000") == 0
    assert printed_decimals("-4.4298673") == 7


@pytest.mark.parametrize("body, message", [
    ("claims:\n  - {id: t/a/auc, source: table1, row: A, metric: auc, value: 0.9, dataset: d}\n",
     "missing required field 'unit'"),
    ("claims:\n  - {id: t/a/auc, source: table1, row: A, metric: auc, value: 0.9, unit: furlongs, dataset: d}\n",
     "unit must be one of"),
    ("claims:\n  - {id: t/a/auc, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: nope}\n",
     "dataset 'nope' is not declared"),
    ("claims:\n  - {id: t/a/auc, source: table1, row: A, metric: auc, value: high, unit: fraction, dataset: d}\n",
     "value must be a finite number"),
    ("claims:\n  - {id: t/a/auc, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d}\n"
     "  - {id: t/a/auc, source: table1, row: A, metric: auc, value: 0.8, unit: fraction, dataset: d}\n",
     "duplicate id 't/a/auc'"),
    ("claims:\n  - {id: t/a/auc, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d, colour: red}\n",
     "unknown fields ['colour']"),
    ("claims:\n  - {id: t/a/auc, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d, not_reproducible: aliens}\n",
     "not_reproducible 'aliens' is not a key"),
    ("claims:\n  - {id: c/x, kind: comparison, source: table1, row: A vs B, metric: auc, a: t/a/auc, b: t/b/auc, direction: greater, dataset: d}\n",
     "unknown claim id 't/a/auc'"),
    ("claims:\n  - {id: t/a/auc, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d}\n"
     "checks:\n  - {kind: mean, target: t/a/auc, parts: [t/zz/auc]}\n",
     "parts refers to unknown claim id 't/zz/auc'"),
    ("claims:\n  - {id: t/a/auc, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d}\n"
     "checks:\n  - {kind: formula, target: t/a/auc, formula: \"__import__('os')\", vars: {x: t/a/auc}}\n",
     "bad formula"),
])
def test_schema_errors_name_file_and_entry(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ClaimsError) as err:
        load_paper(path)
    text = str(err.value)
    assert str(path) in text and message in text
    if "claims[" in text:
        assert "claims[0]" in text or "claims[1]" in text or "checks[0]" in text


def test_unknown_paper_is_a_clear_error() -> None:
    with pytest.raises(ClaimsError, match="unknown paper 'nope'"):
        load_claims("nope")


# -- audit: planted inconsistencies are found, a consistent set passes ------------------------

CONSISTENT = """claims:
  - {id: t/a/precision, source: table1, row: A, metric: precision, value: 80.00, unit: percent, dataset: d}
  - {id: t/a/recall, source: table1, row: A, metric: recall, value: 60.00, unit: percent, dataset: d}
  - {id: t/a/f1, source: table1, row: A, metric: f1, value: 0.6857, unit: fraction, dataset: d}
  - {id: t/x/auc, source: table1, row: x, metric: auc, value: 0.90, unit: fraction, dataset: d}
  - {id: t/y/auc, source: table1, row: y, metric: auc, value: 0.81, unit: fraction, dataset: d}
  - {id: t/avg/auc, source: table1, row: average, metric: auc, value: 0.855, unit: fraction, dataset: d}
  - {id: t2/avg/auc, source: table2, row: average, metric: auc, value: 85.5, unit: percent, dataset: d}
  - {id: text/n, source: text, row: n, metric: count, value: 148, unit: count, dataset: d}
  - {id: text/total, source: text, row: t, metric: seconds, value: 11367, unit: seconds, dataset: d}
  - {id: text/per, source: text, row: t, metric: seconds, value: 76.80, unit: seconds, dataset: d}
  - {id: text/W, kind: setting, source: table2, row: W, metric: W, value: 0.13843335, unit: parameter, dataset: d}
  - {id: text/b, kind: setting, source: table2, row: b, metric: b, value: -5.5373343, unit: parameter, dataset: d}
  - {id: cm/a/a, source: fig1, row: a-a, metric: count, value: 8, unit: count, dataset: d}
  - {id: cm/a/b, source: fig1, row: a-b, metric: count, value: 2, unit: count, dataset: d}
  - {id: cm/b/a, source: fig1, row: b-a, metric: count, value: 1, unit: count, dataset: d}
  - {id: cm/b/b, source: fig1, row: b-b, metric: count, value: 9, unit: count, dataset: d}
  - {id: text/images, source: text, row: images, metric: count, value: 20, unit: count, dataset: d}
  - {id: text/classes, source: text, row: classes, metric: count, value: 2, unit: count, dataset: d}
  - {id: text/acc, source: text, row: acc, metric: accuracy, value: 85.0, unit: percent, dataset: d}
  - {id: c/x_vs_y, kind: comparison, source: table1, row: x vs y, metric: auc, a: t/x/auc, b: t/y/auc, direction: greater, dataset: d}
checks:
  - {kind: f1, f1: t/a/f1, precision: t/a/precision, recall: t/a/recall}
  - {kind: mean, target: t/avg/auc, parts: [t/x/auc, t/y/auc]}
  - {kind: equal, claims: [t/avg/auc, t2/avg/auc]}
  - {kind: formula, target: text/per, formula: "t / n", vars: {t: text/total, n: text/n}}
  - {kind: sigmoid_window, W: text/W, b: text/b, level: 40, width: 80}
  - {kind: confusion_matrix, classes: [a, b], cells: [[cm/a/a, cm/a/b], [cm/b/a, cm/b/b]],
     total: text/images, stated_classes: text/classes, accuracy: text/acc}
"""


def test_audit_passes_a_consistent_set(tmp_path: Path) -> None:
    path = write(tmp_path, CONSISTENT)
    checks = audit_checks(path)
    assert len(checks) >= 10
    assert (checks["status"] == "ok").all(), checks[checks["status"] != "ok"]["detail"].tolist()
    assert audit(path).empty


@pytest.mark.parametrize("old, new, kind, words", [
    ("value: 0.6857, unit: fraction", "value: 0.7000, unit: fraction", "f1", "2PR/(P+R)"),
    ("value: 0.855, unit: fraction", "value: 0.875, unit: fraction", "mean", "mean of 2 parts"),
    ("value: 85.5, unit: percent", "value: 86.5, unit: percent", "equal", "differ"),
    ("value: 76.80, unit: seconds", "value: 75.80, unit: seconds", "formula", "t / n"),
    ("value: -5.5373343, unit", "value: 5.5373343, unit", "sigmoid_window", "opposite sign"),
    ("value: 9, unit: count", "value: 19, unit: count", "confusion_total", "holds 30 cases"),
    ("value: 85.0, unit: percent", "value: 95.0, unit: percent", "confusion_accuracy", "17/20"),
    ("value: 0.81, unit: fraction", "value: 0.95, unit: fraction", "direction", "reversed"),
])
def test_audit_finds_planted_inconsistency(tmp_path: Path, old: str, new: str, kind: str, words: str) -> None:
    assert CONSISTENT.count(old) == 1
    path = write(tmp_path, CONSISTENT.replace(old, new))
    found = audit(path, out_dir=tmp_path / "out")
    hits = found[found["kind"] == kind]
    assert len(hits) >= 1, found
    assert any(words in d for d in hits["detail"]), hits["detail"].tolist()
    assert (tmp_path / "out" / "toy" / "tables" / "audit.csv").exists()


def test_audit_respects_printed_rounding(tmp_path: Path) -> None:
    # 0.9 (one decimal) covers [0.85, 0.95]: the mean 0.923 is within the printed rounding;
    # the same number printed as 0.900 is not.
    body = """claims:
  - {id: t/x/auc, source: table1, row: x, metric: auc, value: 0.9, unit: fraction, dataset: d}
  - {id: t/y/auc, source: table1, row: y, metric: auc, value: 0.946, unit: fraction, dataset: d}
  - {id: t/avg/auc, source: table1, row: average, metric: auc, value: 0.940, unit: fraction, dataset: d}
checks:
  - {kind: mean, target: t/avg/auc, parts: [t/x/auc, t/y/auc]}
  - {kind: mean, target: t/avg/auc, parts: [t/x/auc, t/y/auc], decimals: 3}
"""
    checks = audit_checks(write(tmp_path, body))
    assert checks["status"].tolist() == ["ok", "inconsistent"]
    assert "[0.89775, 0.94825]" in checks["computed_interval"].iloc[0]


def test_audit_of_he2024_finds_table2_sign_and_abstract_any() -> None:
    found = audit("he2024")
    details = " ".join(found["detail"])
    assert "table2/brain/b = 5.5373344" in details and "opposite sign" in details
    assert "abstract/bleeding/auc = 0.973 and table3/full/any/auc = 0.988" in details
    # the other Table 2 entries agree with eq. 3.1 (at float32 precision)
    checks = audit_checks("he2024")
    sig = checks[checks["kind"] == "sigmoid_window"]
    assert (sig["status"] == "inconsistent").sum() == 1


def test_audit_of_wang_finds_time_per_scan_and_conclusion() -> None:
    found = audit("wang_drct2")
    details = " ".join(found["detail"])
    assert "table8/jr_b/exp1/time_per_scan = 68.88" in details
    assert "conclusion/easy/drct2/accuracy = 81.59" in details


# -- compare --------------------------------------------------------------------------------

def test_compare_statuses_and_columns() -> None:
    measured = pd.DataFrame([
        {"claim_id": "table3/full/any/auc", "value": 0.985, "ci_low": 0.97, "ci_high": 0.995},
        {"claim_id": "table3/full/epidural/auc", "value": 0.70, "ci_low": 0.60, "ci_high": 0.80},
        {"claim_id": "table3/junior_radiologist/any/auc", "value": 0.9, "ci_low": 0.8, "ci_high": 0.95},
    ])
    out = compare("he2024", measured, "phantom (synthetic RSNA layout)")
    assert list(out.columns[:10]) == COMPARE_COLUMNS[:10]
    assert list(out.columns[:10]) == ["claim_id", "source", "row", "metric", "paper_value",
                                      "reproduced_value", "ci_low", "ci_high", "delta", "status"]
    s = out.set_index("claim_id")
    assert s.loc["table3/full/any/auc", "status"] == "consistent"
    assert s.loc["table3/full/epidural/auc", "status"] == "differs"
    assert math.isclose(s.loc["table3/full/epidural/auc", "delta"], 0.70 - 0.891)
    jr = s.loc["table3/junior_radiologist/any/auc"]
    assert jr["status"] == "not reproducible offline" and "reader study" in jr["note"]
    assert s.loc["table3/full/subdural/auc", "status"] == "not run"
    assert (out["data_source"] == "phantom (synthetic RSNA layout)").all()
    assert len(out) == len(load_claims("he2024"))


def test_compare_point_value_uses_printed_rounding() -> None:
    # no CI: 0.9884 rounds to the printed 0.988 -> consistent; 0.990 does not
    m = pd.DataFrame([{"claim_id": "table3/full/any/auc", "value": 0.9884, "ci_low": np.nan, "ci_high": np.nan},
                      {"claim_id": "table3/full/epidural/auc", "value": 0.893, "ci_low": np.nan, "ci_high": np.nan}])
    s = compare("he2024", m, "phantom").set_index("claim_id")["status"]
    assert s["table3/full/any/auc"] == "consistent"
    assert s["table3/full/epidural/auc"] == "differs"


def test_compare_normalises_percent_claims() -> None:
    # Wang prints precision in percent (94.29); a measured fraction 0.9425 +- CI covers it
    m = pd.DataFrame([{"claim_id": "table3/cq500/drct2/precision", "value": 0.9425, "ci_low": 0.93, "ci_high": 0.95},
                      {"claim_id": "table3/cq500/drct2/f1", "value": 0.90, "ci_low": 0.88, "ci_high": 0.92}])
    s = compare("wang_drct2", m, "phantom").set_index("claim_id")
    row = s.loc["table3/cq500/drct2/precision"]
    assert row["status"] == "consistent"
    assert math.isclose(row["reproduced_value"], 94.25) and math.isclose(row["ci_high"], 95.0)
    assert math.isclose(row["delta"], 94.25 - 94.29, abs_tol=1e-9)
    assert s.loc["table3/cq500/drct2/f1", "status"] == "differs"
    # the same measurement given explicitly in percent gives the same answer
    m2 = m.assign(value=m["value"] * 100, ci_low=m["ci_low"] * 100, ci_high=m["ci_high"] * 100,
                  unit="percent")
    s2 = compare("wang_drct2", m2, "phantom").set_index("claim_id")
    assert math.isclose(s2.loc["table3/cq500/drct2/precision", "reproduced_value"], 94.25)
    # a percent number passed as if it were a fraction is refused, not silently compared
    with pytest.raises(ClaimsError, match="> 1 for a proportion"):
        compare("wang_drct2", m.assign(value=94.25), "phantom")


@pytest.mark.parametrize("value, lo, hi, p, status", [
    (0.03, 0.01, 0.05, 0.01, "consistent"),      # significant, paper's sign
    (-0.03, -0.05, -0.01, 0.01, "differs"),      # significant, reversed
    (0.01, -0.01, 0.03, 0.40, "inconclusive"),   # not significant
    (0.02, 0.005, 0.04, np.nan, "consistent"),   # no p-value: CI excludes 0
    (0.02, np.nan, np.nan, np.nan, "inconclusive"),  # nothing to judge by
])
def test_compare_comparison_claims(value: float, lo: float, hi: float, p: float, status: str) -> None:
    m = pd.DataFrame([{"claim_id": "cmp/table3/full_vs_no_window/average_auc", "value": value,
                       "ci_low": lo, "ci_high": hi, "p_value": p}])
    row = compare("he2024", m, "phantom").set_index("claim_id").loc["cmp/table3/full_vs_no_window/average_auc"]
    assert row["status"] == status
    assert math.isclose(row["paper_value"], 0.973 - 0.923)


def test_compare_direction_less() -> None:
    # Wang: DrCT1 at 512 is worse than at 224 (direction: less); a significant drop agrees
    m = pd.DataFrame([{"claim_id": "cmp/table4/drct1_highres_vs_original/f1", "value": -0.02,
                       "ci_low": -0.03, "ci_high": -0.01, "p_value": 0.001}])
    out = compare("wang_drct2", m, "phantom").set_index("claim_id")
    assert out.loc["cmp/table4/drct1_highres_vs_original/f1", "status"] == "consistent"
    flipped = compare("wang_drct2", m.assign(value=0.02, ci_low=0.01, ci_high=0.03), "phantom")
    assert flipped.set_index("claim_id").loc["cmp/table4/drct1_highres_vs_original/f1", "status"] == "differs"


def test_compare_rejects_unknown_and_duplicate_ids() -> None:
    bad = pd.DataFrame([{"claim_id": "table99/x/auc", "value": 0.5, "ci_low": 0.4, "ci_high": 0.6}])
    with pytest.raises(ClaimsError, match=r"unknown claim ids \['table99/x/auc'\]"):
        compare("he2024", bad, "phantom")
    dup = pd.DataFrame([{"claim_id": "table3/full/any/auc", "value": 0.5, "ci_low": 0.4, "ci_high": 0.6}] * 2)
    with pytest.raises(ClaimsError, match="duplicate"):
        compare("he2024", dup, "phantom")
    with pytest.raises(ClaimsError, match="lacks columns"):
        compare("he2024", pd.DataFrame({"claim_id": ["table3/full/any/auc"], "value": [0.9]}), "phantom")


def test_cli_audit_prints_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from brainlib.cli import main

    assert main(["audit", "he2024", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "table2/brain/b" in out
    assert (tmp_path / "he2024" / "tables" / "audit.csv").exists()
