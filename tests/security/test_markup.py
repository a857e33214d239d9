"""Markup from data stays text (issue 14): strings from DICOM headers and file names planted with
``<script>`` and ``<img onerror>`` reach REPORT.html, REPORT.md, the notebooks' HTML copy and
figure titles only as text."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pydicom
import pytest

SCRIPT = '<script>alert("series")</script>'
IMG = '<img src=x onerror=alert("patient")>'
FILE_IMG = "<img src=x onerror=alert(7)>"  # a file name cannot hold "/"
MARKERS = ("alert(", "onerror")


class _LiveMarkup(HTMLParser):
    """Everything in a page that could run code: scripts, event handlers, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed", "frame"):
            self._in_script = tag == "script"
            self.found.append(f"<{tag} {attrs}>")
        for name, value in attrs:
            if name.lower().startswith("on"):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.found.append(f"script text {data[:80]!r}")


def live_markup(page: str) -> list[str]:
    parser = _LiveMarkup()
    parser.feed(page)
    parser.close()
    return parser.found


def _planted_phantom(tmp_path: Path) -> tuple[Path, Path]:
    """A one-study RSNA phantom with the payloads in every header, and a junk file named with one."""
    from brainlib.data.synth import write_rsna

    root = write_rsna(tmp_path / f"DATA {FILE_IMG}" / "rsna", n_studies=1, seed=0, size=32)
    files = sorted((root / "stage_2_train").glob("*.dcm"))
    for path in files:
        ds = pydicom.dcmread(path)
        ds.SeriesDescription, ds.PatientName = SCRIPT, IMG
        ds.save_as(path)
    junk = root / "stage_2_train" / f"ID_{FILE_IMG}.dcm"
    junk.write_bytes(b"not a DICOM file")
    return root, junk


def test_report_shows_header_and_file_name_markup_as_text(tmp_path):
    from brainlib import io as bio
    from brainlib import plots
    from brainlib.report import write_report
    from brainlib.report.manifest import DataSource, start_run

    root, junk = _planted_phantom(tmp_path)
    index, skipped = bio.scan_folder(root / "stage_2_train")
    assert [s.path for s in skipped] == [str(junk)] or [Path(s.path).name for s in skipped] == [junk.name]
    assert set(index["series_description"]) == {SCRIPT}
    header = bio.read_header(index["path"].iloc[0])
    out = tmp_path / "outputs"
    run = start_run("he2024", {"profile": "smoke", "seed": 0}, out / "he2024",
                    DataSource("real", "rsna", root=str(root)))
    table = index[["path", "series_description"]].assign(patient_name=str(header.PatientName))
    run.save_table(table, "series", f"Series used: {SCRIPT}")
    run.add_skipped(skipped)
    run.add_note(f"series chosen: {SCRIPT} of patient {IMG}")
    run.add_deviation(f"read {FILE_IMG}")
    fig = plots.slice_grid([[[0.0, 1.0], [1.0, 0.0]]] * 2, titles=[SCRIPT, IMG], title=f"{SCRIPT} $x")
    run.save_figure(fig, "fig1_series", IMG)
    run.finish()
    (out / "he2024" / "status.json").write_text(json.dumps(
        {"status": "failed", "seconds": 1.0, "output_notebook": f"{FILE_IMG}.ipynb",
         "error": {"ename": "ValueError", "evalue": f"{SCRIPT}\n\n{IMG}", "cell_index": 3,
                   "traceback": f"{SCRIPT}\n```\n{IMG}"}}))
    write_report(out)

    page = (out / "REPORT.html").read_text()
    assert live_markup(page) == []
    assert page.count("&lt;script&gt;alert(") >= 3 and "&lt;img src=x onerror=alert(&#34;patient&#34;)&gt;" in page
    assert 'href="he2024/%3Cimg%20src%3Dx%20onerror%3Dalert%287%29%3E.ipynb"' in page  # a link, still a file

    for md in (out / "REPORT.md", out / "he2024" / "tables" / "series.md"):
        text = md.read_text()
        outside_code = [chunk for i, chunk in enumerate(text.split("```")) if i % 2 == 0]
        for chunk in outside_code:
            inline_free = "".join(part for j, part in enumerate(chunk.split("`")) if j % 2 == 0)
            assert "<script" not in inline_free and "<img src=x" not in inline_free, md
        assert "&lt;script&gt;" in text
    assert "`ValueError: <script>alert(\"series\")</script> <img src=x onerror=alert(\"patient\")>`" in (
        out / "REPORT.md").read_text()  # the error stays one code span: the blank line is gone


def test_notebook_html_copy_has_no_live_markup_from_outputs(tmp_path):
    from brainlib.runner import export_html

    frame = pd.DataFrame({"series": [SCRIPT], "patient": [IMG]})
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    md = nbformat.v4.new_markdown_cell(f"# Series\n\nSee [this](javascript:alert(1)) and {IMG}")
    code = nbformat.v4.new_code_cell("show(ds)")
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"loaded {SCRIPT} {IMG}\n"),
        nbformat.v4.new_output("display_data", data={
            "text/html": frame.to_html(escape=False) + f"<a href='javascript:alert(2)'>x</a>{SCRIPT}",
            "text/plain": "table"}),
        nbformat.v4.new_output("display_data", data={"text/html": frame.to_html(), "text/plain": "t"}),
        nbformat.v4.new_output("display_data", data={"application/javascript": 'alert("js")',
                                                      "text/plain": "js"}),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2},
            "text/plain": f"Viewer({IMG})"}),
        nbformat.v4.new_output("execute_result", data={"text/markdown": f"**bold** {SCRIPT}"},
                               execution_count=1),
        nbformat.v4.new_output("error", ename="ValueError", evalue=SCRIPT, traceback=[IMG]),
    ]
    nb.cells = [md, code]
    path = tmp_path / "demo.ipynb"
    nbformat.write(nb, str(path))
    export_html(path, tmp_path / "demo.html")
    page = (tmp_path / "demo.html").read_text()
    found = [f for f in live_markup(page) if any(m in f for m in MARKERS) or "widget" in f]
    assert found == []
    assert "<table" in page and "<h1" in page  # formatting kept
    assert page.count('&lt;script&gt;alert("series")&lt;/script&gt;') >= 2  # stream and table cell: text


@pytest.mark.parametrize("title", ["CT $100 head", "bad $x^$ math", "$\\alpha$ and $", "a\\$b$", "<b>$x$</b>"])
def test_figure_titles_are_literal(tmp_path, title):
    from matplotlib.text import Text

    from brainlib import plots

    figs = [plots.slice_grid([[[0.0]]], titles=[title], title=title),
            plots.confusion_matrix([[1, 0], [0, 1]], [title, "b"], title=title),
            plots.overlay([[0.0, 1.0]], boxes_pred=[[0, 0, 1, 1]], pred_labels=[title], title=title)]
    for i, fig in enumerate(figs):
        plots.save_figure(fig, tmp_path / f"f{i}")  # a lone or odd "$" would fail here as mathtext
        shown = [t for t in fig.findobj(Text) if t.get_text()]
        rendered = [t._preprocess_math(t.get_text()) for t in shown]
        assert (title, False) in rendered  # drawn as written, not as mathtext
