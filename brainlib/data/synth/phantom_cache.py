"""The phantom cache: each CT phantom set (RSNA or CQ500 layout, `writers`) is generated once
into `cache_dir("phantoms")/<phantom_key>` and reused, with an atomic rename so an interrupted
run is never mistaken for a finished tree and a per-set lock so concurrent runs write it once."""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from brainlib.data.synth import locked_generation  # lock per phantom set
from brainlib.data.synth import writers  # module attribute: tests replace a writer
from brainlib.data.synth.head_anatomy import GENERATOR_VERSION
from brainlib.data.synth.marks import MARK_VERSION
from brainlib.data.synth.truth import LABEL_MIN_PIXELS, TRUTH_DIR
from brainlib.data.synth.writers import LAYOUTS


# ----------------------------------------------------------------------------- cache

def phantom_key(layout: str, n_studies: int, seed: int, size: int, difficulty: float,
                label_size: int | None = None, label_min_pixels: int = LABEL_MIN_PIXELS) -> str:
    """Folder name of a cached phantom tree: every argument that changes its content, and the
    version of the phantom mark (`-m<MARK_VERSION>`), so trees cached before the files were
    marked are never reused (they stay where they are; nothing reading them is disturbed).
    A label rule at a working size adds `-l<label_size>p<label_min_pixels>` (its sidecar has
    more columns); trees without one keep their key."""
    key = f"{layout}-n{n_studies}-s{seed}-px{size}-d{difficulty}-m{MARK_VERSION}"
    if label_size is not None:
        key += f"-l{int(label_size)}p{int(label_min_pixels)}"
    return key


#: What a reusable cached tree must declare in its params.json.
_CURRENT = (GENERATOR_VERSION, MARK_VERSION)


def _complete_version(root: Path) -> tuple[str, str] | None:
    """(generator version, mark version) of a complete tree at `root`, None if absent or
    incomplete; a tree written without the mark has mark version "none"."""
    if not (root / TRUTH_DIR / "COMPLETE").exists():
        return None
    try:
        params = json.loads((root / TRUTH_DIR / "params.json").read_text())
        return str(params.get("version")), str(params.get("mark_version", "none"))
    except (OSError, ValueError, AttributeError):
        return None


@locked_generation
def ensure_phantoms(layout: str, n_studies: int = 20, seed: int = 0, size: int = 256,
                    difficulty: float = 0.5, label_size: int | None = None,
                    label_min_pixels: int = LABEL_MIN_PIXELS) -> Path:
    """Path of a phantom tree, generated once into the cache and reused afterwards.

    The tree lives at `cache_dir("phantoms") / phantom_key(...)`. Generation goes to a
    temporary sibling directory renamed into place when complete, so an interrupted run is
    never mistaken for a finished one; a tree written by another generator or mark version
    is regenerated (the versions are checked in its `params.json`). Every file is marked as
    a phantom (`marks.py`). `label_size` / `label_min_pixels`: the label rule at a working
    size recorded in the truth sidecar (see `write_rsna`).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    from brainlib.paths import cache_dir

    base = cache_dir("phantoms")
    final = base / phantom_key(layout, n_studies, seed, size, difficulty, label_size, label_min_pixels)
    if _complete_version(final) == _CURRENT:
        return final
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = base / f".tmp-{final.name}-{token}"
    old = base / f".old-{final.name}-{token}"
    writer = writers.write_rsna if layout == "rsna" else writers.write_cq500
    try:
        writer(tmp, n_studies=n_studies, seed=seed, size=size, difficulty=difficulty,
               label_size=label_size, label_min_pixels=label_min_pixels)
        if _complete_version(final) == _CURRENT:  # a concurrent run finished first
            return final
        if final.exists():  # incomplete, or from another generator/mark version: move it aside
            os.rename(final, old)
        try:
            os.rename(tmp, final)
        except OSError:
            if _complete_version(final) == _CURRENT:  # a concurrent run won the race
                return final
            raise
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    return final
