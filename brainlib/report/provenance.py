"""Where a run's numbers came from: its data source, code, packages, device and artefact hashes.

:class:`DataSource` says whether a run used the embedded phantoms or a real dataset (every
caption states it); the functions below gather what ``manifest.json`` records beside it (git
commit, package versions, the device used, sha256 of every artefact and of every local weights
file loaded). :class:`brainlib.report.manifest.Run` puts them together.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import importlib.metadata
import math
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from brainlib import __version__
from brainlib.paths import repo_root

LAYOUT_NAMES: dict[str, str] = {
    "rsna": "RSNA", "cq500": "CQ500", "busi": "BUSI", "deeplesion": "DeepLesion",
    "scintigraphy": "bone scintigraphy folder-per-class",
}
PACKAGES: tuple[str, ...] = ("torch", "torchvision", "numpy", "scipy", "pandas", "pydicom",
                             "scikit-learn", "brainlib")
# Files in a paper folder that the runner, not the Run, owns (hashed by the runner).
_RUNNER_FILES = ("manifest.json", "status.json")


# --------------------------------------------------------------------------- data source
@dataclass(frozen=True)
class DataSource:
    """Where a run's data came from: the embedded phantoms or a real dataset root."""

    kind: str  # "phantom" or "real"
    layout: str | None = None  # "rsna", "cq500", "busi", ...
    root: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("phantom", "real"):
            raise ValueError(f"data source kind must be 'phantom' or 'real', got {self.kind!r}")
        if self.kind == "real" and not self.root:
            raise ValueError("a real data source needs its root folder")

    @property
    def is_phantom(self) -> bool:
        return self.kind == "phantom"

    @property
    def label(self) -> str:
        """One phrase for captions, e.g. "synthetic phantoms (RSNA layout) — not the paper's dataset"."""
        parts = [LAYOUT_NAMES.get(p, p) for p in (self.layout or "").split("+") if p]
        layout = " and ".join(parts)
        if self.is_phantom:
            where = f" ({layout} layout{'s' if len(parts) > 1 else ''})" if layout else ""
            return f"synthetic phantoms{where} — not the paper's dataset"
        what = f"{layout} " if layout else ""
        return f"real {what}data at {self.root}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layout": self.layout, "root": self.root,
                "details": _jsonable(dict(self.details)), "label": self.label}


def data_source(data_root: str | os.PathLike[str] | None, layout: str | None = None,
                **details: Any) -> DataSource:
    """Phantoms when `data_root` is empty/None (the default), else the real dataset at it."""
    if data_root in (None, ""):
        return DataSource("phantom", layout, None, details)
    return DataSource("real", layout, str(Path(data_root).resolve()), details)


def as_data_source(value: DataSource | Mapping[str, Any] | str | os.PathLike[str] | None) -> DataSource:
    """Accept a DataSource, a dict of its fields, "phantom[:layout]", a real root, or None."""
    if isinstance(value, DataSource):
        return value
    if value is None:
        return DataSource("phantom")
    if isinstance(value, Mapping):
        fields = {k: value[k] for k in ("kind", "layout", "root", "details") if k in value}
        return DataSource(**fields)
    text = str(value)
    if text == "phantom" or text.startswith("phantom:"):
        return DataSource("phantom", text.partition(":")[2] or None)
    return data_source(text)


# --------------------------------------------------------------------------- provenance
def _jsonable(value: Any) -> Any:
    """Parameters and details as plain JSON (Paths, numpy scalars, tuples...)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return _jsonable(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_state(root: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the checkout brainlib runs from (None outside git)."""
    root = root or repo_root()
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True, timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], check=True, capture_output=True,
                               text=True, timeout=20).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = __version__ if name == "brainlib" else None
    return versions


def _resolve_device(requested: Any) -> str | None:
    """Record the device actually used; only asks torch if the notebook imported it."""
    if requested in (None, "", "auto"):
        torch = sys.modules.get("torch")
        if torch is None:
            return None if requested in (None, "") else "auto"
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(requested)


def loaded_weights_files() -> list[dict[str, Any]]:
    """Local weights files this process loaded (path, sha256, bytes, what, tensors loaded).

    Read from :mod:`brainlib.models._weights` only if it was imported: a process that never
    imported it loaded no weights file, and the report stays free of a torch import.
    """
    module = sys.modules.get("brainlib.models._weights")
    return module.loaded_weights() if module is not None else []


def artifact_hashes(out_dir: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file the run produced (not the runner's own files)."""
    hashes = {}
    for path in sorted(out_dir.rglob("*")):
        rel = path.relative_to(out_dir)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if len(rel.parts) == 1 and (rel.name in _RUNNER_FILES or rel.suffix in (".ipynb", ".html")):
            continue  # the executed notebook is hashed by the runner once it is complete
        hashes[rel.as_posix()] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return hashes
