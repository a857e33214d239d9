"""brainlib.data.synth: synthetic head-CT phantoms written in the RSNA and CQ500 layouts.

`make_head_study` draws and renders one study (deterministic per seed); `write_rsna` and
`write_cq500` write datasets whose loaders are those of the real data; `ensure_phantoms`
caches them; `load_truth` reads the ground-truth sidecar (labels, masks, boxes).
"""
from brainlib.data.synth.head_ct import (
    DISTRACTOR_KEYS, FRACTURE, GENERATOR_VERSION, MASK_KEYS, RSNA_TO_CQ500, TISSUES, PhantomStudy,
    draw_subject, make_head_study, min_pixels, render_series,
)
from brainlib.data.synth.truth import PhantomTruth, PhantomTruthError, load_truth
from brainlib.data.synth.writers import ensure_phantoms, phantom_key, study_seed, write_cq500, write_rsna

__all__ = [
    "DISTRACTOR_KEYS", "FRACTURE", "GENERATOR_VERSION", "MASK_KEYS", "RSNA_TO_CQ500", "TISSUES",
    "PhantomStudy", "PhantomTruth", "PhantomTruthError", "draw_subject", "ensure_phantoms", "load_truth",
    "make_head_study", "min_pixels", "phantom_key", "render_series", "study_seed", "write_cq500",
    "write_rsna",
]
