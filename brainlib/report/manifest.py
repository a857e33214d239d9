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
a run of the method on synthetic data, never the paper's dataset.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from brainlib import __version__, claims
from brainlib._atomic import atomic_write, sweep_temp
from brainlib.paths import repo_root

LAYOUT_NAMES: dict[str, str] = {
    "rsna": "RSNA", "cq500": "CQ500", "busi": "BUSI", "deeplesion": "DeepLesion",
    "scintigraphy": "bone scintigraphy folder-per-class",
}
PACKAGES: tuple[str, ...] = ("torch", "torchvision", "numpy", "scipy", "pandas", "pydicom",
                             "scikit-learn", "brainlib")
# Files in a paper folder that the runner, not the Run, owns (hashed by the runner).
_RUNNER_FILES = ("manifest.json", "status.json")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]*")


# --------------------------------------------------------------------------- data source
@dataclass(frozen=True)
class DataSource:
    """Where a run's data came from: the embedded phantoms or a real dataset root."""

    kind: str  # "phantom" or "real"
    layout: str | None = None  # "rsna", "cq500", "busi", ...
    root: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("phantom", "real"):
            raise ValueError(f"data source kind must be 'phantom' or 'real', got {self.kind!r}")
        if self.kind == "real" and not self.root:
            raise ValueError("a real data source needs its root folder")

    @property
    def is_phantom(self) -> bool:
        return self.kind == "phantom"

    @property
    def label(self) -> str:
        """One phrase for captions, e.g. "synthetic phantoms (RSNA layout) — not the paper's dataset"."""
        parts = [LAYOUT_NAMES.get(p, p) for p in (self.layout or "").split("+") if p]
        layout = " and ".join(parts)
        if self.is_phantom:
            where = f" ({layout} layout{'s' if len(parts) > 1 else ''})" if layout else ""
            return f"synthetic phantoms{where} — not the paper's dataset"
        what = f"{layout} " if layout else ""
        return f"real {what}data at {self.root}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layout": self.layout, "root": self.root,
                "details": _jsonable(dict(self.details)), "label": self.label}


def data_source(data_root: str | os.PathLike[str] | None, layout: str | None = None,
                **details: Any) -> DataSource:
    """Phantoms when `data_root` is empty/None (the default), else the real dataset at it."""
    if data_root in (None, ""):
        return DataSource("phantom", layout, None, details)
    return DataSource("real", layout, str(Path(data_root).resolve()), details)


def as_data_source(value: DataSource | Mapping[str, Any] | str | os.PathLike[str] | None) -> DataSource:
    """Accept a DataSource, a dict of its fields, "phantom[:layout]", a real root, or None."""
    if isinstance(value, DataSource):
        return value
    if value is None:
        return DataSource("phantom")
    if isinstance(value, Mapping):
        fields = {k: value[k] for k in ("kind", "layout", "root", "details") if k in value}
        return DataSource(**fields)
    text = str(value)
    if text == "phantom" or text.startswith("phantom:"):
        return DataSource("phantom", text.partition(":")[2] or None)
    return data_source(text)


# --------------------------------------------------------------------------- formatting
def _jsonable(value: Any) -> Any:
    """Parameters and details as plain JSON (Paths, numpy scalars, tuples...)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return _jsonable(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


def format_cell(value: Any) -> str:
    """One value as table text: integers without ".0", 4 decimals, NaN/None as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 1e12:
            return str(int(value))
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def _table_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Keep a meaningful index as columns; drop a default 0..n-1 one."""
    if isinstance(df.index, pd.RangeIndex) and df.index.name is None:
        return df
    return df.reset_index()


def to_markdown(df: pd.DataFrame, caption: str = "", *, escape_html: bool = False) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency such as tabulate).

    With `escape_html`, ``&``, ``<`` and ``>`` in the caption and cells are written as entities,
    so text from data or DICOM headers cannot turn into markup where the Markdown is rendered.
    """
    frame = _table_frame(df)
    cols = [str(c) for c in frame.columns]

    def cell(text: str) -> str:
        if escape_html:
            text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")

    lines = []
    if caption:
        lines += [f"*{cell(caption)}*", ""]
    lines.append("| " + " | ".join(cell(c) for c in cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(format_cell(v)) for v in row) + " |")
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A booktabs LaTeX table (written by hand: pandas' to_latex needs jinja2)."""
    frame = _table_frame(df)
    align = "".join("r" if pd.api.types.is_numeric_dtype(frame[c]) else "l" for c in frame.columns)
    lines = [r"\begin{table}[ht]", r"\centering"]
    if caption:
        lines.append(r"\caption{" + _tex(caption) + "}")
    if label:
        lines.append(r"\label{" + _tex(label) + "}")
    lines += [r"\begin{tabular}{" + align + "}", r"\toprule",
              " & ".join(_tex(str(c)) for c in frame.columns) + r" \\", r"\midrule"]
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(_tex(format_cell(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _check_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name) or name.endswith((".csv", ".md", ".tex", ".png", ".pdf")):
        raise ValueError(f"artefact name {name!r} must be a plain file stem such as 'table3' "
                         "or 'fig6_roc' (no folder, no extension)")
    return name


def git_state(root: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the checkout brainlib runs from (None outside git)."""
    root = root or repo_root()
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True, timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], check=True, capture_output=True,
                               text=True, timeout=20).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = __version__ if name == "brainlib" else None
    return versions


def _resolve_device(requested: Any) -> str | None:
    """Record the device actually used; only asks torch if the notebook imported it."""
    if requested in (None, "", "auto"):
        torch = sys.modules.get("torch")
        if torch is None:
            return None if requested in (None, "") else "auto"
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(requested)


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
        frame = _table_frame(df)
        paths = {ext: folder / f"{name}.{ext}" for ext in ("csv", "md", "tex")}
        atomic_write(paths["csv"], frame.to_csv(index=False))
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
        return atomic_write(self.out_dir / "predictions" / f"{name}.csv", df.to_csv(index=False))

    def add_skipped(self, skipped: Iterable[Any]) -> Path:
        """Record inputs a loader could not use (brainlib.io.Skipped or dicts) in skipped.csv."""
        self.skipped.extend(_skipped_rows(skipped))
        return self._write_skipped()

    def _write_skipped(self) -> Path:
        frame = pd.DataFrame(self.skipped, columns=["path", "error", "reason"])
        return atomic_write(self.out_dir / "skipped.csv", frame.to_csv(index=False))

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


def loaded_weights_files() -> list[dict[str, Any]]:
    """Local weights files this process loaded (path, sha256, bytes, what, tensors loaded).

    Read from :mod:`brainlib.models._weights` only if it was imported: a process that never
    imported it loaded no weights file, and the report stays free of a torch import.
    """
    module = sys.modules.get("brainlib.models._weights")
    return module.loaded_weights() if module is not None else []


def artifact_hashes(out_dir: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file the run produced (not the runner's own files)."""
    hashes = {}
    for path in sorted(out_dir.rglob("*")):
        rel = path.relative_to(out_dir)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if len(rel.parts) == 1 and (rel.name in _RUNNER_FILES or rel.suffix in (".ipynb", ".html")):
            continue  # the executed notebook is hashed by the runner once it is complete
        hashes[rel.as_posix()] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return hashes


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

