"""What a notebook run depends on, as digests (the runner skips a notebook when they match).

A notebook is rerun when its source, its parameters, brainlib's code (every .py/.yaml under
brainlib/ plus pyproject.toml) or its data (a real root's listing; phantoms are fixed by the
code) changed since its last success (:mod:`brainlib.runner`).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

KERNEL_NAME = "brainlib"
RUNNER_VERSION = 1  # bump to invalidate every stored hash


def _notebook_source_digest(path: Path) -> str:
    """Hash of cell types, sources and tags only: re-saving a notebook with outputs changes nothing."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [(c.get("cell_type"), "".join(c.get("source", "")), sorted(c.get("metadata", {}).get("tags", [])))
             for c in nb.get("cells", [])]
    return hashlib.sha256(json.dumps(cells, sort_keys=True).encode()).hexdigest()


def package_digest(package_dir: Path | None = None) -> str:
    """Hash of every .py/.yaml file under brainlib/ (and pyproject.toml: pinned versions)."""
    package_dir = package_dir or Path(__file__).resolve().parent
    digest = hashlib.sha256()
    files = sorted(p for p in package_dir.rglob("*") if p.suffix in (".py", ".yaml", ".yml")
                   and "__pycache__" not in p.parts)
    pyproject = package_dir.parent / "pyproject.toml"
    if pyproject.exists():
        files.append(pyproject)
    for path in files:
        digest.update(path.relative_to(package_dir.parent).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def data_digest(data_root: str | os.PathLike[str] | None) -> str:
    """Phantoms are fixed by brainlib's code; a real root by its listing (paths, sizes, mtimes)."""
    if not data_root:
        return "phantom"
    root = Path(data_root)
    if not root.exists():
        raise FileNotFoundError(f"--data-root {root} does not exist")
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            stat = path.stat()
            digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def input_hash(notebook: Path, parameters: dict[str, Any], package: str, data: str) -> str:
    """Everything a notebook's results depend on, as one digest."""
    payload = {"runner": RUNNER_VERSION, "notebook": _notebook_source_digest(notebook),
               "parameters": parameters, "package": package, "data": data, "kernel": KERNEL_NAME,
               "python": platform.python_version()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
