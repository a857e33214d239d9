"""write_report: every ``<out>/<key>/`` gathered into ``REPORT.md`` and ``REPORT.html``."""
from __future__ import annotations

import os
from pathlib import Path

from brainlib import __version__
from brainlib._atomic import atomic_write
from brainlib.paths import repo_root
from brainlib.report.collect import collect
from brainlib.report.html import render_html
from brainlib.report.markdown import render_markdown
from brainlib.report.provenance import _now, git_state


def write_report(out_dir: str | os.PathLike[str], notebooks_dir: str | os.PathLike[str] | None = None) -> Path:
    """Gather every ``<out>/<key>/`` into ``REPORT.md`` and ``REPORT.html``; return the .md path.

    Papers come first in brainlib.PAPERS order (those without a notebook are listed as such,
    with the audit of their own arithmetic), then any other notebook folders (explorations).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nb_dir = Path(notebooks_dir) if notebooks_dir is not None else repo_root() / "notebooks"
    data = collect(out, nb_dir, _now(), __version__, git_state().get("commit") or "unknown")
    md_path = atomic_write(out / "REPORT.md", render_markdown(data))
    atomic_write(out / "REPORT.html", render_html(data))
    return md_path
