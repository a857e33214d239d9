"""Where the real datasets are: one `--data-root` serves every notebook.

`./reproduce.sh --data-root DIR` passes the same DIR to every notebook. DIR is either a
dataset's own root (when a notebook needs one dataset) or a folder holding one sub-folder
per dataset, named by layout (`rsna/`, `cq500/`, ...). A mapping {layout: root} also works
from Python. None means the embedded phantoms.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence


def data_roots(data_root: str | os.PathLike | Mapping[str, Any] | None,
               names: Sequence[str]) -> dict[str, Path | None]:
    """Real dataset roots by layout name; every value None for the embedded phantoms.

    Raises FileNotFoundError naming the folder when a root or its sub-folder is missing.
    """
    if data_root in (None, ""):
        return {n: None for n in names}
    if isinstance(data_root, Mapping):
        missing = [n for n in names if not data_root.get(n)]
        if missing:
            raise ValueError(f"data_root mapping has no root for {missing}")
        return {n: Path(data_root[n]).expanduser() for n in names}
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: data_root is not a folder")
    out: dict[str, Path | None] = {}
    for n in names:
        sub = root / n
        if sub.is_dir():
            out[n] = sub
        elif len(names) == 1:
            out[n] = root
        else:
            raise FileNotFoundError(f"{root}: expected a '{n}' sub-folder (one per dataset)")
    return out


def data_root_for(data_root: str | os.PathLike | Mapping[str, Any] | None, name: str) -> Path | None:
    """The root of one dataset (`name` = layout), or None for phantoms."""
    return data_roots(data_root, (name,))[name]
