"""The HTML copy of an executed notebook (``<out>/<key>/<notebook>.html``), with no live markup
from its outputs.

nbconvert pastes a notebook's ``text/html`` outputs and Markdown into the page as they are, and
runs ``application/javascript`` outputs. An output can carry text from the data (a series
description or a patient name shown in a table, a file name in a message), so the copy is
exported with nbconvert's ``sanitize_html`` switched on and its cleaner replaced by a wider
allow-list (bleach): headings, paragraphs, tables, lists, code and images stay; scripts,
styles, event-handler attributes, ``javascript:`` links, forms, frames and embedded objects go.
JavaScript outputs are dropped by nbconvert under that switch; widget views and the widget state
(which would load a widget manager from a CDN and render widget values as HTML) are left out,
their static fallbacks (text, images) kept. Plain-text outputs, tracebacks and code are escaped by
nbconvert in any case. The executed ``.ipynb`` beside it keeps every output unchanged.
"""
from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlsplit

import bleach
from bleach.css_sanitizer import CSSSanitizer

TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd", "del",
    "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u",
    "ul", "var"})
_COMMON = frozenset({"class", "id", "title", "style", "align", "lang", "dir"})
_PER_TAG = {
    "a": {"href", "name", "target", "rel"}, "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "valign"}, "th": {"colspan", "rowspan", "valign", "scope"},
    "table": {"border", "cellpadding", "cellspacing"}, "col": {"span"}, "colgroup": {"span"},
    "ol": {"start", "type"}, "details": {"open"}, "pre": {"data-language"},
}
_DROP_WITH_CONTENT = re.compile(r"<(script|style|template|noscript)\b[^>]*>.*?</\1\s*>", re.I | re.S)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name not in _COMMON and name not in _PER_TAG.get(tag, ()):
        return False
    if name in ("href", "src"):
        scheme = urlsplit(value.strip()).scheme.lower()
        if tag == "img" and name == "src":
            return scheme in ("", "http", "https") or value.strip().lower().startswith("data:image/")
        return scheme in ("", "http", "https", "mailto")
    return True


def clean_html(element: Any) -> str:
    """`element` (a fragment of HTML) with only inert formatting markup left."""
    text = element.decode() if isinstance(element, bytes) else str(element)
    text = _DROP_WITH_CONTENT.sub("", text)
    return bleach.clean(text, tags=TAGS, attributes=_allowed_attribute,
                        protocols={"http", "https", "mailto", "data"}, strip=True, strip_comments=True,
                        css_sanitizer=CSSSanitizer())


def without_widgets(nb: Any) -> Any:
    """A copy of `nb` without widget state and widget views (their static fallbacks kept)."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and WIDGET_MIME in data:
                del data[WIDGET_MIME]
    return nb


def notebook_to_html(nb: Any) -> str:
    """The page for notebook node `nb` (nbformat v4), sanitised as described above."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(sanitize_html=True, filters={"clean_html": clean_html})
    body, _ = exporter.from_notebook_node(without_widgets(nb))
    return body
