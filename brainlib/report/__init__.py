"""Provenance and the reviewer report (issue 3 section 6, issue 9 section 3).

* :mod:`~brainlib.report.manifest`: a notebook's :class:`Run` (tables, figures, predictions,
  skipped inputs, claims, ``manifest.json`` with hashes).
* :mod:`~brainlib.report.provenance`: :class:`DataSource`, git state, package versions, hashes.
* :mod:`~brainlib.report.tables`: table text: CSV (formula-starting text cells neutralised),
  Markdown and LaTeX.
* :mod:`~brainlib.report.model` / :mod:`~brainlib.report.collect`: what the report shows, as
  plain data, and an outputs folder read into it.
* :mod:`~brainlib.report.markdown` / :mod:`~brainlib.report.html`: REPORT.md, and REPORT.html
  from the Jinja2 template ``templates/report.html.j2`` (autoescaped) and its stylesheet.
* :func:`write_report` writes both.
"""
from __future__ import annotations

from brainlib.report.build import write_report
from brainlib.report.collect import collect, real_data_command
from brainlib.report.html import render_html
from brainlib.report.manifest import (LAYOUT_NAMES, PACKAGES, DataSource, Run, artifact_hashes,
                                      as_data_source, clear_artifacts, data_source, format_cell,
                                      git_state, package_versions, sha256_file, start_run, to_latex,
                                      to_markdown, validate_predictions)
from brainlib.report.markdown import render_markdown
from brainlib.report.model import (CLAIM_STATUSES, EVIDENCE_STATUSES, PAPER_DATA, PAPER_TITLES,
                                   SETTING_STATUSES, ReportData)

__all__ = ["CLAIM_STATUSES", "EVIDENCE_STATUSES", "LAYOUT_NAMES", "PACKAGES", "PAPER_DATA",
           "PAPER_TITLES", "SETTING_STATUSES", "DataSource", "ReportData", "Run", "artifact_hashes",
           "as_data_source", "clear_artifacts", "collect", "data_source", "format_cell", "git_state",
           "package_versions", "real_data_command", "render_html", "render_markdown", "sha256_file",
           "start_run", "to_latex", "to_markdown", "validate_predictions", "write_report"]
