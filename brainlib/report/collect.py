"""Read an outputs folder into one description of the report, rendered twice (Markdown, HTML).

Everything a reviewer reads is gathered here once: per paper, what was verified offline (the
audit of the paper's own arithmetic, the settings as in the paper or changed), what was run and
on which data, instrument checks, the paper-vs-measured results with their status, the
regenerated tables and figures, and the long tables kept for a collapsible section. The
renderers (:mod:`brainlib.report.markdown`, :mod:`brainlib.report.html`) only lay it out;
every string stays raw here and is escaped by the renderer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from brainlib import PAPERS, claims
from brainlib.report.manifest import format_cell

PAPER_TITLES: dict[str, str] = {
    "he2024": "He et al. 2024 (Heliyon): window-setting optimisation, multiscale attention, CAM",
    "wang_drct2": "Wang et al.: DrCT1/DrCT2 key-slice sequence model",
    "yin2024": "Yin et al. 2024 (Sci Rep): Mask R-CNN + TCCBAM + deformable ResNet-10",
    "lin2021": "Lin et al. 2021 (Med Phys): Dscint, bone scintigraphy",
    "pandiyaraju2024": "Pandiyaraju et al. 2024 (arXiv 2407.02844): LinkNet-InceptionResNet + attention",
}
# The DATA/<sub-folder>s a paper reads with --data-root (README.md, "Real data").
PAPER_DATA: dict[str, tuple[str, ...]] = {
    "he2024": ("rsna",), "wang_drct2": ("rsna", "cq500"), "yin2024": ("cq500", "deeplesion"),
    "lin2021": ("scintigraphy",), "pandiyaraju2024": ("busi",),
}
SETTING_STATUSES: tuple[str, ...] = ("as in paper", "changed")
EVIDENCE_STATUSES: tuple[str, ...] = (
    "consistent", "differs", "inconclusive", "supported", "contradicted",  # real data only
    "phantom run", "quoted, not re-run", "not reproducible offline", "not run")
CLAIM_STATUSES: tuple[str, ...] = SETTING_STATUSES + EVIDENCE_STATUSES  # report order
# Tables that have their own place in the report (not listed among the regenerated ones).
OWN_TABLES: tuple[str, ...] = ("claims", "audit", "audit_checks", "settings", "instrument_checks")
CLAIM_VIEW: tuple[str, ...] = ("status", "claim_id", "kind", "source", "row", "metric", "paper_value",
                               "measured_value", "ci_low", "ci_high", "delta", "p_value", "note")
RESULT_VIEW: tuple[str, ...] = ("status", "claim_id", "metric", "paper_value", "measured_value",
                                "95% CI", "p_value", "note")
AUDIT_VIEW: tuple[str, ...] = ("severity", "gap", "size", "check", "stated", "computed", "detail")
# Audit columns kept for audit.csv only; any other extra column is shown after AUDIT_VIEW.
AUDIT_HIDDEN: tuple[str, ...] = ("kind", "status", "claims", "stated_interval", "computed_interval",
                                 "tolerance", "relative_size", "group", "finding_group", "category", "explained_by",
                                 "explainable", "rule", "group_rule", "rank", "note")
ROUNDING_RULE = ("a finding is explainable when the gap between the stated and computed intervals is at "
                 "most one unit of the paper's last printed digit (rounding), or, for F1, when the "
                 "stated F1 lies in [P + R - 1, 2PR/(P+R)] as a macro average of per-class F1 can "
                 "(brainlib.claims.audit); the columns explained_by and rule give each case")
AUDIT_LEAD = 5  # largest audit findings shown before the collapsible rest
SKIPPED_SHOWN = 20
TABLE_ROWS_INLINE = 40  # regenerated tables longer than this are linked, not inlined in HTML


@dataclass
class Grid:
    """A table ready to lay out: column names and rows of display strings (raw, unescaped)."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""

    @classmethod
    def from_frame(cls, df: pd.DataFrame, columns: Sequence[str] | None = None, caption: str = "") -> "Grid":
        cols = [c for c in (columns or df.columns) if c in df.columns] or list(df.columns)
        rows = [[format_cell(v) for v in row] for row in df[cols].itertuples(index=False)]
        return cls([str(c) for c in cols], rows, caption)

    @property
    def status_index(self) -> int | None:
        return self.columns.index("status") if "status" in self.columns else None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=self.columns)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Link:
    name: str
    href: str
    caption: str = ""
    grid: Grid | None = None  # inlined in HTML when short


