"""Where brainlib keeps caches (phantoms, windowed tensors, encoder features).

`BRAINLIB_CACHE` overrides the default `<repo or cwd>/.cache/brainlib`; nothing is ever
written under a home directory implicitly, so a run is self-contained in its checkout.
"""
from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout root if brainlib is installed from one (editable install), else cwd."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def cache_dir(*parts: str) -> Path:
    """Return (and create) a cache sub-directory."""
    root = Path(os.environ.get("BRAINLIB_CACHE", repo_root() / ".cache" / "brainlib"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
