"""brainlib.data.synth: synthetic head-CT phantoms written in the RSNA and CQ500 layouts.

`make_head_study` draws and renders one study (deterministic per seed); `write_rsna` and
`write_cq500` write datasets whose loaders are those of the real data; `ensure_phantoms`
caches them; `load_truth` reads the ground-truth sidecar (labels, masks, boxes). Every file
written carries the phantom mark defined in `marks` (DICOM `Manufacturer` "brainlib phantom";
`SYNTHETIC.json` for PNG/CSV layouts), which the loaders read back.

Exports are resolved lazily (as in `brainlib.data`), so the loaders can import the leaf
`brainlib.data.synth.marks` without loading the generators (scipy, pydicom writers).

Every ``ensure_*`` cache function is wrapped in `locked_generation`: runs side by side (two
output folders, one cache) generate a phantom set once, the others wait for it and reuse it;
none can replace a tree another process is reading.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
from typing import Any, Callable, TypeVar

from brainlib._atomic import file_lock

_F = TypeVar("_F", bound=Callable[..., Any])

_HEAD_CT = "brainlib.data.synth.head_ct"
_MARKS = "brainlib.data.synth.marks"
_TRUTH = "brainlib.data.synth.truth"
_WRITERS = "brainlib.data.synth.writers"
_CACHE = "brainlib.data.synth.phantom_cache"
_BONE_SCAN = "brainlib.data.synth.bone_scan"
_BREAST_US = "brainlib.data.synth.breast_us"
_BODY_CT = "brainlib.data.synth.body_ct"

_EXPORTS = {
    **dict.fromkeys((
        "DISTRACTOR_KEYS", "FRACTURE", "GENERATOR_VERSION", "MASK_KEYS", "RSNA_TO_CQ500", "TISSUES",
        "PhantomStudy", "draw_subject", "make_head_study", "min_pixels", "render_series"), _HEAD_CT),
    **dict.fromkeys((
        "MARK_VERSION", "PHANTOM_MANUFACTURER", "SYNTHETIC_JSON", "is_phantom_header",
        "is_phantom_manufacturer", "phantom_dicom_attributes", "phantom_provenance",
        "read_synthetic_json", "write_synthetic_json"), _MARKS),
    **dict.fromkeys(("PhantomTruth", "PhantomTruthError", "load_truth"), _TRUTH),
    **dict.fromkeys(("ensure_bonescan", "load_bonescan_truth", "write_bonescan"), _BONE_SCAN),
    **dict.fromkeys(("ensure_busi", "load_duplicates", "make_breast_image", "write_busi"), _BREAST_US),
    **dict.fromkeys(("ensure_deeplesion", "normal_slices", "write_deeplesion"), _BODY_CT),
    **dict.fromkeys(("study_seed", "write_cq500", "write_rsna"), _WRITERS),
    **dict.fromkeys(("ensure_phantoms", "phantom_key"), _CACHE),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'brainlib.data.synth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def locked_generation(fn: _F) -> _F:
    """Hold a lock per phantom set (`fn` and its bound arguments) while `fn` checks and writes it.

    The lock file is ``cache_dir("locks")/<fn>-<hash>.lock``; a second process asking for the
    same set waits, then finds it complete. Locks are ``fcntl.flock`` locks (released when the
    holder dies, so a killed generator never blocks the next run).
    """
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from brainlib.paths import cache_dir

        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        ident = json.dumps([fn.__module__, fn.__qualname__, bound.arguments], sort_keys=True, default=repr)
        digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
        lock = cache_dir("locks") / f"{fn.__name__}-{digest}.lock"
        with file_lock(lock, purpose=f"brainlib generating phantoms: {fn.__name__}{tuple(bound.arguments.values())}"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
