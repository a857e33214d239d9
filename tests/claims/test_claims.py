"""Claims registry: every file loads and validates, compare() statuses and units, the audit."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainlib import PAPERS
from brainlib.claims import (COMPARE_COLUMNS, EVIDENCE_STATUSES, KINDS, STATUSES, ClaimsError,
                             audit, audit_checks, compare, format_findings, load_claims, load_paper)
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
    assert df["kind"].notna().all()
    assert set(df["kind"]) <= {"setting", "data", "result", "comparison", "external"}
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


def test_kinds_are_the_five() -> None:
    assert KINDS == ("setting", "data", "result", "comparison", "external")


@pytest.mark.parametrize("body, message", [
    ("claims:\n  - {id: t/a/auc, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d}\n",
     "missing required field 'kind'"),
    ("claims:\n  - {id: t/a/auc, kind: value, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d}\n",
     "kind 'value' is no longer accepted"),
    ("claims:\n  - {id: t/a/auc, kind: number, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d}\n",
     "kind must be one of"),
    ("claims:\n  - {id: t/a/auc, kind: result, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d,"
     " a: x, b: y, direction: greater}\n", "only allowed on kind: comparison"),
])
def test_kind_is_required_and_checked(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ClaimsError) as err:
        load_paper(path)
    assert str(path) in str(err.value) and "claims[0]" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("body, message", [
    ("claims:\n  - {id: t/a/auc, kind: result, source: table1, row: A, metric: auc, value: 0.9, dataset: d}\n",
     "missing required field 'unit'"),
    ("claims:\n  - {id: t/a/auc, kind: result, source: table1, row: A, metric: auc, value: 0.9, unit: furlongs, dataset: d}\n",
     "unit must be one of"),
    ("claims:\n  - {id: t/a/auc, kind: result, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: nope}\n",
     "dataset 'nope' is not declared"),
    ("claims:\n  - {id: t/a/auc, kind: result, source: table1, row: A, metric: auc, value: high, unit: fraction, dataset: d}\n",
     "value must be a finite number"),
    ("claims:\n  - {id: t/a/auc, kind: result, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d}\n"
     "  - {id: t/a/auc, kind: result, source: table1, row: A, metric: auc, value: 0.8, unit: fraction, dataset: d}\n",
     "duplicate id 't/a/auc'"),
    ("claims:\n  - {id: t/a/auc, kind: result, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d, colour: red}\n",
     "unknown fields ['colour']"),
    ("claims:\n  - {id: t/a/auc, kind: result, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d, not_reproducible: aliens}\n",
     "not_reproducible 'aliens' is not a key"),
    ("claims:\n  - {id: c/x, kind: comparison, source: table1, row: A vs B, metric: auc, a: t/a/auc, b: t/b/auc, direction: greater, dataset: d}\n",
     "unknown claim id 't/a/auc'"),
    ("claims:\n  - {id: t/a/auc, kind: result, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d}\n"
     "checks:\n  - {kind: mean, target: t/a/auc, parts: [t/zz/auc]}\n",
     "parts refers to unknown claim id 't/zz/auc'"),
    ("claims:\n  - {id: t/a/auc, kind: result, source: table1, row: A, metric: auc, value: 0.9, unit: fraction, dataset: d}\n"
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
  - {id: t/a/precision, kind: result, source: table1, row: A, metric: precision, value: 80.00, unit: percent, dataset: d}
  - {id: t/a/recall, kind: result, source: table1, row: A, metric: recall, value: 60.00, unit: percent, dataset: d}
  - {id: t/a/f1, kind: result, source: table1, row: A, metric: f1, value: 0.6857, unit: fraction, dataset: d}
  - {id: t/x/auc, kind: result, source: table1, row: x, metric: auc, value: 0.90, unit: fraction, dataset: d}
  - {id: t/y/auc, kind: result, source: table1, row: y, metric: auc, value: 0.81, unit: fraction, dataset: d}
  - {id: t/avg/auc, kind: result, source: table1, row: average, metric: auc, value: 0.855, unit: fraction, dataset: d}
  - {id: t2/avg/auc, kind: result, source: table2, row: average, metric: auc, value: 85.5, unit: percent, dataset: d}
  - {id: text/n, kind: result, source: text, row: n, metric: count, value: 148, unit: count, dataset: d}
  - {id: text/total, kind: result, source: text, row: t, metric: seconds, value: 11367, unit: seconds, dataset: d}
  - {id: text/per, kind: result, source: text, row: t, metric: seconds, value: 76.80, unit: seconds, dataset: d}
  - {id: text/W, kind: setting, source: table2, row: W, metric: W, value: 0.13843335, unit: parameter, dataset: d}
  - {id: text/b, kind: setting, source: table2, row: b, metric: b, value: -5.5373343, unit: parameter, dataset: d}
  - {id: cm/a/a, kind: result, source: fig1, row: a-a, metric: count, value: 8, unit: count, dataset: d}
  - {id: cm/a/b, kind: result, source: fig1, row: a-b, metric: count, value: 2, unit: count, dataset: d}
  - {id: cm/b/a, kind: result, source: fig1, row: b-a, metric: count, value: 1, unit: count, dataset: d}
  - {id: cm/b/b, kind: result, source: fig1, row: b-b, metric: count, value: 9, unit: count, dataset: d}
  - {id: text/images, kind: result, source: text, row: images, metric: count, value: 20, unit: count, dataset: d}
  - {id: text/classes, kind: result, source: text, row: classes, metric: count, value: 2, unit: count, dataset: d}
  - {id: text/acc, kind: result, source: text, row: acc, metric: accuracy, value: 85.0, unit: percent, dataset: d}
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
  - {id: t/x/auc, kind: result, source: table1, row: x, metric: auc, value: 0.9, unit: fraction, dataset: d}
  - {id: t/y/auc, kind: result, source: table1, row: y, metric: auc, value: 0.946, unit: fraction, dataset: d}
  - {id: t/avg/auc, kind: result, source: table1, row: average, metric: auc, value: 0.940, unit: fraction, dataset: d}
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

def _m(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_statuses_exported_in_report_order() -> None:
    assert STATUSES == ("as in paper", "changed", "phantom run", "consistent", "differs", "inconclusive",
                        "supported", "contradicted", "quoted, not re-run", "not reproducible offline",
                        "not run")
    assert EVIDENCE_STATUSES == {"consistent", "differs", "supported", "contradicted"}
    assert set(EVIDENCE_STATUSES) <= set(STATUSES)


def test_compare_signature_defaults_to_synthetic() -> None:
    import inspect

    sig = inspect.signature(compare)
    assert list(sig.parameters)[:3] == ["paper", "measured", "data_source"]
    assert sig.parameters["synthetic"].default is True
    assert sig.parameters["synthetic"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["profile"].default is None


@pytest.mark.parametrize("paper", PAPERS)
def test_synthetic_measurements_are_never_evidence(paper: str) -> None:
    # a measurement for every claim, equal to the paper's own number (the most tempting case
    # for a false "consistent"), with a tight CI and a significant p-value
    claims = load_claims(paper)
    rows = []
    for c in claims.itertuples(index=False):
        v = 0.02 if c.kind == "comparison" else float(c.value)
        row = {"claim_id": c.claim_id, "value": v, "ci_low": v, "ci_high": v, "p_value": 0.001}
        if c.kind != "comparison":
            row["unit"] = c.unit
        rows.append(row)
    out = compare(paper, _m(rows), "phantom")
    assert set(out["status"]) <= set(STATUSES)
    graded = out[out["kind"].isin(["result", "data", "comparison"]) & out["status"].isin(EVIDENCE_STATUSES)]
    assert graded.empty, graded[["claim_id", "status"]]
    reproducible = out[out["kind"].isin(["result", "data", "comparison"])
                       & ~load_claims(paper)["not_reproducible"].to_numpy()]
    assert (reproducible["status"] == "phantom run").all()
    assert set(out.loc[out["kind"] == "external", "status"]) <= {"quoted, not re-run"}


def test_compare_real_values_consistent_differs_inconclusive() -> None:
    measured = _m([
        {"claim_id": "table3/full/any/auc", "value": 0.985, "ci_low": 0.97, "ci_high": 0.995},     # CI covers
        {"claim_id": "table3/full/epidural/auc", "value": 0.70, "ci_low": 0.60, "ci_high": 0.80},  # CI excludes
        {"claim_id": "table3/full/subdural/auc", "value": 0.95, "ci_low": np.nan, "ci_high": np.nan},  # no CI
        {"claim_id": "table3/full/subarachnoid/auc", "value": 0.9834, "ci_low": np.nan, "ci_high": np.nan},
        {"claim_id": "text/dataset/labels", "value": 5, "ci_low": np.nan, "ci_high": np.nan},      # data, no CI
        {"claim_id": "fig5/train/any/proportion", "value": 0.1434, "ci_low": np.nan, "ci_high": np.nan},
        {"claim_id": "table3/junior_radiologist/any/auc", "value": 0.9, "ci_low": 0.8, "ci_high": 0.95},
    ])
    out = compare("he2024", measured, "real: /data/rsna", synthetic=False)
    assert list(out.columns) == COMPARE_COLUMNS
    assert list(out.columns[:10]) == ["claim_id", "source", "row", "metric", "paper_value",
                                      "measured_value", "ci_low", "ci_high", "delta", "status"]
    s = out.set_index("claim_id")
    assert s.loc["table3/full/any/auc", "status"] == "consistent"
    assert s.loc["table3/full/epidural/auc", "status"] == "differs"
    assert math.isclose(s.loc["table3/full/epidural/auc", "delta"], 0.70 - 0.891)
    assert s.loc["table3/full/subdural/auc", "status"] == "inconclusive"     # a result without CI
    assert s.loc["table3/full/subarachnoid/auc", "status"] == "consistent"   # equal within rounding
    assert s.loc["text/dataset/labels", "status"] == "differs"               # a data statistic
    assert s.loc["fig5/train/any/proportion", "status"] == "consistent"
    jr = s.loc["table3/junior_radiologist/any/auc"]
    assert jr["kind"] == "external" and jr["status"] == "quoted, not re-run"
    assert s.loc["table3/full/intraparenchymal/auc", "status"] == "not run"
    assert (out["data_source"] == "real: /data/rsna").all()
    assert len(out) == len(load_claims("he2024"))
    # the same numbers on phantoms: shown, never graded
    ph = compare("he2024", measured, "phantom").set_index("claim_id")
    for cid in ("table3/full/any/auc", "table3/full/epidural/auc", "text/dataset/labels"):
        assert ph.loc[cid, "status"] == "phantom run"
    assert math.isclose(ph.loc["table3/full/epidural/auc", "measured_value"], 0.70)
    assert math.isclose(ph.loc["table3/full/epidural/auc", "ci_high"], 0.80)


def test_compare_point_value_uses_printed_rounding() -> None:
    # no CI: 0.9884 rounds to the printed 0.988 -> consistent; 0.990 does not -> inconclusive
    m = _m([{"claim_id": "table3/full/any/auc", "value": 0.9884, "ci_low": np.nan, "ci_high": np.nan},
            {"claim_id": "table3/full/epidural/auc", "value": 0.893, "ci_low": np.nan, "ci_high": np.nan}])
    s = compare("he2024", m, "real", synthetic=False).set_index("claim_id")["status"]
    assert s["table3/full/any/auc"] == "consistent"
    assert s["table3/full/epidural/auc"] == "inconclusive"


def test_compare_normalises_percent_claims() -> None:
    # Wang prints precision in percent (94.29); a measured fraction 0.9425 +- CI covers it
    m = _m([{"claim_id": "table3/cq500/drct2/precision", "value": 0.9425, "ci_low": 0.93, "ci_high": 0.95},
            {"claim_id": "table3/cq500/drct2/f1", "value": 0.90, "ci_low": 0.88, "ci_high": 0.92}])
    s = compare("wang_drct2", m, "real", synthetic=False).set_index("claim_id")
    row = s.loc["table3/cq500/drct2/precision"]
    assert row["status"] == "consistent"
    assert math.isclose(row["measured_value"], 94.25) and math.isclose(row["ci_high"], 95.0)
    assert math.isclose(row["delta"], 94.25 - 94.29, abs_tol=1e-9)
    assert s.loc["table3/cq500/drct2/f1", "status"] == "differs"
    # the same measurement given explicitly in percent gives the same answer
    m2 = m.assign(value=m["value"] * 100, ci_low=m["ci_low"] * 100, ci_high=m["ci_high"] * 100,
                  unit="percent")
    s2 = compare("wang_drct2", m2, "real", synthetic=False).set_index("claim_id")
    assert math.isclose(s2.loc["table3/cq500/drct2/precision", "measured_value"], 94.25)
    # a percent number passed as if it were a fraction is refused, not silently compared
    with pytest.raises(ClaimsError, match="> 1 for a proportion"):
        compare("wang_drct2", m.assign(value=94.25), "phantom")


@pytest.mark.parametrize("value, lo, hi, p, status", [
    (0.03, 0.01, 0.05, 0.01, "supported"),         # significant, paper's sign
    (-0.03, -0.05, -0.01, 0.01, "contradicted"),   # significant, reversed
    (0.01, -0.01, 0.03, 0.40, "inconclusive"),     # not significant
    (0.02, 0.005, 0.04, np.nan, "supported"),      # no p-value: CI excludes 0
    (-0.02, -0.04, -0.005, np.nan, "contradicted"),  # no p-value: CI excludes 0, reversed
    (0.02, np.nan, np.nan, np.nan, "inconclusive"),  # nothing to judge by
])
def test_compare_comparison_claims(value: float, lo: float, hi: float, p: float, status: str) -> None:
    cid = "cmp/table3/full_vs_no_window/average_auc"
    m = _m([{"claim_id": cid, "value": value, "ci_low": lo, "ci_high": hi, "p_value": p}])
    row = compare("he2024", m, "real", synthetic=False).set_index("claim_id").loc[cid]
    assert row["status"] == status
    assert math.isclose(row["paper_value"], 0.973 - 0.923)
    ph = compare("he2024", m, "phantom").set_index("claim_id").loc[cid]
    assert ph["status"] == "phantom run"
    assert f"measured a {'>' if value > 0 else '<'} b" in ph["note"]
    if not np.isnan(p):
        assert f"p = {p:.3g}" in ph["note"]


def test_compare_direction_less() -> None:
    # Wang: DrCT1 at 512 is worse than at 224 (direction: less); a significant drop agrees
    cid = "cmp/table4/drct1_highres_vs_original/f1"
    m = _m([{"claim_id": cid, "value": -0.02, "ci_low": -0.03, "ci_high": -0.01, "p_value": 0.001}])
    out = compare("wang_drct2", m, "real", synthetic=False).set_index("claim_id")
    assert out.loc[cid, "status"] == "supported"
    flipped = compare("wang_drct2", m.assign(value=0.02, ci_low=0.01, ci_high=0.03), "real", synthetic=False)
    assert flipped.set_index("claim_id").loc[cid, "status"] == "contradicted"


def test_compare_settings_as_in_paper_or_changed() -> None:
    m = _m([
        {"claim_id": "text/training/epochs", "value": 3, "ci_low": np.nan, "ci_high": np.nan,
         "note": "quick profile: sized for minutes on a 2-core CPU"},
        {"claim_id": "text/training/batch_size", "value": 8, "ci_low": np.nan, "ci_high": np.nan},
        {"claim_id": "text/cam/threshold", "value": 0.2, "ci_low": np.nan, "ci_high": np.nan},  # 20 %
        {"claim_id": "text/windows/brain/level", "value": 40, "ci_low": np.nan, "ci_high": np.nan},
    ])
    for synthetic in (True, False):
        s = compare("he2024", m, "phantom", synthetic=synthetic, profile="quick").set_index("claim_id")
        epochs = s.loc["text/training/epochs"]
        assert epochs["kind"] == "setting" and epochs["status"] == "changed"
        assert epochs["note"].startswith("(quick: 3, quick profile: sized for minutes on a 2-core CPU)")
        assert s.loc["text/training/batch_size", "status"] == "as in paper"
        assert s.loc["text/cam/threshold", "status"] == "as in paper"
        assert s.loc["text/windows/brain/level", "status"] == "as in paper"
        assert s.loc["text/training/lr", "status"] == "not run"
    # without a profile the note still leads with the value
    s = compare("he2024", m, "phantom").set_index("claim_id")
    assert s.loc["text/training/epochs", "note"].startswith("(3, quick profile")


def test_compare_external_is_quoted_whatever_was_measured() -> None:
    m = _m([{"claim_id": "text/localization/chen2019/map", "value": 0.5, "ci_low": 0.4, "ci_high": 0.6},
            {"claim_id": "table8/jr_a/exp1/f1", "value": 0.7295, "ci_low": 0.7, "ci_high": 0.75}])
    for synthetic in (True, False):
        he = compare("he2024", m.iloc[:1], "x", synthetic=synthetic).set_index("claim_id")
        assert he.loc["text/localization/chen2019/map", "status"] == "quoted, not re-run"
        assert (he.loc[he["kind"] == "external", "status"] == "quoted, not re-run").all()
        wang = compare("wang_drct2", m.iloc[1:], "x", synthetic=synthetic).set_index("claim_id")
        assert wang.loc["table8/jr_a/exp1/f1", "status"] == "quoted, not re-run"


def test_compare_not_reproducible_claims() -> None:
    # lin2021: private data; a real-data measurement is shown for reference only
    m = _m([{"claim_id": "abstract/test/dscint/accuracy", "value": 0.98, "ci_low": 0.97, "ci_high": 0.99}])
    s = compare("lin2021", m, "real", synthetic=False).set_index("claim_id")
    row = s.loc["abstract/test/dscint/accuracy"]
    assert row["status"] == "not reproducible offline" and "private" in row["note"]
    assert "reference only" in row["note"]


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


# -- audit ranking -------------------------------------------------------------------------------

def test_audit_ranks_yin2024_large_findings_first() -> None:
    found = audit("yin2024")
    assert list(found["group"].unique()) == ["discrepancy", "explainable"]  # discrepancies first
    assert (found["group"] == "explainable").sum() >= 10
    f1 = found[found["kind"] == "f1"].reset_index(drop=True)
    # CBAM-DResNet18 (80.11 vs 90.12) heads the F1 discrepancies with a size of ~10 points
    top = f1.iloc[0]
    assert top["check"].endswith("table4/cbam_dresnet18") and top["group"] == "discrepancy"
    assert 9.9 < top["size"] < 10.1 and top["unit"] == "percent"
    # DResNet10 (F1 outside [P, R]) heads the explainable F1 group: macro averaging can put
    # a macro F1 below min(P, R), but only with per-class P and R ~16 points apart
    expl = f1[f1["group"] == "explainable"].iloc[0]
    assert expl["check"].endswith("table3/dresnet10") and expl["explained_by"] == "macro averaging"
    assert "0.16" in expl["rule"]
    assert (f1.loc[f1["group"] == "explainable", "size"] <= expl["size"]).all()
    # every F1 discrepancy is beyond rounding and either below P + R - 1 or above 2PR/(P+R)
    disc = f1[f1["group"] == "discrepancy"]
    assert disc["rule"].str.contains("below P \\+ R - 1|above 2PR").all()
    # within each group, largest relative size first
    for _, part in found.groupby("group", sort=False):
        assert part["relative_size"].is_monotonic_decreasing
    text = format_findings(found, "yin2024")
    assert text.index("Discrepancies") < text.index("table4/cbam_dresnet18") < text.index("Explainable")
    assert text.index("Explainable") < text.index("table3/dresnet10")


def test_audit_explanations_rounding_and_macro(tmp_path: Path) -> None:
    body = """claims:
  - {id: a/x/precision, kind: result, source: t, row: x, metric: precision, value: 80.00, unit: percent, dataset: d}
  - {id: a/x/recall, kind: result, source: t, row: x, metric: recall, value: 60.00, unit: percent, dataset: d}
  - {id: a/x/f1, kind: result, source: t, row: x, metric: f1, value: 68.59, unit: percent, dataset: d}
  - {id: a/y/precision, kind: result, source: t, row: y, metric: precision, value: 80.00, unit: percent, dataset: d}
  - {id: a/y/recall, kind: result, source: t, row: y, metric: recall, value: 60.00, unit: percent, dataset: d}
  - {id: a/y/f1, kind: result, source: t, row: y, metric: f1, value: 65.00, unit: percent, dataset: d}
  - {id: a/z/precision, kind: result, source: t, row: z, metric: precision, value: 80.00, unit: percent, dataset: d}
  - {id: a/z/recall, kind: result, source: t, row: z, metric: recall, value: 60.00, unit: percent, dataset: d}
  - {id: a/z/f1, kind: result, source: t, row: z, metric: f1, value: 70.00, unit: percent, dataset: d}
  - {id: a/w/precision, kind: result, source: t, row: w, metric: precision, value: 80.00, unit: percent, dataset: d}
  - {id: a/w/recall, kind: result, source: t, row: w, metric: recall, value: 60.00, unit: percent, dataset: d}
  - {id: a/w/f1, kind: result, source: t, row: w, metric: f1, value: 30.00, unit: percent, dataset: d}
