"""The he2024 notebook: committed clean, and the smoke profile runs end to end with
artefacts that agree with the saved per-case predictions."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "he2024_ich_window_multiscale.ipynb"
CLASSES = ("any", "epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")
SHORT = {"any": "Any", "epidural": "EDH", "intraparenchymal": "IPH", "intraventricular": "IVH",
         "subarachnoid": "SAH", "subdural": "SDH"}


def test_notebook_structure():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code" and "parameters" in first.metadata.get("tags", [])
    for name, default in (("profile", '"quick"'), ("data_root", "None"),
                          ("out_dir", '"outputs/he2024"'), ("device", '"auto"'), ("seed", "0"),
                          ("epochs", "None"), ("image_size", "None"), ("batch_size", "None"),
                          ("max_studies", "None")):
        assert re.search(rf"^{name} = {re.escape(default)}", first.source, re.M), name
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert sum(len(c.source.splitlines()) for c in code) < 100
    for c in code:
        assert not any(line.lstrip().startswith(("def ", "class ")) for line in c.source.splitlines())
        assert not c.get("outputs") and c.get("execution_count") is None  # committed clean


def _first_number(cell: str) -> float:
    return float(cell.split()[0]) if isinstance(cell, str) and cell != "n/a" else float("nan")


@pytest.mark.slow
def test_notebook_smoke_run(tmp_path, brainlib_kernel):
    pm = pytest.importorskip("papermill")
    from sklearn.metrics import roc_auc_score

    out = tmp_path / "he2024"
    t0 = time.perf_counter()
    pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "executed.ipynb"),
                        kernel_name=brainlib_kernel,
                        parameters={"profile": "smoke", "out_dir": str(out)}, progress_bar=False)
    seconds = time.perf_counter() - t0
    tables = {p.stem for p in (out / "tables").glob("*.csv")}
    assert {"split", "fig5_proportions", "table2", "table3", "table4",
            "fig7_learned_windows", "ap_localization", "paired_tests", "claims", "audit",
            "training_history"} <= tables
    figs = {p.name for p in (out / "figures").iterdir()}
    for stem in ("fig5_proportions", "fig6_roc", "fig7_windows", "fig8_cam"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= figs
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["profile"] == "smoke"
    assert manifest["data_source"]["kind"] == "phantom"
    assert any("random initialisation" in n for n in manifest["notes"])
    assert any(d.startswith("epochs:") for d in manifest["deviations"])

    # AUCs recomputed from the saved per-case predictions equal Table 3's and the claims'
    pred = pd.read_csv(out / "predictions" / "test_predictions.csv")
    t3 = pd.read_csv(out / "tables" / "table3.csv").set_index("class")
    claims = pd.read_csv(out / "tables" / "claims.csv").set_index("claim_id")
    checked = 0
    for model, label, key in (("he2024_full", "Our method", "full"),
                              ("he2024_no_window", "w/o module window", "no_window"),
                              ("he2024_no_fusion", "w/o multiple feature fusion", "no_fusion")):
        p = pred[pred["model"] == model]
        assert len(p) > 0 and p["case_id"].is_unique
        aucs = []
        for cls in CLASSES:
            y, s = p[f"label_{cls}"].to_numpy(), p[f"score_{cls}"].to_numpy()
            table_value = _first_number(t3.at[SHORT[cls], f"{label} (here)"])
            if 0 < y.sum() < len(y):
                auc = roc_auc_score(y, s)
                aucs.append(auc)
                assert round(auc, 3) == pytest.approx(table_value, abs=1e-9)
                assert claims.at[f"table3/{key}/{cls}/auc", "reproduced_value"] == \
                    pytest.approx(auc, abs=1e-9)
                checked += 1
            else:
                assert np.isnan(table_value)
        assert round(float(np.mean(aucs)), 3) == pytest.approx(
            _first_number(t3.at["Average", f"{label} (here)"]), abs=1e-9)
    assert checked >= 3
    assert (claims.loc[claims.index.str.startswith("table3/junior_radiologist"), "status"]
            == "not reproducible offline").all()
    print(f"smoke notebook: {seconds:.1f} s")