@dataclass
class AuditView:
    """Findings of the audit of the paper's own numbers, large ones first."""

    source: str  # "run" (tables/audit.csv) or "registry" (audited now, no run yet)
    large: Grid | None
    rounding: Grid | None  # findings rounding or macro-averaging could explain
    n_total: int
    n_errors: int
    n_claims: int | None = None
    n_checks: int | None = None
    rule: str = ""
    error: str = ""
    href: str = ""

    @property
    def lead(self) -> Grid | None:
        if self.large is None:
            return None
        return Grid(self.large.columns, self.large.rows[:AUDIT_LEAD], self.large.caption)

    @property
    def rest(self) -> Grid | None:
        if self.large is None or len(self.large) <= AUDIT_LEAD:
            return None
        return Grid(self.large.columns, self.large.rows[AUDIT_LEAD:])


@dataclass
class SettingsView:
    counts: dict[str, int]
    changed: list[str]  # "name: value (paper: x)"
    grid: Grid
    href: str

    @property
    def sentence(self) -> str:
        parts = [f"{self.counts.get('as in paper', 0)} settings as in paper",
                 f"{self.counts.get('changed', 0)} changed"
                 + (f" ({'; '.join(self.changed)})" if self.changed else ""),
                 f"{self.counts.get('not in paper', 0)} not in paper"]
        if self.counts.get("runtime"):
            parts.append(f"{self.counts['runtime']} runtime")
        others = [f"{n} {s}" for s, n in self.counts.items()
                  if s not in ("as in paper", "changed", "not in paper", "runtime")]
        return ", ".join(parts + others)


@dataclass
class InstrumentView:
    grid: Grid
    passed: int
    failed: int
    other: int = 0  # e.g. "not enforced" in smoke runs

    @property
    def counts_text(self) -> str:
        return f"{self.passed} passed, {self.failed} failed" + (
            f", {self.other} not enforced" if self.other else "")

    @property
    def ok(self) -> bool:
        return self.failed == 0


@dataclass
class ClaimCounts:
    settings: dict[str, int]
    evidence: dict[str, int]

    @staticmethod
    def _text(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} {s}" for s, n in counts.items()) or "none"

    @property
    def settings_text(self) -> str:
        return self._text(self.settings)

    @property
    def evidence_text(self) -> str:
        return self._text(self.evidence)

    @property
    def phantom(self) -> int:
        return self.evidence.get("phantom run", 0)

    @property
    def short(self) -> str:
        return f"settings: {self.settings_text}; evidence: {self.evidence_text}"


@dataclass
class PaperSection:
    key: str
    title: str
    status: str
    has_run: bool = False
    failed: bool = False
    facts: list[tuple[str, str]] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    kind: str | None = None  # "phantom" or "real" (data source)
    data: str = "—"
    time: str = "—"
    real_command: str = ""
    real_data_note: str = ""
    error: dict[str, Any] | None = None
    audit: AuditView | None = None
    settings: SettingsView | None = None
    readings: list[str] = field(default_factory=list)
    deviations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    instrument: InstrumentView | None = None
    counts: ClaimCounts | None = None
    results: Grid | None = None
    claims: Grid | None = None
    claims_href: str = ""
    no_claims: bool = False
    tables: list[Link] = field(default_factory=list)
    figures: list[Link] = field(default_factory=list)
    skipped: Grid | None = None
    skipped_count: int | None = None
    skipped_href: str = ""

    @property
    def is_phantom(self) -> bool:
        return self.kind == "phantom"


@dataclass
class ReportData:
    generated: str
    version: str
    commit: str
    sections: list[PaperSection]

    @property
    def failed(self) -> list[str]:
        return [s.key for s in self.sections if s.failed]

    def summary(self) -> Grid:
        rows = []
        for s in self.sections:
            audit = "—"
            if s.audit is not None and not s.audit.error:
                audit = f"{s.audit.n_total} finding{'' if s.audit.n_total == 1 else 's'}"
                if s.audit.rounding is not None and len(s.audit.rounding):
                    audit += f" ({len(s.audit.rounding)} explainable by rounding)"
            rows.append([s.key, s.status, s.data, s.time,
                         s.counts.settings_text if s.counts else "—",
                         s.counts.evidence_text if s.counts else "—",
                         audit])
        return Grid(["paper", "status", "data", "run time", "settings", "evidence", "audit"], rows)


