"""The pandiyaraju2024 notebook: committed clean in the shape every paper notebook has; the smoke
profile runs end to end through papermill, and Dice and accuracy recomputed from the saved masks
and per-case predictions equal the tables; on phantoms no result, data or comparison claim is
graded (consistent / differs / supported / contradicted)."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "pandiyaraju2024_busi_attention.ipynb"
CLASSES = ("benign", "malignant", "normal")
GRADED = {"consistent", "differs", "supported", "contradicted"}
EVIDENCE_KINDS = {"result", "data", "comparison"}


def test_notebook_structure() -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")  # a student header precedes it
    assert "parameters" in first.metadata.get("tags", [])
    for name, default in (("profile", '"quick"'), ("data_root", "None"),
                          ("out_dir", '"outputs/pandiyaraju2024"'), ("device", '"auto"'), ("seed", "0"),
                          ("epochs", "None"), ("image_size", "None"), ("max_images", "None"),
                          ("encoder", "None")):
        assert re.search(rf"^{name} = {re.escape(default)}", first.source, re.M), name
    assert nb.cells[nb.cells.index(first) + 1].cell_type == "markdown" and "synthetic" in nb.cells[nb.cells.index(first) + 1].source.lower()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "exp = pandiyaraju2024.setup(" in code[1].source
    assert code[-1].source.startswith("manifest = exp.finish()")
    for c in code:
        assert not any(line.lstrip().startswith(("def ", "class ")) for line in c.source.splitlines())
        assert not c.get("outputs") and c.get("execution_count") is None  # committed clean
    source = "\n".join(c.source for c in code)
    for table in ("data", "table_segmentation", "table_classification", "training", "table_leakage",
                  "table_leakage_summary", "table_leakage_metrics"):
        assert f'exp.table("{table}"' in source, table
    for fig in ("fig_examples", "fig_confusion", "fig_roc", "fig_leakage_pairs"):
        assert f'exp.figure("{fig}"' in source, fig


def _recompute(out: Path) -> None:
    """Dice from the saved masks and accuracy from the saved predictions equal the tables."""
    masks = np.load(out / "predictions" / "segmentation_masks.npz")
    pred, truth = masks["pred"], masks["truth"]
    tp = (pred & truth).sum()
    dice = 2 * tp / max(pred.sum() + truth.sum(), 1)
    seg = pd.read_csv(out / "tables" / "table_segmentation.csv")
    row = seg[(seg.metric == "Dice") & (seg.scope == "dataset-level (pooled pixels)")].iloc[0]
    assert row["value %"] == pytest.approx(round(dice * 100, 2), abs=1e-9)
    per_case = pd.read_csv(out / "predictions" / "segmentation.csv")
    assert list(per_case.case_id) == list(masks["ids"])
    table = pd.read_csv(out / "tables" / "table_classification.csv")
    claims = pd.read_csv(out / "tables" / "claims.csv").set_index("claim_id")
    for name, stem in (("predicted mask", "predicted_mask"), ("ground-truth mask", "ground_truth_mask"),
                       ("whole image", "whole_image"), ("empty-mask rule", "empty_mask_rule")):
        p = pd.read_csv(out / "predictions" / f"classification_{stem}.csv")
        y = p[[f"label_{c}" for c in CLASSES]].to_numpy().argmax(1)
        s = p[[f"score_{c}" for c in CLASSES]].to_numpy().argmax(1)
        acc = float((y == s).mean()) * 100
        got = table[(table.input == name) & (table.metric == "accuracy")]["value %"].iloc[0]
        assert got == pytest.approx(round(acc, 2), abs=1e-9), name
        if name == "predicted mask":
            assert claims.at["abstract/classification/accuracy", "measured_value"] == pytest.approx(got, abs=1e-6)


@pytest.mark.slow
def test_notebook_smoke_run(tmp_path: Path, brainlib_kernel: str) -> None:
    pm = pytest.importorskip("papermill")
    out = tmp_path / "pandiyaraju2024"
    t0 = time.perf_counter()
    pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "executed.ipynb"), kernel_name=brainlib_kernel,
                        parameters={"profile": "smoke", "out_dir": str(out)}, progress_bar=False)
    seconds = time.perf_counter() - t0
    tables = {p.stem for p in (out / "tables").glob("*.csv")}
    assert {"data", "table_segmentation", "table_classification", "training", "table_leakage",
            "table_leakage_summary", "table_leakage_metrics", "claims", "settings",
            "instrument_checks"} <= tables
    figs = {p.name for p in (out / "figures").iterdir()}
    for stem in ("fig_examples", "fig_confusion", "fig_roc"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= figs
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data_source"]["kind"] == "phantom"
    assert any("random initialisation" in d for d in manifest["deviations"])
    assert any(d.startswith("encoder:") for d in manifest["deviations"])
    _recompute(out)
    claims = pd.read_csv(out / "tables" / "claims.csv")
    graded = claims[claims["kind"].isin(EVIDENCE_KINDS) & claims["status"].isin(GRADED)]
    assert graded.empty, graded
    assert (claims["status"] == "phantom run").sum() >= 5
    checks = pd.read_csv(out / "tables" / "instrument_checks.csv")
    assert len(checks) == 2 and set(checks.status) == {"not enforced"}
    settings = pd.read_csv(out / "tables" / "settings.csv").set_index("setting")
    assert settings.at["encoder", "status"] == "changed"
    assert settings.at["seg_loss", "status"] == "not in paper"
    print(f"smoke notebook: {seconds:.1f} s")
    assert seconds < 120  # budget 60 s on an idle 2-core CPU; slack for a shared one
