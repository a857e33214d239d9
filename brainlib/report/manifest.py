"""Provenance of one notebook run: the :class:`Run`, its artefacts and ``manifest.json``.

A notebook opens a :class:`Run` with :func:`start_run`, saves every regenerated table, figure
and per-case prediction through it, compares its measurements with the paper's claims, and
closes it with :meth:`Run.finish`, which writes ``manifest.json`` (git commit, parameters,
seed, package versions, device, times, data source, deviations, readings, skipped inputs, the
sha256 of every artefact and of every local weights file loaded). ``brainlib.report.write_report`` then gathers every paper's
folder into ``REPORT.md`` and ``REPORT.html``.

Layout of ``<out>/<paper>/`` (paper numbering in the names, e.g. ``table3``, ``fig6_roc``)::

    tables/<name>.csv|.md|.tex   figures/<name>.png|.pdf   predictions/<name>.csv
    skipped.csv   manifest.json   status.json (runner)   <notebook>.ipynb|.html (runner)

Captions always state the data a table was computed on: results on the embedded phantoms are
a run of the method on synthetic data, never the paper's dataset. The data source and the other
provenance live in :mod:`brainlib.report.provenance`, the table text (CSV with formula-starting
text neutralised, Markdown, LaTeX) in :mod:`brainlib.report.tables`; both are re-exported here.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from brainlib import claims
from brainlib._atomic import atomic_write, sweep_temp
from brainlib.report.provenance import (LAYOUT_NAMES, PACKAGES, DataSource, _jsonable, _now,
                                        _resolve_device, artifact_hashes, as_data_source,
                                        data_source, git_state, loaded_weights_files,
                                        package_versions, sha256_file)
from brainlib.report.tables import format_cell, table_frame, to_csv_text, to_latex, to_markdown

__all__ = ["LAYOUT_NAMES", "PACKAGES", "DataSource", "Run", "artifact_hashes", "as_data_source",
           "clear_artifacts", "data_source", "format_cell", "git_state", "loaded_weights_files",
           "package_versions", "sha256_file", "start_run", "to_latex", "to_markdown",
           "validate_predictions"]

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]*")


def _check_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name) or name.endswith((".csv", ".md", ".tex", ".png", ".pdf")):
        raise ValueError(f"artefact name {name!r} must be a plain file stem such as 'table3' "
                         "or 'fig6_roc' (no folder, no extension)")
    return name


def _skipped_rows(skipped: Iterable[Any]) -> list[dict[str, str]]:
    rows = []
    for item in skipped:
        if isinstance(item, Mapping):
            data = dict(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            data = dataclasses.asdict(item)
        else:
            raise TypeError(f"skipped entries must be brainlib.io.Skipped or dicts, got {type(item).__name__}")
        missing = {"path", "reason"} - set(data)
        if missing:
            raise ValueError(f"skipped entry {data!r} lacks {sorted(missing)}")
        rows.append({"path": str(data["path"]), "error": str(data.get("error", "") or ""),
                     "reason": str(data["reason"])})
    return rows


# --------------------------------------------------------------------------- the Run
class Run:
    """One notebook's outputs under ``out_dir`` with their provenance. Create with start_run."""

    def __init__(self, paper: str, params: Mapping[str, Any], out_dir: str | os.PathLike[str],
                 data_source: DataSource | Mapping[str, Any] | str | None,
                 deviations: Sequence[str] = (), notes: Sequence[str] = ()) -> None:
        self.paper = paper
        self.params = dict(params)
        self.out_dir = Path(out_dir).resolve()
        self.data_source = as_data_source(data_source)
        self.deviations = [str(d) for d in deviations]
        self.notes = [str(n) for n in notes]
        self.readings: list[str] = []  # choices the paper leaves open (brainlib.experiment)
        self.device = _resolve_device(self.params.get("device"))
        self.started = _now()
        self.ended: str | None = None
        self.skipped: list[dict[str, str]] = []
        self.tables: dict[str, str] = {}  # name -> caption
        self.figures: dict[str, str] = {}  # name -> caption
        self.claims: pd.DataFrame | None = None
        self.audit: pd.DataFrame | None = None

    @property
    def seed(self) -> Any:
        return self.params.get("seed")

    def add_deviation(self, text: str) -> None:
        """A setting that differs from the paper's (stated in every later caption)."""
        self.deviations.append(str(text))

    def add_note(self, text: str) -> None:
        self.notes.append(str(text))

    def caption(self, caption: str = "") -> str:
        """The full caption: the given text, the data source, and any deviations."""
        parts = [caption.strip().rstrip(".") + "." if caption.strip() else ""]
        parts.append(f"Data: {self.data_source.label}.")
        if self.deviations:
            parts.append("Deviations from the paper: " + "; ".join(self.deviations) + ".")
        return " ".join(p for p in parts if p)

    def save_table(self, df: pd.DataFrame, name: str, caption: str = "") -> dict[str, Path]:
        """Write ``tables/<name>.csv``, ``.md`` and ``.tex``; captions state the data used."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"save_table({name!r}) needs a pandas DataFrame, got {type(df).__name__}")
        _check_name(name)
        full = self.caption(caption)
        folder = self.out_dir / "tables"
        frame = table_frame(df)
        paths = {ext: folder / f"{name}.{ext}" for ext in ("csv", "md", "tex")}
        atomic_write(paths["csv"], to_csv_text(frame))  # formula-starting text neutralised
        atomic_write(paths["md"], to_markdown(frame, full, escape_html=True))  # cells may hold DICOM text
        atomic_write(paths["tex"], to_latex(frame, full, label=f"tab:{self.paper}:{name}"))
        self.tables[name] = full
        return paths

    def save_figure(self, fig: Any, name: str, caption: str = "") -> list[Path]:
        """Write ``figures/<name>.png`` and ``.pdf`` (the figure stays open for display); the
        caption (with the data source and deviations) goes to the manifest's ``figures``."""
        from brainlib.plots import save_figure  # one style, atomic PNG + PDF

        _check_name(name)
        stem = self.out_dir / "figures" / name
        save_figure(fig, stem)
        paths = [stem.with_name(f"{name}.{ext}") for ext in ("png", "pdf")]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise RuntimeError(f"figure {name!r} was not written: {missing}")
        self.figures[name] = self.caption(caption)
        return paths

    def save_predictions(self, df: pd.DataFrame, name: str) -> Path:
        """Per-case scores so anyone can recompute a metric: ``case_id, label_<c>, score_<c>``."""
        _check_name(name)
        validate_predictions(df, name)
        return atomic_write(self.out_dir / "predictions" / f"{name}.csv", to_csv_text(df))

    def add_skipped(self, skipped: Iterable[Any]) -> Path:
        """Record inputs a loader could not use (brainlib.io.Skipped or dicts) in skipped.csv."""
        self.skipped.extend(_skipped_rows(skipped))
        return self._write_skipped()

    def _write_skipped(self) -> Path:
        frame = pd.DataFrame(self.skipped, columns=["path", "error", "reason"])
        return atomic_write(self.out_dir / "skipped.csv", to_csv_text(frame))

    def compare_claims(self, measured: pd.DataFrame) -> pd.DataFrame:
        """Put measured values beside the paper's claims; save ``tables/claims`` and the audit.

        The status of each claim depends on its kind and on the data: measurements on the
        phantoms are ``phantom run``, never ``consistent``/``differs`` (brainlib.claims.compare).
        """
        required = {"claim_id", "value", "ci_low", "ci_high"}
        missing = required - set(measured.columns)
        if missing:
            raise ValueError(f"{self.paper}: measured claims lack columns {sorted(missing)}")
        table = claims.compare(self.paper, measured, self.data_source.label,
                               synthetic=self.data_source.is_phantom, profile=self.params.get("profile"))
        self.claims = table
        self.save_table(table, "claims", f"{self.paper}: paper's numbers beside the regenerated ones")
        # audit(paper, out_dir) would write <out_dir>/<paper>/tables/audit.csv itself; saving the
        # returned findings here puts them at the same place, in three formats, in the manifest.
        findings = claims.audit(self.paper, out_dir=None)
        self.audit = findings
        self.save_table(findings, "audit", f"{self.paper}: inconsistencies in the paper's own numbers")
        self.save_table(claims.audit_checks(self.paper), "audit_checks",
                        f"{self.paper}: every arithmetic check of the paper's numbers")
        return table

    def finish(self) -> Path:
        """Write skipped.csv and manifest.json (with the sha256 of every artefact)."""
        self._write_skipped()
        self.ended = _now()
        manifest = {
            "paper": self.paper,
            "git": git_state(),
            "parameters": _jsonable(self.params),
            "seed": _jsonable(self.seed),
            "device": self.device,
            "packages": package_versions(),
            "started": self.started,
            "ended": self.ended,
            "data_source": self.data_source.to_dict(),
            "deviations": self.deviations,
            "readings": self.readings,
            "notes": self.notes,
            "tables": self.tables,
            "figures": self.figures,
            "skipped": {"count": len(self.skipped), "entries": self.skipped},
            "weights_files": loaded_weights_files(),
            "artifacts": artifact_hashes(self.out_dir),
        }
        return atomic_write(self.out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def validate_predictions(df: pd.DataFrame, name: str = "predictions") -> None:
    """Raise ValueError unless `df` has case_id and matching label_<c>/score_<c> pairs."""
    cols = set(map(str, df.columns))
    problems = []
    if "case_id" not in cols:
        problems.append("no 'case_id' column")
    elif df["case_id"].isna().any():
        problems.append("'case_id' has missing values")
    labels = {c[len("label_"):] for c in cols if c.startswith("label_")}
    scores = {c[len("score_"):] for c in cols if c.startswith("score_")}
    if not labels:
        problems.append("no 'label_<class>' column")
    if labels - scores:
        problems.append(f"no score column for {sorted(labels - scores)}")
    if scores - labels:
        problems.append(f"no label column for {sorted(scores - labels)}")
    if problems:
        raise ValueError(f"predictions {name!r}: " + "; ".join(problems))


def start_run(paper: str, params: Mapping[str, Any], out_dir: str | os.PathLike[str],
              data_source: DataSource | Mapping[str, Any] | str | None,
              deviations: Sequence[str] = (), notes: Sequence[str] = ()) -> Run:
    """Open a run writing into `out_dir` (normally ``<out>/<paper>``).

    Artefacts of an earlier run in the same folder (``tables/``, ``figures/``,
    ``predictions/``, ``skipped.csv``, ``manifest.json``) are removed first, so the report never
    shows a stale figure beside fresh ones. Other folders (e.g. checkpoints) are kept; temporary
    files a killed writer left anywhere below are removed (a notebook run by hand in Jupyter
    gets the same clean-up as one started by the runner). An output folder that is, or lies
    inside, a real data root is refused (:class:`brainlib.run_guard.OutputLocationError`)
    before anything is removed.
    """
    from brainlib.run_guard import check_out_dir

    run = Run(paper, params, out_dir, data_source, deviations, notes)
    if not run.data_source.is_phantom:
        check_out_dir(run.out_dir, run.data_source.root)
    sweep_temp(run.out_dir)
    clear_artifacts(run.out_dir)
    run.out_dir.mkdir(parents=True, exist_ok=True)
    return run


def clear_artifacts(out_dir: str | os.PathLike[str]) -> None:
    """Remove a previous run's tables, figures, predictions, skipped.csv and manifest.json."""
    out = Path(out_dir)
    for sub in ("tables", "figures", "predictions"):
        folder = out / sub
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file():
                    path.unlink()
    for name in ("skipped.csv", "manifest.json"):
        (out / name).unlink(missing_ok=True)