checks:
  - {kind: f1_triples}
"""
    # 2PR/(P+R) = 68.5714...; P + R - 1 = 40
    found = audit(write(tmp_path, body)).set_index("check")
    x = found.loc["checks[0] a/x"]          # 68.59 vs <= 68.5757: gap 0.0093 <= 0.01
    assert x["explained_by"] == "rounding" and x["group"] == "explainable"
    y = found.loc["checks[0] a/y"]          # below 2PR/(P+R), above P + R - 1
    assert y["explained_by"] == "macro averaging"
    z = found.loc["checks[0] a/z"]          # above 2PR/(P+R): no macro average gets there
    assert z["group"] == "discrepancy" and "above 2PR/(P+R)" in z["rule"]
    w = found.loc["checks[0] a/w"]          # below P + R - 1
    assert w["group"] == "discrepancy" and "below P + R - 1" in w["rule"]
    assert math.isclose(w["size"], 68.5714 - 30.0, abs_tol=1e-3) and w["unit"] == "percent"
    assert list(audit(write(tmp_path, body))["check"])[:2] == ["checks[0] a/w", "checks[0] a/z"]


def test_formula_module_is_a_leaf() -> None:
    import ast as _ast

    import brainlib.claims.formula as formula

    tree = _ast.parse(Path(formula.__file__).read_text(encoding="utf-8"))
    imported = [n.module for n in _ast.walk(tree) if isinstance(n, _ast.ImportFrom)]
    imported += [a.name for n in _ast.walk(tree) if isinstance(n, _ast.Import) for a in n.names]
    assert not any(m and m.startswith("brainlib") for m in imported)
    f = formula.parse_formula("2 * iou / (1 + iou)", {"iou"})
    assert math.isclose(f({"iou": 0.5}), 2 / 3)
    with pytest.raises(ValueError):
        formula.parse_formula("__import__('os')", set())


def test_settings_of_private_data_papers_are_still_graded():
    """lin2021's data are private, but a setting is what our run used: as in paper / changed."""
    from brainlib.claims import compare, load_paper

    settings = [c for c in load_paper("lin2021").claims if c.kind == "setting" and c.value is not None]
    assert settings
    measured = pd.DataFrame([{"claim_id": c.id, "value": c.value, "ci_low": None, "ci_high": None}
                             for c in settings])
    table = compare("lin2021", measured, "phantoms", synthetic=True, profile="quick")
    assert set(table.set_index("claim_id").loc[[c.id for c in settings], "status"]) == {"as in paper"}
