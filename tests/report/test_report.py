"""brainlib.report and brainlib._atomic: Run artefacts, manifest hashes, REPORT.md."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # noqa: E402  (tests only; the library never changes the backend)
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from brainlib import PAPERS, report
from brainlib._atomic import atomic_path, atomic_write
from brainlib.report import DataSource, as_data_source, start_run, write_report


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def run(tmp_path):
    return start_run("he2024", {"profile": "smoke", "seed": 3, "device": "cpu"}, tmp_path / "he2024",
                     "phantom:rsna", deviations=["VGG-16 width 1/4"], notes=["VGG-16 random init"])


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write(target, "one")
    atomic_write(target, b"two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_atomic_write_without_fsync_and_permissions(tmp_path):
    target = atomic_write(tmp_path / "bulk.bin", b"\x00\x01", fsync=False)
    assert target.read_bytes() == b"\x00\x01"
    status = Path("/proc/self/status")
    if status.exists():  # mkstemp would give 0600; outputs get the usual 0666 minus umask
        umask = next(int(line.split()[1], 8) for line in status.read_text().splitlines()
                     if line.startswith("Umask:"))
        assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "a.csv"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".csv" and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]


def test_data_source_labels():
    phantom = as_data_source("phantom:rsna")
    assert phantom.is_phantom
    assert phantom.label == "synthetic phantoms (RSNA layout) — not the paper's dataset"
    real = report.data_source("/data/rsna", layout="rsna")
    assert real.kind == "real" and real.root == "/data/rsna" and "RSNA" in real.label
    assert as_data_source(None).is_phantom
    assert as_data_source(real.to_dict()) == DataSource("real", "rsna", "/data/rsna", {})
    with pytest.raises(ValueError):
        DataSource("real")
    with pytest.raises(ValueError):
        DataSource("imaginary")


def test_save_table_three_formats_with_caption(run):
    df = pd.DataFrame({"model": ["WSO_A", "baseline"], "auc": [0.91234, 0.8], "n": [10, 12]})
    paths = run.save_table(df, "table3", "AUC per model")
    assert set(paths) == {"csv", "md", "tex"}
    back = pd.read_csv(paths["csv"])
    pd.testing.assert_frame_equal(back, df)
    md = paths["md"].read_text()
    assert "AUC per model. Data: synthetic phantoms (RSNA layout) — not the paper's dataset." in md
    assert "Deviations from the paper: VGG-16 width 1/4." in md
    assert "| WSO_A | 0.9123 | 10 |" in md
    tex = paths["tex"].read_text()
    assert r"WSO\_A & 0.9123 & 10 \\" in tex and r"\caption{AUC per model." in tex
    with pytest.raises(ValueError):
        run.save_table(df, "../escape")
    with pytest.raises(TypeError):
        run.save_table([1, 2], "table4")


def test_save_table_keeps_named_index(run):
    df = pd.DataFrame({"auc": [0.5]}, index=pd.Index(["any"], name="class"))
    path = run.save_table(df, "table5")["csv"]
    assert pd.read_csv(path).columns.tolist() == ["class", "auc"]


def test_save_predictions_validates_columns(run):
    good = pd.DataFrame({"case_id": ["a", "b"], "label_any": [1, 0], "score_any": [0.9, 0.2], "fold": [0, 1]})
    path = run.save_predictions(good, "val")
    assert path == run.out_dir / "predictions" / "val.csv"
    pd.testing.assert_frame_equal(pd.read_csv(path), good)
    with pytest.raises(ValueError, match="no score column for \\['any'\\]"):
        run.save_predictions(good.drop(columns="score_any"), "bad")
    with pytest.raises(ValueError, match="case_id"):
        run.save_predictions(good.drop(columns="case_id"), "bad")
    with pytest.raises(ValueError, match="no label column"):
        run.save_predictions(good.assign(score_edh=0.1), "bad")


def test_save_figure_png_and_pdf(run):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    paths = run.save_figure(fig, "fig6_roc")
    plt.close(fig)
    assert [p.name for p in paths] == ["fig6_roc.png", "fig6_roc.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"


@dataclass
class _Skipped:  # same fields as brainlib.io.Skipped
    path: str
    error: str
    reason: str


def test_skipped_and_manifest_hashes(run):
    run.save_table(pd.DataFrame({"a": [1]}), "table1")
    run.add_skipped([_Skipped("x/ID_1.dcm", "MissingPixelDataError", "truncated pixel data")])
    run.add_skipped([{"path": "x/ID_2.dcm", "reason": "not CT", "error": "NotCTError"}])
    with pytest.raises(ValueError):
        run.add_skipped([{"path": "x"}])
    (run.out_dir / "he2024.ipynb").write_text("{}")  # runner-owned: hashed by the runner, not here
    manifest_path = run.finish()
    manifest = json.loads(manifest_path.read_text())
    skipped = pd.read_csv(run.out_dir / "skipped.csv")
    assert skipped["path"].tolist() == ["x/ID_1.dcm", "x/ID_2.dcm"]
    assert manifest["skipped"]["count"] == 2
    assert manifest["seed"] == 3 and manifest["device"] == "cpu"
    assert manifest["parameters"]["profile"] == "smoke"
    assert manifest["data_source"]["kind"] == "phantom"
    assert manifest["notes"] == ["VGG-16 random init"] and manifest["deviations"] == ["VGG-16 width 1/4"]
    assert {"torch", "numpy", "pydicom", "scikit-learn", "brainlib", "python"} <= set(manifest["packages"])
    assert "commit" in manifest["git"] and "dirty" in manifest["git"]
    assert manifest["started"] <= manifest["ended"]
    arts = manifest["artifacts"]
    assert set(arts) == {"tables/table1.csv", "tables/table1.md", "tables/table1.tex", "skipped.csv"}
    for rel, info in arts.items():
        assert info["sha256"] == _sha(run.out_dir / rel)


def test_start_run_clears_stale_artefacts(run, tmp_path):
    run.save_table(pd.DataFrame({"a": [1]}), "old_table")
    run.finish()
    again = start_run("he2024", {}, tmp_path / "he2024", None)
    assert not (again.out_dir / "tables" / "old_table.csv").exists()
    assert not (again.out_dir / "manifest.json").exists()


def test_compare_claims_saves_claims_and_audit(run, monkeypatch):
    import brainlib.claims as claims

    calls = {}

    def fake_compare(paper, measured, data_source, *, synthetic=None, profile=None):
        calls["compare"] = (paper, list(measured["claim_id"]), data_source)
        calls["keywords"] = {"synthetic": synthetic, "profile": profile}
        return pd.DataFrame({"claim_id": ["t3.auc"], "paper_value": [0.9], "measured_value": [0.7],
                             "ci_low": [0.6], "ci_high": [0.8], "status": ["phantom run"]})

    def fake_audit(paper, out_dir=None):
        calls["audit"] = paper
        return pd.DataFrame({"check": ["f1"], "message": ["F1 != 2PR/(P+R)"]})

    monkeypatch.setattr(claims, "compare", fake_compare, raising=False)
    monkeypatch.setattr(claims, "audit", fake_audit, raising=False)
    measured = pd.DataFrame({"claim_id": ["t3.auc"], "value": [0.7], "ci_low": [0.6], "ci_high": [0.8]})
    table = run.compare_claims(measured)
    assert calls["compare"][:2] == ("he2024", ["t3.auc"]) and "synthetic phantoms" in calls["compare"][2]
    assert calls["keywords"] == {"synthetic": True, "profile": "smoke"}
    assert calls["audit"] == "he2024"
    assert table["status"].tolist() == ["phantom run"]
    assert (run.out_dir / "tables" / "claims.csv").exists() and (run.out_dir / "tables" / "audit.md").exists()
    with pytest.raises(ValueError, match="ci_high"):
        run.compare_claims(measured.drop(columns="ci_high"))


WIDE_NOTE = "a long note that keeps going " * 12


def _claims_frame() -> pd.DataFrame:
    rows = [
        ("setting", "he2024/window/brain", "as in paper", 40, 40, ""),
        ("setting", "he2024/epochs", "changed", 30, 2, "quick: 2 epochs on CPU"),
        ("result", "table3/wso/auc", "phantom run", 0.93, 0.71, "synthetic"),
        ("data", "fig5/train/epidural", "phantom run", 0.42, 0.0, ""),
        ("external", "reader/auc", "quoted, not re-run", 0.88, None, "reader study"),
        ("comparison", "table3/wso>base", "not run", None, None, ""),
    ]
    frame = pd.DataFrame(rows, columns=["kind", "claim_id", "status", "paper_value", "measured_value", "note"])
    frame["ci_low"] = frame["measured_value"] - 0.05
    frame["ci_high"] = frame["measured_value"] + 0.05
    for extra in ("source", "row", "metric", "unit", "dataset", "data_source"):  # wide, unbreakable
        frame[extra] = f"{extra}/" + "_".join(["long-identifier"] * 5)
    frame.loc[2, "note"] = WIDE_NOTE
    return frame


def _fake_outputs(out: Path, nb_dir: Path) -> None:
    nb_dir.mkdir()
    for name in ("he2024.ipynb", "wang_drct2.ipynb", "explore_ct_windows.ipynb"):
        (nb_dir / name).write_text("{}")
    ok = start_run("he2024", {"profile": "quick", "seed": 0}, out / "he2024", "phantom:rsna",
                   deviations=["epochs 2 instead of 30"], notes=["VGG-16 random init", "<script>alert('note')</script>"])
    ok.readings.append("optimiser: Adam (the paper does not say)")
    ok.save_table(_claims_frame(), "claims")
    ok.save_table(pd.DataFrame({"severity": ["error", "error", "warning"],
                                "check": ["table2", "table4/cbam", "table4/f1"],
                                "detail": ["brain b printed without its sign", "80.11 vs 90.12", "0.05 point F1 gap"],
                                "group": ["large", "large", "explainable by rounding"],
                                "rule": ["", "", "gap below the printed rounding of P and R"]}), "audit")
    ok.save_table(pd.DataFrame({"setting": ["window_brain", "epochs", "optimiser", "device"],
                                "value": ["(40, 80)", "2", "Adam", "cpu"],
                                "paper": ["(40, 80)", "30", "", ""],
                                "status": ["as in paper", "changed", "not in paper", "runtime"],
                                "source or reason": ["Table 2", "Sec. 4; quick profile", "ours", "ours"]}),
                  "settings")
    ok.save_table(pd.DataFrame({"check": ["main model Any AUC", "ablation learns"], "value": [0.91, 0.4],
                                "floor": [0.8, 0.6], "passed": [True, False],
                                "status": ["pass", "not enforced"], "what": ["positive control", ""]}),
                  "instrument_checks")
    ok.save_table(pd.DataFrame({"series": ["CT <script>alert('series')</script>"], "n": [3]}), "table1",
                  "Series used")
    fig, ax = plt.subplots(figsize=(1, 1))
    ok.save_figure(fig, "fig7_windows")
    plt.close(fig)
    ok.add_skipped([{"path": "ID_6431af929.dcm", "error": "MissingPixelDataError", "reason": "truncated"},
                    {"path": "x/<script>alert('path')</script>.dcm", "error": "NotCTError", "reason": "not CT"}])
    ok.finish()
    (out / "he2024" / "status.json").write_text(json.dumps(
        {"status": "ok", "seconds": 61.0, "finished": "2026-01-01T00:00:00+00:00",
         "parameters": {"profile": "quick"}, "output_notebook": "he2024.ipynb", "html": "he2024.html",
         "machine": {"cpu": "AMD EPYC", "logical_cpus": 2, "vector": ["avx2", "fma", "avx"],
                     "load_1min": 0.4, "gemm_gflops_1thread": 17.25, "load_1min_end": 1.9}}))
    (out / "wang_drct2").mkdir(parents=True)
    (out / "wang_drct2" / "status.json").write_text(json.dumps(
        {"status": "failed", "seconds": 3.0, "parameters": {"profile": "quick"},
         "error": {"ename": "ValueError", "evalue": "planted failure", "cell_index": 4,
                   "traceback": "Traceback ...\nValueError: planted failure"}}))


def _section(text: str, key: str) -> str:
    return text.split(f"## {key} —")[1].split("\n## ")[0]


def test_write_report_lists_every_paper_and_failures(tmp_path):
    out = tmp_path / "outputs"
    _fake_outputs(out, tmp_path / "notebooks")
    md_path = write_report(out, notebooks_dir=tmp_path / "notebooks")
    text = md_path.read_text()
    for key in PAPERS:
        assert f"## {key} —" in text
    assert "1 notebook(s) failed: wang_drct2" in text
    assert "`ValueError: planted failure` in cell 4" in text
    he = _section(text, "he2024")
    # settings are counted apart from evidence; phantom runs are said not to be evidence
    assert "Settings: 1 as in paper, 1 changed. Evidence: 2 phantom run, 1 quoted, not re-run, 1 not run" in he
    assert "not evidence about the paper" in he
    assert "settings: 1 as in paper, 1 changed; evidence:" not in text  # summary has its own columns
    assert "1 settings as in paper, 1 changed (epochs: 2 (paper: 30)), 1 not in paper, 1 runtime" in he
    assert 'src="he2024/figures/fig7_windows.png"' in text
    assert "brain b printed without its sign" in text
    assert "1 finding(s) explainable by rounding or macro-averaging" in he
    assert "gap below the printed rounding of P and R" in he
    assert "ID_6431af929.dcm" in text and "VGG-16 random init" in text
    assert "optimiser: Adam (the paper does not say)" in he and "epochs 2 instead of 30" in he
    assert "synthetic phantoms (RSNA layout) — not the paper's dataset" in text
    assert "Run time: 61 s" in text and "Profile: quick" in he
    # the host beside the run time: seconds of different hosts are not comparable without it
    assert ("Host: AMD EPYC, 2 CPUs (avx2, fma), reference GEMM 17.2 GFLOP/s (1 thread), "
            "load 0.4 at the start, 1.9 at the end") in he
    assert "Host:" not in _section(text, "wang_drct2")  # a status without it: no line
    assert ("./reproduce.sh --only he2024 --profile full --device cuda --data-root /path/to/DATA" in he
            and "rsna/" in he)
    assert "[table1](he2024/tables/table1.md) — Series used." in he
    assert "1 passed, 0 failed, 1 not enforced." in he and "| not enforced | ablation learns |" in he
    assert "[settings]" not in he and "[instrument_checks]" not in he  # they have their own blocks
    # order: verified offline, what was run, instrument checks, results, then the long tables
    order = [he.index(h) for h in ("### Verified offline", "### What was run", "### Instrument checks",
                                   "### Results: paper vs measured", "### Tables", "### Figures",
                                   "<summary>All 6 claims")]
    assert order == sorted(order)
    results = he.split("### Results: paper vs measured")[1].split("### Tables")[0]
    assert "| status | claim_id |" in results and "table3/wso/auc" in results
    assert "he2024/epochs" not in results and "table3/wso>base" not in results  # settings, not run
    assert "<script>" not in text  # data text reaches the Markdown escaped
    for key in ("yin2024", "lin2021", "pandiyaraju2024"):
        section = _section(text, key)
        assert "no notebook yet" in section
        # a paper without a notebook still gets its own arithmetic audited in the report
        assert f"claims registered in `brainlib/claims/{key}.yaml`" in section
    assert "2PR/(P+R)" in _section(text, "yin2024")  # yin2024's F1 values disagree with its own eq. 16
    html = (out / "REPORT.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "planted failure" in html and "<img" in html
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_html_report_escapes_data_and_is_self_contained(tmp_path):
    out = tmp_path / "outputs"
    _fake_outputs(out, tmp_path / "notebooks")
    write_report(out, notebooks_dir=tmp_path / "notebooks")
    html = (out / "REPORT.html").read_text()
    assert "<script" not in html.lower()
    for where in ("series", "path", "note"):
        assert f"&lt;script&gt;alert(&#39;{where}&#39;)&lt;/script&gt;" in html
    assert "<style>" in html and ".scroll" in html and "<details" in html
    assert '<span class="badge st-phantom-run">phantom run</span>' in html
    assert 'class="data phantom"' in html and "Instrument checks" in html
    assert html.index("Instrument checks") < html.index("Results: paper vs measured")


def test_old_claims_csv_with_reproduced_value_and_failed_instrument(tmp_path):
    out = tmp_path / "outputs"
    folder = out / "he2024" / "tables"
    folder.mkdir(parents=True)
    pd.DataFrame({"claim_id": ["a", "b"], "paper_value": [0.9, 0.8], "reproduced_value": [0.7, None],
                  "status": ["differs", "not run"]}).to_csv(folder / "claims.csv", index=False)
    pd.DataFrame({"check": ["auc floor"], "value": [0.6], "floor": [0.8], "passed": [False]}).to_csv(
        folder / "instrument_checks.csv", index=False)
    (out / "he2024" / "manifest.json").write_text(json.dumps(
        {"data_source": {"kind": "real", "root": "/data", "label": "real RSNA data at /data"}}))
    text = write_report(out, notebooks_dir=tmp_path / "none").read_text()
    he = _section(text, "he2024")
    assert "| status | claim_id | paper_value | measured_value |" in he
    assert "| differs | a |" in he and "Evidence: 1 differs, 1 not run" in he
    assert "1 passed" not in he and "0 passed, 1 failed — **1 FAILED**" in he and "| FAIL | auc floor |" in he
    assert "--data-root /path/to/DATA" not in he  # a real run needs no command to test on real data


def test_compare_claims_with_the_real_registry(run):
    claims = pytest.importorskip("brainlib.claims")
    registry = claims.load_claims("he2024")
    numeric = registry["kind"].isin(["value", "result"])
    claim_id = registry.loc[numeric, "claim_id"].iloc[0]
    measured = pd.DataFrame({"claim_id": [claim_id], "value": [0.5], "ci_low": [0.4], "ci_high": [0.6]})
    table = run.compare_claims(measured)
    row = table.set_index("claim_id").loc[claim_id]
    value_col = "measured_value" if "measured_value" in table.columns else "reproduced_value"
    assert row[value_col] == 0.5
    assert row["status"] == "phantom run"  # a phantom run is never graded against the paper
    assert "synthetic phantoms" in row["data_source"]
    assert len(table) == len(registry)  # every claim listed, most "not run" here
    manifest = json.loads(run.finish().read_text())
    assert {"tables/claims.csv", "tables/audit.csv", "tables/claims.md"} <= set(manifest["artifacts"])


def test_running_status_of_a_killed_run_is_shown_interrupted(tmp_path):
    """`running` left by a killed runner reads `interrupted`; a live runner's reads `running`."""
    import os
    import socket

    from brainlib.report.collect import _status_text

    dead = int(Path("/proc/sys/kernel/pid_max").read_text())
    host = socket.gethostname()
    started = "2026-01-01T00:00:00+00:00"
    killed = {"status": "running", "started": started, "pid": dead, "host": host}
    assert _status_text(killed, None) == f"interrupted (started {started}, never finished)"
    assert _status_text({"status": "running"}, None).startswith("interrupted")  # older runners
    assert _status_text({**killed, "pid": os.getpid(), "host": "elsewhere"}, None).startswith("interrupted")
    assert _status_text({**killed, "pid": os.getpid()}, None).startswith("running (started")

    out = tmp_path / "outputs"
    _fake_outputs(out, tmp_path / "notebooks")
    (out / "he2024" / "status.json").write_text(json.dumps(killed))
    text = write_report(out, notebooks_dir=tmp_path / "notebooks").read_text()
    he = _section(text, "he2024")
    assert "Status: **interrupted (started 2026-01-01T00:00:00+00:00, never finished)**" in he


def test_start_run_removes_temp_files_of_a_killed_writer(tmp_path):
    """A temp file whose writer process is gone is removed when the next run opens."""
    from brainlib.report import start_run

    out = tmp_path / "he2024"
    (out / "checkpoints" / "x").mkdir(parents=True)
    dead = out / "checkpoints" / "x" / ".last.pt.999999999-deadbeef.tmp"
    dead.write_bytes(b"partial")
    start_run("he2024", {}, out, None)
    assert not dead.exists()
