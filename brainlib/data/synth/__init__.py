"""brainlib.data.synth: synthetic head-CT phantoms written in the RSNA and CQ500 layouts.

`make_head_study` draws and renders one study (deterministic per seed); `write_rsna` and
`write_cq500` write datasets whose loaders are those of the real data; `ensure_phantoms`
caches them; `load_truth` reads the ground-truth sidecar (labels, masks, boxes). Every file
written carries the phantom mark defined in `marks` (DICOM `Manufacturer` "brainlib phantom";
`SYNTHETIC.json` for PNG/CSV layouts), which the loaders read back.

Exports are resolved lazily (as in `brainlib.data`), so the loaders can import the leaf
`brainlib.data.synth.marks` without loading the generators (scipy, pydicom writers).
"""
from __future__ import annotations

from typing import Any

_HEAD_CT = "brainlib.data.synth.head_ct"
_MARKS = "brainlib.data.synth.marks"
_TRUTH = "brainlib.data.synth.truth"
_WRITERS = "brainlib.data.synth.writers"
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
    **dict.fromkeys(("ensure_phantoms", "phantom_key", "study_seed", "write_cq500", "write_rsna"), _WRITERS),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'brainlib.data.synth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
