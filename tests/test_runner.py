"""brainlib.runner: notebook keys, parameters, the hash check, failures recorded, report."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from brainlib import runner
from brainlib.report import write_report
from brainlib.runner import NotebookError, declared_parameters, notebook_key, run_notebooks


@pytest.fixture
def notebooks(tmp_path, fixtures_dir) -> Path:
    """A private copy of the fixture notebooks (tests edit them)."""
    folder = tmp_path / "notebooks"
    shutil.copytree(fixtures_dir / "notebooks", folder)
    return folder


def _status(out: Path, key: str) -> dict:
    return json.loads((out / key / "status.json").read_text())


def _edit_cell(path: Path, old: str, new: str) -> None:
    nb = nbformat.read(str(path), as_version=4)
    hits = [c for c in nb.cells if old in c.source]
    assert hits, f"{old!r} not in {path}"
    for cell in hits:
        cell.source = cell.source.replace(old, new)
    nbformat.write(nb, str(path))


def test_notebook_key():
    assert notebook_key(Path("he2024.ipynb")) == "he2024"
    assert notebook_key(Path("he2024_window_module.ipynb")) == "he2024"
    assert notebook_key(Path("wang_drct2_keyslices.ipynb")) == "wang_drct2"
    assert notebook_key(Path("explore_ct_windows.ipynb")) == "explore_ct_windows"


def test_declared_parameters_reads_annotations(notebooks):
    # papermill.inspect_notebook alone misses `data_root: str | None = None`
    assert declared_parameters(notebooks / "demo_ok.ipynb") == {"profile", "data_root", "out_dir", "device", "seed"}
    with pytest.raises(NotebookError, match="demo_noparams.ipynb: no cell tagged 'parameters'"):
        declared_parameters(notebooks / "demo_noparams.ipynb")


def test_input_hash_tracks_source_not_outputs(notebooks):
    nb_path = notebooks / "demo_ok.ipynb"
    params = {"profile": "smoke"}
    base = runner.input_hash(nb_path, params, "pkg", "phantom")
    nb = nbformat.read(str(nb_path), as_version=4)
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="an output")]
    nb.cells[-1].execution_count = 7
    nbformat.write(nb, str(nb_path))
    assert runner.input_hash(nb_path, params, "pkg", "phantom") == base  # re-saved with outputs
    assert runner.input_hash(nb_path, {"profile": "quick"}, "pkg", "phantom") != base
    assert runner.input_hash(nb_path, params, "pkg2", "phantom") != base
    assert runner.input_hash(nb_path, params, "pkg", "other-data") != base
    _edit_cell(nb_path, '"Demo table"', '"Demo table, edited"')
    assert runner.input_hash(nb_path, params, "pkg", "phantom") != base


def test_package_and_data_digests(tmp_path):
    pkg = tmp_path / "repo" / "brainlib"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "claims.yaml").write_text("a: 1\n")
    (pkg / "notes.txt").write_text("ignored")
    first = runner.package_digest(pkg)
    (pkg / "notes.txt").write_text("still ignored")
    assert runner.package_digest(pkg) == first
    (pkg / "claims.yaml").write_text("a: 2\n")
    assert runner.package_digest(pkg) != first

    data = tmp_path / "data"
    (data / "stage_2_train").mkdir(parents=True)
    (data / "stage_2_train" / "ID_1.dcm").write_bytes(b"1234")
    listing = runner.data_digest(data)
    assert runner.data_digest(data) == listing
    (data / "stage_2_train" / "ID_2.dcm").write_bytes(b"5")
    assert runner.data_digest(data) != listing
    assert runner.data_digest(None) == "phantom"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        runner.data_digest(tmp_path / "missing")


def test_refuses_notebook_without_parameters_cell(notebooks, tmp_path, brainlib_kernel, capsys):
    rc = run_notebooks("smoke", ["demo_noparams"], None, tmp_path / "out", "cpu", False, notebooks)
    assert rc == 1
    status = _status(tmp_path / "out", "demo_noparams")
    assert status["status"] == "failed" and status["error"]["ename"] == "NotebookError"
    assert "no parameters cell" in capsys.readouterr().out


def test_bad_selection_and_duplicate_keys(notebooks, tmp_path, capsys, brainlib_kernel):
    assert run_notebooks("smoke", ["nope"], None, tmp_path / "out", "cpu", False, notebooks) == 1
    assert "--only nope: no such notebook" in capsys.readouterr().err
    shutil.copy(notebooks / "demo_ok.ipynb", notebooks / "he2024.ipynb")
    shutil.copy(notebooks / "demo_ok.ipynb", notebooks / "he2024_more.ipynb")
    assert run_notebooks("smoke", None, None, tmp_path / "out", "cpu", False, notebooks) == 1
    assert "both write to <out>/he2024" in capsys.readouterr().err
    assert run_notebooks("smoke", None, None, tmp_path / "out", "cpu", False, tmp_path / "empty") == 1
    (notebooks / "he2024_more.ipynb").unlink()
    assert run_notebooks("smoke", ["demo_ok"], tmp_path / "no_data", tmp_path / "out", "cpu", False,
                         notebooks) == 1
    assert "no_data does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_failure_recorded_others_still_run(notebooks, tmp_path, brainlib_kernel):
    out = tmp_path / "out"
    rc = run_notebooks("smoke", None, None, out, "cpu", False, notebooks)
    assert rc == 1
    ok = _status(out, "demo_ok")
    assert ok["status"] == "ok" and ok["seconds"] > 0
    assert ok["parameters"] == {"profile": "smoke", "data_root": None, "out_dir": str(out / "demo_ok"),
                                "device": "cpu"}
    assert (out / "demo_ok" / "demo_ok.ipynb").exists() and (out / "demo_ok" / "demo_ok.html").exists()
    executed = nbformat.read(str(out / "demo_ok" / "demo_ok.ipynb"), as_version=4)
    assert any("profile smoke headless 1" in o.get("text", "") for c in executed.cells if c.cell_type == "code"
               for o in c.get("outputs", []))
    manifest = json.loads((out / "demo_ok" / "manifest.json").read_text())
    assert {"tables/table1.csv", "demo_ok.ipynb", "demo_ok.html"} <= set(manifest["artifacts"])
    assert manifest["run_seconds"] > 0
    # the host and its reference speed, measured once before the notebooks, beside the time
    machine = ok["machine"]
    assert machine["logical_cpus"] >= 1 and machine["gemm_gflops_1thread"] > 0
    assert "load_1min_end" in machine and manifest["machine"] == machine

    failed = _status(out, "demo_fails")
    assert failed["status"] == "failed" and failed["input_hash"] is None
    assert failed["error"]["ename"] == "ValueError"
    assert failed["error"]["evalue"] == "planted failure for the runner tests"
    assert "planted failure" in failed["error"]["traceback"]
    assert not (out / "demo_fails" / "after_failure.txt").exists()  # later cells did not run
    assert (out / "demo_fails" / "demo_fails.ipynb").exists()  # kept, with papermill's error banner
    assert [p.name for p in (out / "demo_ok").iterdir() if p.name.startswith(".")] == []

    text = write_report(out, notebooks_dir=notebooks).read_text()
    assert "failed: demo_fails, demo_noparams" in text
    assert "`ValueError: planted failure for the runner tests` in cell" in text


@pytest.mark.slow
def test_hash_check_skips_unchanged_and_reruns_changed(notebooks, tmp_path, brainlib_kernel, capsys,
                                                       monkeypatch):
    # brainlib's own source is part of the hash (tested above); freeze it here so that edits
    # to the checkout while the test runs cannot make it flaky.
    monkeypatch.setattr(runner, "package_digest", lambda package_dir=None: "frozen")
    out = tmp_path / "out"
    args = dict(profile="smoke", only=["demo_ok"], data_root=None, out_dir=out, device="cpu",
                notebooks_dir=notebooks)
    assert run_notebooks(force=False, **args) == 0
    first = _status(out, "demo_ok")
    executed = out / "demo_ok" / "demo_ok.ipynb"
    mtime = executed.stat().st_mtime_ns
    capsys.readouterr()

    assert run_notebooks(force=False, **args) == 0
    assert "unchanged, skipped" in capsys.readouterr().out
    again = _status(out, "demo_ok")
    assert again["finished"] == first["finished"] and again["reused_at"]
    assert executed.stat().st_mtime_ns == mtime

    _edit_cell(notebooks / "demo_ok.ipynb", '"value": [0.5 + seed]', '"value": [0.25 + seed]')
    assert run_notebooks(force=False, **args) == 0
    assert "ok" in capsys.readouterr().out
    rerun = _status(out, "demo_ok")
    assert rerun["input_hash"] != first["input_hash"] and "reused_at" not in rerun
    assert "0.25" in (out / "demo_ok" / "tables" / "table1.csv").read_text()

    assert run_notebooks(force=False, **{**args, "profile": "quick"}) == 0  # other parameters
    assert "unchanged" not in capsys.readouterr().out
    assert run_notebooks(force=True, **{**args, "profile": "quick"}) == 0  # --force
    assert "unchanged" not in capsys.readouterr().out


def test_rerun_after_a_kill_sweeps_temp_files_and_reruns(notebooks, tmp_path, brainlib_kernel, capsys):
    """A killed runner leaves `running` and half-written temp files; the next run removes the
    temp files (never a live writer's, never checkpoints) and runs the notebook again."""
    import os
    import socket

    out = tmp_path / "out"
    folder = out / "demo_ok"
    dead = int(Path("/proc/sys/kernel/pid_max").read_text())
    ckpt = folder / "checkpoints" / "model-0123456789ab"
    ckpt.mkdir(parents=True)
    (ckpt / "last.pt").write_bytes(b"kept")
    left = [folder / f".demo_ok.ipynb.{dead}-0123abcd.tmp.ipynb", ckpt / f".last.pt.{dead}-89abcdef.tmp.pt",
            out / "demo_fails" / f".table1.csv.{dead}-00000000.tmp.csv"]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    live = ckpt / f".best.pt.{os.getpid()}-0123abcd.tmp.pt"
    live.write_bytes(b"in flight")
    (folder / "status.json").write_text(json.dumps(
        {"status": "running", "started": "2026-01-01T00:00:00+00:00", "pid": dead,
         "host": socket.gethostname()}))
    assert "interrupted" in write_report(out, notebooks_dir=notebooks).read_text()

    assert run_notebooks("smoke", ["demo_ok"], None, out, "cpu", False, notebooks) == 0
    assert "last run interrupted" in capsys.readouterr().out
    assert not any(p.exists() for p in left)  # the whole output folder is swept
    assert live.exists() and (ckpt / "last.pt").read_bytes() == b"kept"
    status = _status(out, "demo_ok")
    assert status["status"] == "ok" and status["pid"] == os.getpid()
    assert status["host"] == socket.gethostname()


def _timed_copies(notebooks: Path, names: list[str]) -> None:
    """Copies of demo_ok that record when they ran (a 2-s sleep between two timestamps)."""
    for name in names:
        nb = nbformat.read(str(notebooks / "demo_ok.ipynb"), as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(
            "import time, json, pathlib\nt0 = time.time(); time.sleep(2.0)\n"
            "pathlib.Path(out_dir, 'span.json').write_text(json.dumps([t0, time.time()]))"))
        nbformat.write(nb, str(notebooks / f"{name}.ipynb"))


@pytest.mark.slow
def test_jobs_run_notebooks_at_once_with_the_same_results(notebooks, tmp_path, brainlib_kernel,
                                                           capsys):
    names = ["demo_a", "demo_b"]
    _timed_copies(notebooks, names)
    spans, tables = {}, {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        assert run_notebooks("smoke", names, None, out, "cpu", False, notebooks, jobs=jobs) == 0
        spans[jobs] = [json.loads((out / n / "span.json").read_text()) for n in names]
        tables[jobs] = [(out / n / "tables" / "table1.csv").read_text() for n in names]
        for n in names:
            assert _status(out, n)["status"] == "ok"
            executed = nbformat.read(str(out / n / f"{n}.ipynb"), as_version=4)
            assert any("headless 1" in o.get("text", "") for c in executed.cells
                       if c.cell_type == "code" for o in c.get("outputs", []))
    (a0, a1), (b0, b1) = spans[1]
    assert a1 <= b0 or b1 <= a0  # one at a time
    (a0, a1), (b0, b1) = spans[2]
    assert a0 < b1 and b0 < a1  # the two sleeps overlapped
    assert tables[1] == tables[2]
    assert "2 at a time" in capsys.readouterr().out


def test_default_jobs_one_per_core_except_full(monkeypatch):
    monkeypatch.setattr(runner.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert runner.default_jobs("quick", 5) == 2 and runner.default_jobs("smoke", 1) == 1
    assert runner.default_jobs("full", 5) == 1
