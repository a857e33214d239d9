"""The data errors every loader and index reader raises (``ValueError`` subclasses).

Kept apart from :mod:`brainlib.data.base` (which imports torch) so light readers such as
:mod:`brainlib.data.csvfile`, and the report that reads a run's CSVs through it, raise the same
typed errors without importing torch. :mod:`brainlib.data.base` re-exports them.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["DataFileError", "DatasetError", "MixedDataError"]


class DatasetError(ValueError):
    """A dataset's index files (CSV, folder layout) are malformed; the message names the file."""


class DataFileError(DatasetError):
    """One data file that cannot be used: ``path`` and ``reason``; the message starts with the path."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


class MixedDataError(DatasetError):
    """A dataset mixes brainlib phantom files with unmarked (real) ones: it can be reported
    neither as a phantom run nor as real data. The message names the root, both counts and
    an example file of each."""
