"""Bounded CSV reading for every index file brainlib reads (labels, reads, lesions, boxes).

pandas allocates per column and per field before it can complain, so a damaged or hostile
CSV (a header of millions of columns, one line of a gigabyte) is refused here first, from a
streaming scan of the raw bytes, with a :class:`CsvLimitError` naming the file and the limit.
Every other failure to parse (bad encoding, ragged rows, empty file) is a
:class:`CsvFileError`: both are :class:`~brainlib.data.errors.DataFileError` (a ValueError), so
the loaders' callers catch one typed family. Limits are named constants with their reasons.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainlib.data.errors import DataFileError

__all__ = ["MAX_CSV_BYTES", "MAX_CSV_LINE_BYTES", "MAX_CSV_COLUMNS", "CsvFileError",
           "CsvLimitError", "check_csv", "csv_header", "read_csv_bounded"]

#: Largest index CSV read (bytes): 4x RSNA's stage_2_train.csv (4.5 M rows, ~120 MB), the
#: largest index file of any supported dataset.
MAX_CSV_BYTES = 512 * 2**20
#: Longest line (bytes): the longest real lines (DL_info.csv) are ~400 bytes; 64 KiB is 160x
#: that and still refuses a header of millions of columns or an absurd field before pandas.
MAX_CSV_LINE_BYTES = 64 * 2**10
#: Most header columns: CQ500's reads.csv has 44, the most of any supported layout.
MAX_CSV_COLUMNS = 256
_CHUNK = 4 * 2**20


class CsvFileError(DataFileError):
    """An index CSV that cannot be parsed (encoding, ragged rows, empty); names the file."""


class CsvLimitError(CsvFileError):
    """An index CSV beyond a limit of this module (refused before pandas allocates)."""


def check_csv(path: str | os.PathLike[str], max_bytes: int | None = None,
              max_line: int | None = None) -> None:
    """Raise CsvLimitError if the file or any of its lines is larger than the limits.

    One streaming pass over the raw bytes (about 0.1 s per 100 MB): line lengths come from
    the positions of the newline bytes, so memory stays at one chunk.
    """
    p = Path(path)
    max_bytes = MAX_CSV_BYTES if max_bytes is None else max_bytes
    max_line = MAX_CSV_LINE_BYTES if max_line is None else max_line
    try:
        size = p.stat().st_size
        fh = open(p, "rb")
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        raise CsvFileError(p, f"cannot open ({getattr(err, 'strerror', None) or err})") from err
    if size > max_bytes:
        fh.close()
        raise CsvLimitError(p, f"{size} bytes, above the limit of {max_bytes} for an index CSV")
    with fh:
        carry, line = 0, 1
        while chunk := fh.read(_CHUNK):
            nl = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10)
            if nl.size == 0:
                carry += len(chunk)
            else:
                lengths = np.diff(nl, prepend=-1) - 1
                lengths[0] += carry
                over = np.flatnonzero(lengths > max_line)
                if over.size:
                    raise CsvLimitError(p, f"line {line + int(over[0])} has {int(lengths[over[0]])} "
                                           f"bytes, above the limit of {max_line}")
                line += nl.size
                carry = len(chunk) - int(nl[-1]) - 1
            if carry > max_line:
                raise CsvLimitError(p, f"line {line} is longer than the limit of {max_line} bytes")


def csv_header(path: str | os.PathLike[str], encoding: str = "utf-8-sig",
               max_columns: int = MAX_CSV_COLUMNS) -> list[str]:
    """The header fields of a checked CSV (call :func:`check_csv` first), stripped."""
    return _first_records(path, encoding, max_columns)[0]


def _first_records(path: str | os.PathLike[str], encoding: str = "utf-8-sig",
                   max_columns: int = MAX_CSV_COLUMNS) -> list[list[str]]:
    """The header and the first data record (if any) of a checked CSV, fields stripped."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(2 * (MAX_CSV_LINE_BYTES + 1))
        text = head.decode(encoding, errors="replace")
        reader = csv.reader(io.StringIO(text))
        records = [next(reader, []), next(reader, [])]
    except (OSError, csv.Error) as err:
        raise CsvFileError(p, f"unreadable header ({type(err).__name__}: {err})") from err
    for k, rec in enumerate(records):
        if len(rec) > max_columns:
            raise CsvLimitError(p, f"{'header' if k == 0 else 'line 2'} has {len(rec)} columns, "
                                   f"above the limit of {max_columns}")
    return [[f.strip() for f in rec] for rec in records]


def read_csv_bounded(path: str | os.PathLike[str], *, max_columns: int = MAX_CSV_COLUMNS,
                     **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv(path, **kwargs)`` after :func:`check_csv` and a header column count.

    Raises:
        CsvLimitError: beyond a size limit (nothing parsed).
        CsvFileError: any other parse failure, naming the file and pandas' reason.
    """
    p = Path(path)
    check_csv(p)
    header, first = _first_records(p, encoding=kwargs.get("encoding") or "utf-8", max_columns=max_columns)
    if "index_col" not in kwargs and len(first) > len(header):
        # pandas would make the surplus leading fields a (Multi)Index: slow for thousands of
        # fields (5 s for one 20 kB line) and wrong for a ragged file
        raise CsvFileError(p, f"line 2 has {len(first)} fields, the header {len(header)}")
    try:
        frame = pd.read_csv(p, engine="c", **kwargs)
    except MemoryError:
        raise
    except (OSError, ValueError, csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError,
            OverflowError, TypeError) as err:
        raise CsvFileError(p, f"cannot parse ({type(err).__name__}: {str(err)[:200]})") from err
    if "index_col" not in kwargs and not isinstance(frame.index, pd.RangeIndex):
        # pandas takes the first column as the index when line 2 has one field more than
        # the header: the file is ragged, not indexed.
        raise CsvFileError(p, "line 2 has more fields than the header")
    return frame
