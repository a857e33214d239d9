"""Read an outputs folder into the report's description (:mod:`brainlib.report.model`).

Everything a reviewer reads is gathered here once: per paper, what was verified offline (the
audit of the paper's own arithmetic, the settings as in the paper or changed), what was run and
on which data, instrument checks, the paper-vs-measured results with their status, the
regenerated tables and figures, and the long tables kept for a collapsible section. The
renderers (:mod:`brainlib.report.markdown`, :mod:`brainlib.report.html`) only lay it out.
Old files are read gracefully (``reproduced_value`` is the old name of ``measured_value``;
extra audit columns are shown after the known ones).
"""
from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from brainlib import PAPERS, claims
from brainlib._atomic import pid_alive
from brainlib.host import describe as describe_host
from brainlib.data.csvfile import CsvFileError, read_csv_bounded
from brainlib.report.model import (CLAIM_STATUSES, PAPER_DATA, PAPER_TITLES, SETTING_STATUSES, AuditView,
                                   ClaimCounts, Grid, InstrumentView, Link, PaperSection, ReportData,
                                   SettingsView)
from brainlib.report.tables import format_cell, restore_frame

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
SKIPPED_SHOWN = 20
TABLE_ROWS_INLINE = 40  # regenerated tables longer than this are linked, not inlined in HTML


def href(*parts: str) -> str:
    """A relative link to a file in the outputs folder, each part percent-encoded: a folder or file
    name (from a notebook, a status file, a figure) can neither leave the link nor become a
    ``javascript:`` URL, whatever characters it holds."""
    return "/".join(quote(str(part), safe="") for part in parts)


# --------------------------------------------------------------------------- reading files
def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        return {"status": "unreadable", "error": {"ename": type(exc).__name__, "evalue": f"{path}: {exc}"}}


def read_csv(path: Path) -> pd.DataFrame | None:
    """A run's CSV as written (:func:`brainlib.report.tables.restore_frame` undoes the formula
    guard), None if absent, empty if the file is. Read bounded: a damaged or planted file
    beyond :mod:`brainlib.data.csvfile`'s limits, or one pandas cannot parse, raises its
    ``CsvFileError`` naming the file."""
    if not path.exists():
        return None
    try:
        frame = read_csv_bounded(path, keep_default_na=True)
    except CsvFileError as err:
        if isinstance(err.__cause__, pd.errors.EmptyDataError):
            return pd.DataFrame()
        raise
    return restore_frame(frame)


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
        if _still_running(status):
            return f"running (started {status.get('started', '?')}, pid {status['pid']})"
        return f"interrupted (started {status.get('started', '?')}, never finished)"
    return str(state)


def _still_running(status: dict[str, Any]) -> bool:
    """A `running` status is live only if its runner process still exists on this host;
    otherwise the run was killed (statuses without a pid are treated as killed)."""
    pid = status.get("pid")
    if not isinstance(pid, int) or status.get("host") != socket.gethostname():
        return False
    return pid_alive(pid)


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
        if status.get("machine"):
            facts.append(("Host", describe_host(status["machine"])))
        for name, fld in (("executed notebook", "output_notebook"), ("HTML", "html")):
            if status.get(fld):
                section.links.append(Link(name, href(key, str(status[fld]))))
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
    return SettingsView(counts, changed, Grid.from_frame(frame, view), href(key, "tables", "settings.csv"))


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
        links.append(Link(md.stem, href(key, "tables", md.name), captions.get(md.stem, ""), grid))
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
        section.audit = audit_view(audit, "run", href(key, "tables", "audit.csv"),
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
        section.claims_href = href(key, "tables", "claims.csv")
    elif key in PAPERS and status and status.get("status") == "ok":
        section.no_claims = True

    section.tables = _tables(folder, key, captions)
    fig_captions = (manifest or {}).get("figures") or {}
    section.figures = [Link(p.stem, href(key, "figures", p.name), fig_captions.get(p.stem, ""))
                       for p in sorted((folder / "figures").glob("*.png"))]
    skipped = read_csv(folder / "skipped.csv")
    if skipped is not None:
        section.skipped_count = len(skipped)
        section.skipped = Grid.from_frame(skipped.head(SKIPPED_SHOWN))
        section.skipped_href = href(key, "skipped.csv")
    return section


def collect(out: Path, notebooks_dir: Path | None, generated: str, version: str, commit: str) -> ReportData:
    """Papers first in brainlib.PAPERS order, then any other notebook folders (explorations)."""
    others = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name not in PAPERS
                    and ((p / "status.json").exists() or (p / "manifest.json").exists()))
    sections = [paper_section(key, out / key, notebooks_dir) for key in (*PAPERS, *others)]
    return ReportData(generated, version, commit, sections)
