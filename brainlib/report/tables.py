"""Table text for a run's artefacts: CSV (formula-safe), GitHub Markdown and booktabs LaTeX.

Every CSV a :class:`~brainlib.report.manifest.Run` writes (tables, predictions, skipped.csv)
goes through :func:`to_csv_text`. Text cells may come from input data (file names, case ids,
DICOM descriptions), and a spreadsheet opening the CSV runs a cell starting with ``=``, ``+``,
``-``, ``@``, tab or carriage return as a formula (CSV injection, OWASP). Such text cells are
written with a leading ``'`` (which spreadsheets show as text); numeric cells are left alone,
so negative numbers stay numbers, and so is text that is a plain decimal number such as
``-0.5``. A text cell that itself starts with ``'`` gets one more, so :func:`restore_cell`
(what the report applies when it reads the CSVs back) returns every original string exactly.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

#: First characters that make a spreadsheet evaluate a cell (OWASP "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise_cell(value: Any) -> Any:
    """A text cell as written to CSV: ``'`` prepended when it could start a formula (or already
    starts with ``'``); numbers, plain decimal-number text and other values are unchanged."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(_QUOTE) or (value.startswith(FORMULA_STARTS)
                                    and not _PLAIN_NUMBER.fullmatch(value)):
        return _QUOTE + value
    return value


def restore_cell(value: Any) -> Any:
    """The inverse of :func:`neutralise_cell` for a cell read back from a CSV we wrote."""
    if isinstance(value, str) and value.startswith(_QUOTE):
        return value[1:]
    return value


def _map_text(frame: pd.DataFrame, fn: Callable[[Any], Any]) -> pd.DataFrame:
    """A copy with `fn` applied to every cell of the non-numeric columns and to the header."""
    out = frame.copy()
    for i in range(frame.shape[1]):  # by position: column names may repeat
        column = frame.iloc[:, i]
        if not pd.api.types.is_numeric_dtype(column):
            out.isetitem(i, column.map(fn))
    if isinstance(frame.columns, pd.MultiIndex):
        out.columns = pd.MultiIndex.from_tuples([tuple(fn(x) for x in c) for c in frame.columns],
                                                names=frame.columns.names)
    else:
        out.columns = pd.Index([fn(c) for c in frame.columns], name=frame.columns.name)
    return out


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell and column name passed through :func:`neutralise_cell`."""
    return _map_text(frame, neutralise_cell)


def restore_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame read from a CSV written by :func:`to_csv_text`, with its original text."""
    return _map_text(frame, restore_cell)


def to_csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text (no index) with formula-starting text cells neutralised."""
    return neutralise_frame(frame).to_csv(index=False)


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


def table_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Keep a meaningful index as columns; drop a default 0..n-1 one."""
    if isinstance(df.index, pd.RangeIndex) and df.index.name is None:
        return df
    return df.reset_index()


def to_markdown(df: pd.DataFrame, caption: str = "", *, escape_html: bool = False) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency such as tabulate).

    With `escape_html`, ``&``, ``<`` and ``>`` in the caption and cells are written as entities,
    so text from data or DICOM headers cannot turn into markup where the Markdown is rendered.
    """
    frame = table_frame(df)
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
    frame = table_frame(df)
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
