"""Experiment session: captions from data source + deviations, claims compared by kind."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from brainlib.claims import load_paper  # noqa: E402
from brainlib.experiment import Settings, open_experiment, ours, paper  # noqa: E402
from brainlib.report import DataSource  # noqa: E402

EVIDENCE = {"consistent", "differs", "supported", "contradicted"}


@dataclass(frozen=True)
class Toy(Settings):
    epochs: int = paper(20, "Sec. 3.3")
    image_size: int = ours(512, "native size")
    PROFILES: ClassVar = {"smoke": {"epochs": 1, "image_size": 32}}


def _open(tmp_path, source: DataSource):
    return open_experiment("he2024", Toy.for_profile("smoke"), params={"profile": "smoke"},
                           out_dir=tmp_path / "he2024", device="cpu", seed=0, source=source,
                           captions={"table9": "Table 9: toy"})


def test_tables_and_figures_are_saved_with_composed_captions(tmp_path):
    exp = _open(tmp_path, DataSource("phantom", "rsna"))
    df = exp.table("table9", pd.DataFrame({"a": [1, 2]}))
    assert list(df["a"]) == [1, 2]
    md = (exp.out_dir / "tables" / "table9.md").read_text()
    assert "Table 9: toy" in md and "synthetic phantoms" in md and "epochs: 1 (paper: 20" in md
    fig, _ = plt.subplots()
    assert exp.figure("fig1", fig) is fig
    assert (exp.out_dir / "figures" / "fig1.png").exists()
    plt.close(fig)
    exp.deviate("backbone: random initialisation")
    assert exp.deviations[-1] == "backbone: random initialisation"
    exp.read("split", "by study", "the paper samples slices")
    assert any(r.startswith("image_size = 32") for r in exp.readings)


def _record_everything(exp) -> None:
    """A measurement for every claim of he2024 at the paper's own value (the best case)."""
    for c in load_paper("he2024").claims:
        value = 0.01 if c.kind == "comparison" else (c.value if c.value is not None else 1.0)
        if c.unit == "percent" and c.kind != "comparison":
            value /= 100.0  # measured proportions are fractions
        exp.claims.add(c.id, value, (value, value), p_value=0.001 if c.kind == "comparison" else None)


def test_phantom_runs_are_never_graded_against_the_paper(tmp_path):
    exp = _open(tmp_path, DataSource("phantom", "rsna"))
    _record_everything(exp)
    manifest = json.loads(exp.finish().read_text())
    table = pd.read_csv(exp.out_dir / "tables" / "claims.csv")
    graded = table[table["kind"].isin(["result", "data", "comparison"])]
    assert len(graded) and not set(graded["status"]) & EVIDENCE
    assert set(graded["status"]) <= {"phantom run", "not reproducible offline", "not run"}
    assert manifest["readings"] and manifest["deviations"]
    assert (exp.out_dir / "tables" / "settings.csv").exists()


def test_real_data_gets_real_statuses(tmp_path):
    exp = _open(tmp_path, DataSource("real", "rsna", str(tmp_path / "data")))  # out may not lie inside it
    _record_everything(exp)
    exp.finish()
    table = pd.read_csv(exp.out_dir / "tables" / "claims.csv")
    assert "consistent" in set(table["status"])
    assert "supported" in set(table["status"])


def test_recording_an_unknown_claim_fails_at_finish(tmp_path):
    exp = _open(tmp_path, DataSource("phantom", "rsna"))
    exp.claims.add("no/such/claim", 1.0)
    with pytest.raises(ValueError, match="unknown claim"):
        exp.finish()


def test_failed_positive_control_fails_the_run_after_writing_everything(tmp_path):
    from brainlib.experiment import InstrumentCheckError

    exp = _open(tmp_path, DataSource("phantom", "rsna"))
    assert exp.check("any AUC", 0.95, 0.90)
    assert not exp.check("mean AUC", 0.70, 0.85)
    assert not exp.check("smoke only", 0.1, 0.85, enforce=False)
    with pytest.raises(InstrumentCheckError, match="mean AUC = 0.700 < floor 0.850"):
        exp.finish()
    checks = pd.read_csv(exp.out_dir / "tables" / "instrument_checks.csv")
    assert list(checks["status"]) == ["pass", "FAIL", "not enforced"]
    assert (exp.out_dir / "manifest.json").exists()


class _Marked:
    def __init__(self, synthetic: bool, root: str) -> None:
        self.synthetic, self.root = synthetic, root


def test_two_datasets_one_phantom_make_a_phantom_run(tmp_path):
    exp = _open(tmp_path, DataSource("phantom", "cq500"))
    exp.use_datasets({"cq500": _Marked(False, "/data/cq500"), "rsna": _Marked(True, "/x")})
    assert exp.synthetic and "CQ500 and RSNA layouts" in exp.data_source.label
    exp.use_datasets({"cq500": _Marked(False, "/data/cq500"), "rsna": _Marked(False, "/d/r")})
    assert not exp.synthetic and exp.data_source.details["synthetic_by_layout"]["rsna"] is False


def test_threads_context_restores_and_units_and_figure_captions(tmp_path):
    import torch

    exp = _open(tmp_path, DataSource("phantom", "rsna"))
    before = torch.get_num_threads()
    with exp.threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    exp.claims.add("table3/full/any/auc", 93.0, unit="percent")
    assert exp.claims.frame().set_index("claim_id").at["table3/full/any/auc", "unit"] == "percent"
    fig, _ = plt.subplots()
    exp.figure("fig1", fig, caption="Fig. 1: toy")
    plt.close(fig)
    assert exp.run.figures["fig1"].startswith("Fig. 1: toy.") and "synthetic" in exp.run.figures["fig1"]


def test_checkpoint_dir_is_stable_per_settings_and_changes_with_them(tmp_path):
    a = _open(tmp_path, DataSource("phantom", "rsna"))
    first = a.checkpoint_dir("he2024_full")
    assert first == a.checkpoint_dir("he2024_full") and first.parent.name == "checkpoints"
    b = open_experiment("he2024", Toy.for_profile("smoke", epochs=2), params={},
                        out_dir=tmp_path / "he2024", device="cpu", seed=0,
                        source=DataSource("phantom", "rsna"))
    assert b.checkpoint_dir("he2024_full") != first
    assert a.checkpoint_dir("he2024_full", fold=1) != first
