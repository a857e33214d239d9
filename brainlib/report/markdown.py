"""REPORT.md from the collected report (:mod:`brainlib.report.collect`).

Readable as plain text and on GitHub: per paper, what was verified offline, what was run on
which data, instrument checks, paper vs measured results (status first), tables, figure
thumbnails; the long claims and settings tables sit in ``<details>`` blocks. Text that comes
from data (notes, paths, DICOM descriptions) has ``&``, ``<`` and ``>`` written as entities.
"""
from __future__ import annotations

import html

from brainlib.report.model import AuditView, Grid, PaperSection, ReportData
from brainlib.report.tables import to_markdown

PHANTOM_BANNER = (
    "> Results computed on the embedded **synthetic phantoms** are runs of each paper's full method "
    "on synthetic data written in the datasets' published layouts. They are **not** the papers' "
    "datasets: their claims have the status `phantom run` and are **not evidence** for or against "
    "the papers. Only a run with `--data-root` on the real datasets gives `consistent` / `differs` "
    "/ `supported` / `contradicted`. Settings (`as in paper` / `changed`) are counted apart from evidence.")


def _t(text: object) -> str:
    """Data text outside code spans: no markup can come through."""
    return html.escape(str(text), quote=False)


def _code(text: object) -> str:
    """An inline code span on one line: a blank line in `text` cannot end it and let markup out."""
    return "`" + " ".join(str(text).replace("`", "'").split()) + "`"


def _table(grid: Grid | None, caption: str = "") -> list[str]:
    if grid is None or not len(grid):
        return []
    return [to_markdown(grid.frame(), caption or grid.caption, escape_html=True)]


def _details(summary: str, body: list[str]) -> list[str]:
    if not body:
        return []
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "</details>", ""]


def _bullets(items: list[str]) -> list[str]:
    return [f"- {_t(item)}" for item in items] + [""]


def audit_lines(key: str, audit: AuditView | None) -> list[str]:
    if audit is None:
        return []
    lines = ["**Audit of the paper's own arithmetic**", ""]
    if audit.error:
        return lines + [_t(audit.error), ""]
    intro = []
    if audit.n_claims is not None:
        intro.append(f"{audit.n_claims} claims registered in `brainlib/claims/{key}.yaml`;")
    if audit.n_checks is not None:
        intro.append(f"{audit.n_checks} arithmetic checks;")
    intro.append(f"{audit.n_total} inconsistencies in the paper's own numbers ({audit.n_errors} errors)"
                 f" (`brainlib audit {key}`"
                 + (f", [audit.csv]({audit.href})" if audit.href else "") + ").")
    lines += [" ".join(intro), ""]
    if audit.n_total == 0:
        return lines
    if audit.lead is not None:
        lines += [f"Largest first ({len(audit.lead)} of {len(audit.large)}):", ""] + _table(audit.lead)
    lines += _details(f"{len(audit.rest)} smaller finding(s)" if audit.rest else "", _table(audit.rest))
    if audit.rounding is not None:
        rule = f" Rule: {_t(audit.rule)}" if audit.rule else ""
        lines += _details(f"{len(audit.rounding)} finding(s) explainable by rounding or macro-averaging",
                          ([rule.strip(), ""] if rule else []) + _table(audit.rounding))
    return lines


def _verified(s: PaperSection) -> list[str]:
    lines = ["### Verified offline", ""] + audit_lines(s.key, s.audit)
    if s.settings is not None:
        lines += [f"**Settings**: {_t(s.settings.sentence)} ([settings.csv]({s.settings.href})).", ""]
    return lines


