"""Provenance and the reviewer report (issue 3, section 6).

A notebook opens a :class:`Run` with :func:`start_run`, saves every regenerated table, figure
and per-case prediction through it, compares its measurements with the paper's claims, and
closes it with :meth:`Run.finish`, which writes ``manifest.json`` (git commit, parameters,
seed, package versions, device, times, data source, deviations, skipped inputs and the
sha256 of every artefact). :func:`write_report` then gathers every paper's folder into
``REPORT.md`` and ``REPORT.html``.

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
import html
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

from brainlib import PAPERS, __version__
from brainlib._atomic import atomic_write
from brainlib.paths import repo_root

PAPER_TITLES: dict[str, str] = {
    "he2024": "He et al. 2024 (Heliyon): window-setting optimisation, multiscale attention, CAM",
    "wang_drct2": "Wang et al.: DrCT1/DrCT2 key-slice sequence model",
    "yin2024": "Yin et al. 2024 (Sci Rep): Mask R-CNN + TCCBAM + deformable ResNet-10",
    "lin2021": "Lin et al. 2021 (Med Phys): Dscint, bone scintigraphy",
    "pandiyaraju2024": "Pandiyaraju et al. 2024 (arXiv 2407.02844): LinkNet-InceptionResNet + attention",
}
LAYOUT_NAMES: dict[str, str] = {
    "rsna": "RSNA", "cq500": "CQ500", "busi": "BUSI", "deeplesion": "DeepLesion",
    "scintigraphy": "bone scintigraphy folder-per-class",
}
CLAIM_STATUSES: tuple[str, ...] = ("consistent", "differs", "inconclusive", "not run",
                                   "not reproducible offline")  # report order
PACKAGES: tuple[str, ...] = ("torch", "torchvision", "numpy", "scipy", "pandas", "pydicom",
                             "scikit-learn", "brainlib")
# Files in a paper folder that the runner, not the Run, owns (hashed by the runner).
_CLAIM_VIEW = ("claim_id", "source", "row", "metric", "paper_value", "reproduced_value", "ci_low",
               "ci_high", "delta", "status", "note")  # claims columns shown in REPORT.md
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
        layout = LAYOUT_NAMES.get(self.layout or "", self.layout)
        if self.is_phantom:
            where = f" ({layout} layout)" if layout else ""
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


def _format_cell(value: Any) -> str:
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


def to_markdown(df: pd.DataFrame, caption: str = "") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency such as tabulate)."""
    frame = _table_frame(df)
    cols = [str(c) for c in frame.columns]

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = []
    if caption:
        lines += [f"*{caption}*", ""]
    lines.append("| " + " | ".join(cell(c) for c in cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(_format_cell(v)) for v in row) + " |")
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
        lines.append(" & ".join(_tex(_format_cell(v)) for v in row) + r" \\")
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
        atomic_write(paths["md"], to_markdown(frame, full))
        atomic_write(paths["tex"], to_latex(frame, full, label=f"tab:{self.paper}:{name}"))
        self.tables[name] = full
        return paths

    def save_figure(self, fig: Any, name: str) -> list[Path]:
        """Write ``figures/<name>.png`` and ``.pdf`` (the figure stays open for display)."""
        from brainlib.plots import save_figure  # one style, atomic PNG + PDF

        _check_name(name)
        stem = self.out_dir / "figures" / name
        save_figure(fig, stem)
        paths = [stem.with_name(f"{name}.{ext}") for ext in ("png", "pdf")]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise RuntimeError(f"figure {name!r} was not written: {missing}")
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
        """Put measured values beside the paper's claims; save ``tables/claims`` and the audit."""
        from brainlib import claims

        required = {"claim_id", "value", "ci_low", "ci_high"}
        missing = required - set(measured.columns)
        if missing:
            raise ValueError(f"{self.paper}: measured claims lack columns {sorted(missing)}")
        table = claims.compare(self.paper, measured, self.data_source.label)
        self.claims = table
        self.save_table(table, "claims", f"{self.paper}: paper's numbers beside the regenerated ones")
        # audit(paper, out_dir) would write <out_dir>/<paper>/tables/audit.csv itself; saving the
        # returned findings here puts them at the same place, in three formats, in the manifest.
        findings = claims.audit(self.paper, out_dir=None)
        self.audit = findings
        self.save_table(findings, "audit", f"{self.paper}: inconsistencies in the paper's own numbers")
        checks = getattr(claims, "audit_checks", None)
        if checks is not None:
            self.save_table(checks(self.paper), "audit_checks",
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
            "skipped": {"count": len(self.skipped), "entries": self.skipped},
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
    shows a stale figure beside fresh ones. Other folders (e.g. checkpoints) are kept.
    """
    run = Run(paper, params, out_dir, data_source, deviations, notes)
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


# --------------------------------------------------------------------------- REPORT.md
def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        return {"status": "unreadable", "error": {"ename": type(exc).__name__, "evalue": f"{path}: {exc}"}}


def _read_csv(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return pd.read_csv(path, keep_default_na=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _has_notebook(key: str, notebooks_dir: Path | None) -> bool | None:
    if notebooks_dir is None or not notebooks_dir.is_dir():
        return None
    return any(p.stem.startswith(key) for p in notebooks_dir.glob("*.ipynb"))


def _fmt_seconds(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _static_audit(paper: str) -> list[str]:
    """Audit section for a paper with no run yet: its own numbers checked against each other."""
    from brainlib.claims import audit, load_claims

    try:
        findings = audit(paper)
        n_claims = len(load_claims(paper))
    except Exception as err:  # a broken claims file must not hide the rest of the report
        return ["### Audit of the paper's arithmetic", "", f"Audit failed: {err}", ""]
    lines = ["### Audit of the paper's arithmetic", "",
             f"{n_claims} claims registered in `brainlib/claims/{paper}.yaml`; "
             f"{len(findings)} inconsistencies in the paper's own numbers "
             f"(`brainlib audit {paper}`).", ""]
    if len(findings):
        cols = [c for c in ("severity", "claims", "stated", "computed", "detail") if c in findings]
        lines.append(to_markdown(findings[cols]))
    return lines


def _status_text(status: dict[str, Any] | None, manifest: dict[str, Any] | None) -> str:
    if status is None:
        return "ok (no runner status)" if manifest else "not run"
    state = status.get("status", "unknown")
    if state == "ok" and status.get("reused_at"):
        return "ok (unchanged since last run, not re-executed)"
    if state == "failed":
        return "**FAILED**"
    if state == "running":
        return "**interrupted** (started, never finished)"
    return str(state)


def _paper_section(key: str, folder: Path, notebooks_dir: Path | None, lines: list[str]) -> dict[str, Any]:
    status = _read_json(folder / "status.json")
    manifest = _read_json(folder / "manifest.json")
    title = PAPER_TITLES.get(key, "exploration notebook")
    lines += [f"## {key} — {title}", ""]
    summary: dict[str, Any] = {"key": key, "status": "not run", "data": "—", "time": "—", "claims": "—"}
    if status is None and manifest is None:
        has = _has_notebook(key, notebooks_dir)
        summary["status"] = "no notebook yet" if has is False else "not run"
        lines += [f"- Status: {summary['status']}", ""]
        if key in PAPER_TITLES:  # the paper's claims are registered: its arithmetic is audited
            lines += _static_audit(key)
        return summary

    summary["status"] = _status_text(status, manifest)
    lines.append(f"- Status: {summary['status']}")
    if status:
        summary["time"] = _fmt_seconds(status.get("seconds"))
        profile = (status.get("parameters") or {}).get("profile")
        lines.append(f"- Run time: {summary['time']} (finished {status.get('finished', '?')}"
                     + (f", profile {profile})" if profile else ")"))
        links = [f"[{name}]({key}/{status[field]})" for name, field in
                 (("executed notebook", "output_notebook"), ("HTML", "html")) if status.get(field)]
        if links:
            lines.append("- Notebook: " + ", ".join(links))
    if manifest:
        src = manifest.get("data_source", {})
        summary["data"] = src.get("label") or src.get("kind", "—")
        git = manifest.get("git", {})
        lines.append(f"- Data: {summary['data']}")
        lines.append(f"- Device: {manifest.get('device')}; seed: {manifest.get('seed')}; "
                     f"commit: {str(git.get('commit'))[:12]}{' (dirty)' if git.get('dirty') else ''}")
    lines.append("")

    error = (status or {}).get("error")
    if error:
        lines += ["### Failure", "",
                  f"`{error.get('ename', 'Error')}: {error.get('evalue', '')}`"
                  + (f" in cell {error['cell_index']}" if error.get("cell_index") is not None else ""), ""]
        if error.get("traceback"):
            lines += ["```", str(error["traceback"]).rstrip(), "```", ""]

    claims = _read_csv(folder / "tables" / "claims.csv")
    if claims is not None and "status" in claims.columns:
        counts = claims["status"].value_counts()
        order = list(CLAIM_STATUSES) + [s for s in counts.index if s not in CLAIM_STATUSES]
        summary["claims"] = ", ".join(f"{counts[s]} {s}" for s in order if s in counts.index) or "none"
        lines += ["### Claims", "", f"Status counts: {summary['claims']} "
                  f"(all columns: [claims.csv]({key}/tables/claims.csv)).", ""]
        shown = [c for c in _CLAIM_VIEW if c in claims.columns] or list(claims.columns)
        lines.append(to_markdown(claims[shown], (manifest or {}).get("tables", {}).get("claims", "")))
    elif key in PAPERS and status and status.get("status") == "ok":
        lines += ["### Claims", "", "No claims table was written by this notebook.", ""]

    tables = sorted(p for p in (folder / "tables").glob("*.md") if p.stem not in ("claims", "audit"))
    if tables:
        lines += ["### Tables", "", ", ".join(f"[{p.stem}]({key}/tables/{p.name})" for p in tables), ""]

    figures = sorted((folder / "figures").glob("*.png"))
    if figures:
        lines += ["### Figures", ""]
        for fig in figures:
            rel = f"{key}/figures/{fig.name}"
            lines.append(f'<a href="{html.escape(rel)}"><img src="{html.escape(rel)}" '
                         f'alt="{html.escape(fig.stem)}" title="{html.escape(fig.stem)}" width="240"></a>')
        lines.append("")

    audit = _read_csv(folder / "tables" / "audit.csv")
    if audit is not None:
        lines += ["### Audit of the paper's arithmetic", ""]
        lines.append(to_markdown(audit) if len(audit) else "No inconsistencies found.\n")

    skipped = _read_csv(folder / "skipped.csv")
    if skipped is not None:
        lines += ["### Skipped inputs", ""]
        if len(skipped):
            lines.append(f"{len(skipped)} input(s) could not be used ([skipped.csv]({key}/skipped.csv)):")
            lines.append("")
            lines.append(to_markdown(skipped.head(20)))
        else:
            lines.append("None.\n")

    for heading, items in (("Deviations from the paper", (manifest or {}).get("deviations")),
                           ("Notes", (manifest or {}).get("notes"))):
        if items:
            lines += [f"### {heading}", ""] + [f"- {item}" for item in items] + [""]
    return summary


def _markdown_to_html(text: str, title: str) -> str:
    try:
        import mistune  # ships with nbconvert (notebooks extra)

        body = mistune.create_markdown(escape=False, plugins=["table"])(text)
    except Exception:  # no mistune, or an API it does not have: show the Markdown itself
        body = f"<pre>{html.escape(text)}</pre>"
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;font-size:90%;display:block;overflow-x:auto}td,th{border:1px solid #ccc;padding:2px 6px}"
             "pre{background:#f6f6f6;padding:8px;overflow-x:auto}img{margin:4px;border:1px solid #ddd}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n{body}\n</body></html>\n")


def write_report(out_dir: str | os.PathLike[str], notebooks_dir: str | os.PathLike[str] | None = None) -> Path:
    """Gather every ``<out>/<key>/`` into ``REPORT.md`` and ``REPORT.html``; return the .md path.

    Papers come first in brainlib.PAPERS order (those without a notebook are listed as such),
    then any other notebook folders (explorations).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nb_dir = Path(notebooks_dir) if notebooks_dir is not None else repo_root() / "notebooks"
    others = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name not in PAPERS
                    and ((p / "status.json").exists() or (p / "manifest.json").exists()))
    body: list[str] = []
    summaries = [_paper_section(key, out / key, nb_dir, body) for key in (*PAPERS, *others)]
    failed = [s["key"] for s in summaries if "FAILED" in s["status"] or "interrupted" in s["status"]]

    head = ["# brainlib reproduction report", "",
            f"Generated {_now()}; brainlib {__version__}; commit {git_state().get('commit') or 'unknown'}.", "",
            "> Results computed on the embedded **synthetic phantoms** are runs of each paper's full method "
            "on synthetic data written in the datasets' published layouts. They are **not** the papers' "
            "datasets, and their numbers are not expected to equal the papers'. Each table states the "
            "data it was computed on; runs with `--data-root` on the real datasets are marked as such.", ""]
    if failed:
        head += [f"**{len(failed)} notebook(s) failed: {', '.join(failed)}** (details in their sections).", ""]
    summary = pd.DataFrame([{"paper": s["key"], "status": s["status"].replace("**", ""), "data": s["data"],
                             "run time": s["time"], "claims": s["claims"]} for s in summaries])
    head += ["## Summary", "", to_markdown(summary)]
    text = "\n".join(head + body).rstrip() + "\n"
    md_path = atomic_write(out / "REPORT.md", text)
    atomic_write(out / "REPORT.html", _markdown_to_html(text, "brainlib reproduction report"))
    return md_path