# --------------------------------------------------------------------------- reading files
def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        return {"status": "unreadable", "error": {"ename": type(exc).__name__, "evalue": f"{path}: {exc}"}}


def read_csv(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return pd.read_csv(path, keep_default_na=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def fmt_seconds(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _has_notebook(key: str, notebooks_dir: Path | None) -> bool | None:
    if notebooks_dir is None or not notebooks_dir.is_dir():
        return None
    return any(p.stem.startswith(key) for p in notebooks_dir.glob("*.ipynb"))


def _status_text(status: dict[str, Any] | None, manifest: dict[str, Any] | None) -> str:
    if status is None:
        return "ok (no runner status)" if manifest else "not run"
    state = status.get("status", "unknown")
    if state == "ok" and status.get("reused_at"):
        return "ok (unchanged since last run, not re-executed)"
    if state == "failed":
        return "FAILED"
    if state == "running":
        return "interrupted (started, never finished)"
    return str(state)


def real_data_command(key: str) -> tuple[str, str]:
    """The command that tests `key` on the real data, and what DATA must hold."""
    command = f"./reproduce.sh --only {key} --profile full --device cuda --data-root /path/to/DATA"
    subs = PAPER_DATA.get(key, ())
    if key == "lin2021":
        note = ("The paper's bone scans are private: DATA must hold a folder per class "
                "(normal, metastasis, arthritis, thyroid carcinoma) of DICOM NM scans.")
    elif subs:
        note = ("DATA holds " + " and ".join(f"{s}/" for s in subs)
                + (" sub-folders, each" if len(subs) > 1 else " sub-folder,")
                + " the dataset exactly as distributed (README.md, \"Real data\").")
    else:
        note = "DATA holds the dataset as distributed (README.md, \"Real data\")."
    return command, note


# --------------------------------------------------------------------------- audit
def _rounding_mask(findings: pd.DataFrame) -> pd.Series:
    """Rows in the audit's "explainable by rounding" group, whatever the column is called."""
    mask = pd.Series(False, index=findings.index)
    for col in ("group", "finding_group", "category", "explained_by", "explainable"):
        if col not in findings.columns:
            continue
        values = findings[col]
        if values.dtype == bool:
            mask |= values
        else:
            mask |= values.astype(str).str.contains("round|macro", case=False, regex=True) & values.notna()
    return mask


def audit_view(findings: pd.DataFrame, source: str, href: str = "", n_claims: int | None = None,
               n_checks: int | None = None) -> AuditView:
    """Split findings (already ranked by size by brainlib.claims.audit) into large and rounding."""
    if findings is None or findings.empty:
        return AuditView(source, None, None, 0, 0, n_claims, n_checks, href=href)
    rounding = _rounding_mask(findings)
    rule = ""
    if rounding.any():
        rule = (ROUNDING_RULE if "explained_by" in findings.columns
                else next((str(findings.loc[rounding, c].dropna().iloc[0]) for c in ("group_rule",)
                           if c in findings.columns and findings.loc[rounding, c].notna().any()), ""))
    view = [c for c in AUDIT_VIEW if c in findings.columns]
    view += [c for c in findings.columns if c not in AUDIT_VIEW and c not in AUDIT_HIDDEN]
    why = [c for c in ("explained_by", "rule") if c in findings.columns]
    large = findings[~rounding]
    small = findings[rounding]
    n_errors = int((findings["severity"] == "error").sum()) if "severity" in findings else len(findings)
    return AuditView(source, Grid.from_frame(large, view) if len(large) else None,
                     Grid.from_frame(small, why + view) if len(small) else None,
                     len(findings), n_errors, n_claims, n_checks, rule, href=href)


def _registry_audit(key: str) -> AuditView:
    """A paper with no run yet: its own registered numbers checked against each other now."""
    try:
        findings = claims.audit(key)
        n_claims = len(claims.load_claims(key))
    except Exception as err:  # a broken claims file must not hide the rest of the report
        return AuditView("registry", None, None, 0, 0, error=f"Audit failed: {err}")
    return audit_view(findings, "registry", n_claims=n_claims)


# --------------------------------------------------------------------------- claims
def normalise_claims(frame: pd.DataFrame) -> pd.DataFrame:
    """Old claims.csv files call the measured value ``reproduced_value``."""
    if "reproduced_value" in frame.columns and "measured_value" not in frame.columns:
        frame = frame.rename(columns={"reproduced_value": "measured_value"})
    return frame


def _is_setting(frame: pd.DataFrame) -> pd.Series:
    status = frame["status"].astype(str)
    if "kind" in frame.columns:
        return (frame["kind"].astype(str) == "setting") | status.isin(SETTING_STATUSES)
    return status.isin(SETTING_STATUSES)


def _ordered_counts(statuses: pd.Series) -> dict[str, int]:
    counts = statuses.astype(str).value_counts()
    order = [s for s in CLAIM_STATUSES if s in counts.index]
    order += sorted(s for s in counts.index if s not in CLAIM_STATUSES)
    return {s: int(counts[s]) for s in order}


def claim_counts(frame: pd.DataFrame) -> ClaimCounts:
    setting = _is_setting(frame)
    return ClaimCounts(_ordered_counts(frame.loc[setting, "status"]),
                       _ordered_counts(frame.loc[~setting, "status"]))


def _ci_text(row: pd.Series) -> str:
    lo, hi = format_cell(row.get("ci_low")), format_cell(row.get("ci_high"))
    return f"[{lo}, {hi}]" if lo and hi else ""


def results_grid(frame: pd.DataFrame) -> Grid | None:
    """Paper vs measured for every non-setting claim that has a measurement."""
    measured = frame[~_is_setting(frame)]
    if "measured_value" in measured.columns:
        measured = measured[measured["measured_value"].notna() | measured["status"].isin(
            ("supported", "contradicted", "consistent", "differs", "inconclusive"))]
    else:
        measured = measured[~measured["status"].isin(("not run",))]
    if measured.empty:
        return None
    measured = measured.assign(**{"95% CI": measured.apply(_ci_text, axis=1)})
    return Grid.from_frame(measured, RESULT_VIEW)


# --------------------------------------------------------------------------- one paper
def _run_facts(section: PaperSection, key: str, status: dict[str, Any] | None,
               manifest: dict[str, Any] | None) -> None:
    facts = section.facts
    facts.append(("Status", section.status))
    params = {**((manifest or {}).get("parameters") or {}), **((status or {}).get("parameters") or {})}
    if params.get("profile"):
        facts.append(("Profile", str(params["profile"])))
    if status:
        section.time = fmt_seconds(status.get("seconds"))
        facts.append(("Run time", f"{section.time} (finished {status.get('finished', '?')})"))
        for name, fld in (("executed notebook", "output_notebook"), ("HTML", "html")):
            if status.get(fld):
                section.links.append(Link(name, f"{key}/{status[fld]}"))
    if manifest:
        src = manifest.get("data_source") or {}
        section.kind = src.get("kind")
        section.data = src.get("label") or src.get("kind") or "—"
        facts.append(("Data", section.data))
        git = manifest.get("git") or {}
        facts.append(("Device", str(manifest.get("device"))))
        facts.append(("Seed", str(manifest.get("seed"))))
        facts.append(("Commit", f"{str(git.get('commit'))[:12]}{' (dirty)' if git.get('dirty') else ''}"))
        section.readings = [str(r) for r in manifest.get("readings") or []]
        section.deviations = [str(d) for d in manifest.get("deviations") or []]
        section.notes = [str(n) for n in manifest.get("notes") or []]


def _settings_view(frame: pd.DataFrame | None, key: str) -> SettingsView | None:
    if frame is None or frame.empty or "status" not in frame.columns:
        return None
    counts = _ordered_counts(frame["status"])
    changed = []
    for row in frame[frame["status"] == "changed"].itertuples(index=False):
        data = row._asdict()
        text = f"{data.get('setting', '?')}: {format_cell(data.get('value'))}"
        if "paper" in data and format_cell(data.get("paper")):
            text += f" (paper: {format_cell(data.get('paper'))})"
        changed.append(text)
    view = ["status", "setting", "value", "paper", "source or reason"]
    return SettingsView(counts, changed, Grid.from_frame(frame, view), f"{key}/tables/settings.csv")


def _instrument_view(frame: pd.DataFrame | None) -> InstrumentView | None:
    """tables/instrument_checks.csv: check, value, floor, passed (+ status, what)."""
    if frame is None or frame.empty:
        return None
    if "passed" in frame.columns:
        ok = frame["passed"].astype(str).str.lower().isin(("true", "1", "yes", "pass", "passed"))
    else:
        ok = pd.Series(False, index=frame.index)
    result = ok.map({True: "pass", False: "FAIL"})
    if "status" in frame.columns:  # "not enforced" (smoke runs) is neither pass nor fail
        result = frame["status"].fillna(result).astype(str)
    shown = frame.assign(result=result)
    extra = [c for c in frame.columns if c not in ("check", "value", "floor", "passed", "status")]
    grid = Grid.from_frame(shown, ["result", "check", "value", "floor", *extra])
    failed = result.str.upper().isin(("FAIL", "FAILED", "FALSE"))
    return InstrumentView(grid, int((result == "pass").sum()), int(failed.sum()),
                          int((~failed & (result != "pass")).sum()))


def _tables(folder: Path, key: str, captions: dict[str, str]) -> list[Link]:
    links = []
    for md in sorted((folder / "tables").glob("*.md")):
        if md.stem in OWN_TABLES:
            continue
        grid = None
        frame = read_csv(md.with_suffix(".csv"))
        if frame is not None and 0 < len(frame) <= TABLE_ROWS_INLINE:
            grid = Grid.from_frame(frame)
        links.append(Link(md.stem, f"{key}/tables/{md.name}", captions.get(md.stem, ""), grid))
    return links


def paper_section(key: str, folder: Path, notebooks_dir: Path | None) -> PaperSection:
    status = read_json(folder / "status.json")
    manifest = read_json(folder / "manifest.json")
    section = PaperSection(key, PAPER_TITLES.get(key, "exploration notebook"), "not run")
    if status is None and manifest is None:
        has = _has_notebook(key, notebooks_dir)
        section.status = "no notebook yet" if has is False else "not run"
        section.facts.append(("Status", section.status))
        if key in PAPER_TITLES:  # the paper's claims are registered: its arithmetic is audited
            section.audit = _registry_audit(key)
        return section

    section.has_run = True
    section.status = _status_text(status, manifest)
    section.failed = section.status.startswith(("FAILED", "interrupted"))
    _run_facts(section, key, status, manifest)
    section.error = (status or {}).get("error")
    if section.is_phantom and key in PAPERS:
        section.real_command, section.real_data_note = real_data_command(key)

    tables = folder / "tables"
    captions = (manifest or {}).get("tables") or {}
    audit = read_csv(tables / "audit.csv")
    if audit is not None:
        checks = read_csv(tables / "audit_checks.csv")
        section.audit = audit_view(audit, "run", f"{key}/tables/audit.csv",
                                   n_checks=None if checks is None else len(checks))
    elif key in PAPER_TITLES:
        section.audit = _registry_audit(key)
    section.settings = _settings_view(read_csv(tables / "settings.csv"), key)
    section.instrument = _instrument_view(read_csv(tables / "instrument_checks.csv"))

    frame = read_csv(tables / "claims.csv")
    if frame is not None and "status" in frame.columns:
        frame = normalise_claims(frame)
        section.counts = claim_counts(frame)
        section.results = results_grid(frame)
        section.claims = Grid.from_frame(frame, CLAIM_VIEW, captions.get("claims", ""))
        section.claims_href = f"{key}/tables/claims.csv"
    elif key in PAPERS and status and status.get("status") == "ok":
        section.no_claims = True

    section.tables = _tables(folder, key, captions)
    section.figures = [Link(p.stem, f"{key}/figures/{p.name}") for p in sorted((folder / "figures").glob("*.png"))]
    skipped = read_csv(folder / "skipped.csv")
    if skipped is not None:
        section.skipped_count = len(skipped)
        section.skipped = Grid.from_frame(skipped.head(SKIPPED_SHOWN))
        section.skipped_href = f"{key}/skipped.csv"
    return section


def collect(out: Path, notebooks_dir: Path | None, generated: str, version: str, commit: str) -> ReportData:
    """Papers first in brainlib.PAPERS order, then any other notebook folders (explorations)."""
    others = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name not in PAPERS
                    and ((p / "status.json").exists() or (p / "manifest.json").exists()))
    sections = [paper_section(key, out / key, notebooks_dir) for key in (*PAPERS, *others)]
    return ReportData(generated, version, commit, sections)