def _run(s: PaperSection) -> list[str]:
    lines = ["### What was run", ""]
    lines += [f"- {label}: {'**' + _t(value) + '**' if label == 'Status' and s.failed else _t(value)}"
              for label, value in s.facts]
    if s.links:
        lines.append("- Notebook: " + ", ".join(f"[{_t(link.name)}]({link.href})" for link in s.links))
    lines.append("")
    if s.error:
        where = f" in cell {s.error['cell_index']}" if s.error.get("cell_index") is not None else ""
        lines += ["**Failure**", "",
                  _code(f"{s.error.get('ename', 'Error')}: {s.error.get('evalue', '')}") + where, ""]
        if s.error.get("traceback"):
            lines += ["```", str(s.error["traceback"]).replace("```", "'''").rstrip(), "```", ""]
    for heading, items in (("Readings (what the paper leaves open, and our choice)", s.readings),
                           ("Deviations from the paper", s.deviations)):
        if items:
            lines += [f"**{heading}**", ""] + _bullets(items)
    if s.real_command:
        lines += ["**To test the paper on the real data** (this run used synthetic phantoms):", "",
                  "```bash", s.real_command, "```", "", _t(s.real_data_note), ""]
    return lines


def _claims(s: PaperSection) -> list[str]:
    lines: list[str] = []
    if s.instrument is not None:
        verdict = "" if s.instrument.ok else f" — **{s.instrument.failed} FAILED**"
        lines += ["### Instrument checks", "",
                  f"Checks of the measuring instrument (the pipeline on phantoms), not claims of the "
                  f"paper: {s.instrument.counts_text}{verdict}."
                  + ("" if s.instrument.ok else " A run whose checks fail is a failed run, not a result."),
                  ""] + _table(s.instrument.grid)
    if s.counts is not None:
        lines += ["### Results: paper vs measured", "",
                  f"Settings: {s.counts.settings_text}. Evidence: {s.counts.evidence_text} "
                  f"(all claims: [claims.csv]({s.claims_href})).", ""]
        if s.counts.phantom:
            lines += [f"The {s.counts.phantom} `phantom run` rows are measurements on synthetic data: "
                      "they are not evidence about the paper.", ""]
        lines += _table(s.results) if s.results is not None else ["No claim was measured in this run.", ""]
    elif s.no_claims:
        lines += ["### Results: paper vs measured", "", "No claims table was written by this notebook.", ""]
    return lines


def _outputs(s: PaperSection) -> list[str]:
    lines: list[str] = []
    if s.tables:
        lines += ["### Tables", ""]
        lines += [f"- [{_t(t.name)}]({t.href})" + (f" — {_t(t.caption)}" if t.caption else "") for t in s.tables]
        lines.append("")
    if s.figures:
        lines += ["### Figures", ""]
        lines += [f'<a href="{html.escape(f.href)}"><img src="{html.escape(f.href)}" alt="{html.escape(f.name)}" '
                  f'title="{html.escape(f.name)}" width="240"></a>' for f in s.figures]
        lines.append("")
    if s.claims is not None:
        lines += _details(f"All {len(s.claims)} claims (status first)", _table(s.claims))
    if s.settings is not None:
        lines += _details(f"All {len(s.settings.grid)} settings", _table(s.settings.grid))
    if s.skipped_count is not None:
        lines += ["### Skipped inputs", ""]
        if s.skipped_count:
            lines += [f"{s.skipped_count} input(s) could not be used ([skipped.csv]({s.skipped_href})):", ""]
            lines += _table(s.skipped)
        else:
            lines += ["None.", ""]
    if s.notes:
        lines += ["### Notes", ""] + _bullets(s.notes)
    return lines


def paper_lines(s: PaperSection) -> list[str]:
    lines = [f"## {_t(s.key)} — {_t(s.title)}", ""]
    if not s.has_run:
        lines += [f"- Status: {_t(s.status)}", ""]
        if s.audit is not None:
            lines += ["### Verified offline", ""] + audit_lines(s.key, s.audit)
        return lines
    return lines + _verified(s) + _run(s) + _claims(s) + _outputs(s)


def render_markdown(data: ReportData) -> str:
    head = ["# brainlib reproduction report", "",
            f"Generated {data.generated}; brainlib {data.version}; commit {data.commit}.", "",
            PHANTOM_BANNER, ""]
    if data.failed:
        head += [f"**{len(data.failed)} notebook(s) failed: {_t(', '.join(data.failed))}** "
                 "(details in their sections).", ""]
    head += ["## Summary", ""] + _table(data.summary())
    body = [line for s in data.sections for line in paper_lines(s)]
    return "\n".join(head + body).rstrip() + "\n"
