"""Names taken from data files (CSV ids and paths, DICOM UIDs) turned into paths safely.

A name read from a CSV or a DICOM header is data, not a path: ``ID_x/../../y``, an absolute
path, a NUL byte or a name that does not match the dataset's id pattern must never make
brainlib read (or write) outside the data root. Such names are reported as malformed and the
row goes to the loader's ``skipped`` list. Joining is lexical (no ``resolve()``): symbolic
links the user placed inside the data root, or a data root that is itself a link, keep
working, because following the user's own links is not an escape; ``..`` written in a data
file is.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from brainlib.data.base import DataFileError

__all__ = ["UnsafeNameError", "check_relative", "join_inside", "name_problem"]


class UnsafeNameError(DataFileError):
    """A name from a data file that would leave the data root, or does not match its pattern."""


def name_problem(name: object, pattern: re.Pattern[str] | None = None) -> str | None:
    """Why ``name`` cannot be used as an id / file name, or None if it can."""
    if not isinstance(name, str):
        return f"not a string ({type(name).__name__})"
    if "\x00" in name:
        return "contains a NUL byte"
    if pattern is not None and pattern.fullmatch(name) is None:
        return f"does not match the dataset's id pattern {pattern.pattern!r}"
    return None


def check_relative(rel: str) -> str | None:
    """Why ``rel`` (a relative path from a data file) could leave its folder, or None."""
    problem = name_problem(rel)
    if problem:
        return problem
    if not rel.strip():
        return "empty path"
    if (rel.startswith(("/", "\\")) or PurePosixPath(rel).is_absolute()
            or PureWindowsPath(rel).is_absolute() or PureWindowsPath(rel).drive):
        return "absolute path (paths in a data file must be relative to its folder)"
    if ".." in re.split(r"[\\/]", rel):
        return "contains '..' (paths in a data file must stay inside its folder)"
    return None


def join_inside(root: str | Path, rel: str, what: str = "path") -> Path:
    """``root / rel`` after :func:`check_relative`; raises UnsafeNameError naming ``root``."""
    problem = check_relative(rel)
    if problem:
        raise UnsafeNameError(root, f"{what} {rel!r}: {problem}")
    return Path(root) / rel
