"""REPORT.html from the collected report, through a Jinja2 template with autoescape on.

The template (``templates/report.html.j2``) and its stylesheet (``templates/report.css``,
inlined so the file stands alone) lay out the same sections as REPORT.md. Every string from
data, manifests or DICOM headers reaches the page through an autoescaped expression; nothing
is marked safe. The page fits a 1280-px window: wide tables scroll inside their own box and
the status column comes first and stays pinned while they scroll.
"""
from __future__ import annotations

import re
from pathlib import Path

import jinja2

from brainlib.report.model import CLAIM_STATUSES, ReportData
from brainlib.report.markdown import PHANTOM_BANNER

TEMPLATES = Path(__file__).resolve().parent / "templates"


def status_class(status: object) -> str:
    """CSS class of a status cell, e.g. "phantom run" -> "st-phantom-run"."""
    text = str(status).strip().lower()
    if text.startswith("changed"):
        text = "changed"
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    known = {re.sub(r"[^a-z0-9]+", "-", s).strip("-") for s in CLAIM_STATUSES}
    known |= {"pass", "fail", "ok", "failed", "not-in-paper", "runtime", "error", "warning", "not-enforced"}
    return f"st-{slug}" if slug in known else "st-other"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["status_class"] = status_class
    return env


def render_html(data: ReportData) -> str:
    banner = PHANTOM_BANNER.lstrip("> ").replace("**", "").replace("`", "")
    page = environment().get_template("report.html.j2").render(report=data, banner=banner)
    return page.lstrip()
