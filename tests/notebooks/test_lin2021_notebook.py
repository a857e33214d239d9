"""The lin2021 notebook runs end to end (smoke profile); saved predictions agree with the tables."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "lin2021_dscint_bone_scan.ipynb"
EVIDENCE = {"consistent", "differs", "supported", "contradicted"}


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def test_notebook_structure():
    # plain JSON (nbformat's import alone takes seconds on a loaded machine)
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["nbformat"] == 4
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")  # a student header precedes it
    assert "parameters" in first["metadata"].get("tags", [])
    for name in ("profile", "data_root", "out_dir", "device", "seed", "epochs", "image_size",
                 "max_scans", "evaluation"):
        assert f"{name} =" in _source(first)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert sum(len(_source(c).splitlines()) for c in code) < 60
    for c in code:
        assert not any(line.lstrip().startswith(("def ", "class ")) for line in _source(c).splitlines())
        assert not c.get("outputs") and c.get("execution_count") is None
    from brainlib.runner import notebook_key

    assert notebook_key(NOTEBOOK) == "lin2021"


@pytest.mark.slow
def test_notebook_smoke_run(tmp_path, brainlib_kernel, monkeypatch):
    pm = pytest.importorskip("papermill")
    from sklearn.metrics import accuracy_score, f1_score

    monkeypatch.setenv("BRAINLIB_HEADLESS", "1")
    out = tmp_path / "lin2021"
    t0 = time.perf_counter()
    pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "executed.ipynb"), kernel_name=brainlib_kernel,
                        parameters={"profile": "smoke", "out_dir": str(out)}, progress_bar=False)
    seconds = time.perf_counter() - t0
    tables = {p.stem for p in (out / "tables").glob("*.csv")}
    assert {"data", "abstract_metrics", "comparison", "per_class", "fixed_location", "leakage",
            "claims", "settings", "instrument_checks"} <= tables
    leakage = pd.read_csv(out / "tables" / "leakage.csv")
    assert "augmented test minus leakage-free" in set(leakage["test images"])
    fixed = pd.read_csv(out / "tables" / "fixed_location.csv")
    assert set(fixed["metric"]) == {"recall", "f1"} and fixed["bootstrap p"].between(0, 1).all()
    for stem in ("fig_examples", "fig_confusion", "fig_attention", "fig_training"):
        assert (out / "figures" / f"{stem}.png").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data_source"]["kind"] == "phantom" and manifest["readings"]
    comparison = pd.read_csv(out / "tables" / "comparison.csv")
    for ev in ("augmented_test", "leakage_free"):
        pred = pd.read_csv(out / "predictions" / f"predictions_{ev}.csv")
        classes = [c[len("label_"):] for c in pred.columns if c.startswith("label_")]
        for model, p in pred.groupby("model"):
            y = p[[f"label_{c}" for c in classes]].to_numpy().argmax(1)
            s = p[[f"score_{c}" for c in classes]].to_numpy().argmax(1)
            acc, f1 = accuracy_score(y, s), f1_score(y, s, average="macro", labels=range(4), zero_division=0)
            row = comparison[(comparison["evaluation"] == ev) & (comparison["model"] == model)]
            if len(row):
                assert row["accuracy"].iloc[0] == pytest.approx(acc, abs=1e-4)
                assert row["f1"].iloc[0] == pytest.approx(f1, abs=1e-4)
            if model == "Dscint":
                table = pd.read_csv(out / "tables" / "abstract_metrics.csv").set_index("metric")
                col = [c for c in table.columns if c.startswith(ev.split("_")[0][:4])]
                assert col and float(table.loc["accuracy", col[0]].split()[0]) == pytest.approx(acc, abs=1e-4)
                assert float(table.loc["f1", col[0]].split()[0]) == pytest.approx(f1, abs=1e-4)
    claims = pd.read_csv(out / "tables" / "claims.csv")
    graded = claims[claims["kind"].isin(["result", "data", "comparison"])]
    assert len(graded) and not set(graded["status"]) & EVIDENCE
    cpu = manifest["parameters"]["timings_seconds"]["process CPU s (whole kernel so far)"]
    print(f"smoke notebook: {seconds:.1f} s wall, kernel {cpu:.1f} s CPU")
    # the bound (60 s) on the kernel's own CPU time: wall time on the shared 2-core
    # machine runs 3-4x the CPU time at load ~10 (147 s wall measured there), so wall gets a
    # loose bound only
    assert cpu < 60 and seconds < 300
