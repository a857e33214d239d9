"""Experiment pipeline for Wang et al., DrCT1/DrCT2 key-slice sequence models (CQ500, RSNA).

What it does, in the order the notebook calls it:

1. `settings` resolves the profile (`smoke`, `quick`, `full` = the paper's settings) and lists
   every deviation from the paper.
2. `prepare_data` opens each dataset (the embedded phantoms written in the CQ500 / RSNA
   layouts, or a real root), and encodes every slice once at the working size and once zoomed
   (bilinear, `zoom_size`) with the frozen VGG-16 slice encoder. The encoder is frozen, so
   these features are exactly what DrCT2 would compute on the fly; they are cached under
   `brainlib.paths.cache_dir("wang_drct2", "features", <key>)`, keyed by data + encoder
   weights (their digest) + sizes. The encoder (setting `encoder`, see `resolve_encoder`) is
   ImageNet VGG-16 from a local file when given; otherwise, on the phantoms, the documented
   substitute: VGG-16 trained on per-slice labels of a disjoint phantom set and then frozen
   (`brainlib.models.encoder_pretrain`); on real data without ImageNet weights it is random
   unless ``encoder="phantom_pretrained"`` is asked for.
3. `cross_validate` trains, fold by fold (patient-grouped `engine.kfold_split`), DrCT1, DrCT2
   and the ablations (Table 2 BCE/BCE, Table 4 resolution strategies, Fig. 6 m_key sweep with
   attention vs random proposals, Table 7 slice-level baseline), each through `engine.fit`
   with the paper's per-module learning rates, and keeps out-of-fold predictions and slice
   attention.
4. Table / figure builders (`table1` ... `table8`, `fig2_report` ... `fig8`), the paired
   t-test across folds (`ttest_folds`), `measured_claims` for `Run.compare_claims`, and
   `predictions_frame` for `Run.save_predictions`.

Metrics follow the paper: macro precision / recall / F1 at threshold 0.5 over the disease
labels, computed on the pooled out-of-fold predictions (classes without any positive scan in
the evaluated set are left out of the macro average, and the tables say how many were kept).
Fixed-length sampling takes `seq_len` evenly spaced slices; the slices it leaves out form
extra training sequences (section VI.A.1), test scans use the first sequence only.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from brainlib._atomic import atomic_dir
from brainlib.data.classes import CQ500_CLASSES, RSNA_CLASSES, RSNA_SHORT
from brainlib.data.roots import data_root_for, data_roots
from brainlib.metrics.keyslice import TASKS, key_slice_recall, key_slice_task
from brainlib.metrics.keyslice import TOP as TOP_SLICES
from brainlib.models import create_model
from brainlib.models.drct import SliceEncoder, drct_losses, slice_level_losses
from brainlib.models.encoder_pretrain import SEED_OFFSET, PretrainedEncoder, PretrainSpec, \
    pretrain_encoder
from brainlib.layers.sequence_attention import zoom_slices
from brainlib.paths import cache_dir
from brainlib.profiles import resolve_profile

PAPER = "wang_drct2"
DATASETS: tuple[str, ...] = ("cq500", "rsna")
LAYOUT_LABEL = {"cq500": "CQ500", "rsna": "RSNA"}
FEATURE_VERSION = "3"
ENCODERS: tuple[str, ...] = ("auto", "phantom_pretrained", "random", "imagenet")

#: `full` holds the paper's settings; quick/smoke shrink sizes for a shared 2-core CPU.
#: Per-dataset keys end in `_cq500` / `_rsna`; notebook overrides `folds` and `max_studies`
#: apply to both datasets.
PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "max_studies_cq500": None, "max_studies_rsna": None,
        "phantom_studies_cq500": 491, "phantom_studies_rsna": 1000,
        "phantom_size": 512, "difficulty": 0.5, "phantom_seed": 0, "cq500_min_thickness": 0.0,
        "seq_len_cq500": 32, "seq_len_rsna": 28,
        "folds_cq500": 10, "folds_rsna": 5,
        "batch_cq500": 32, "batch_rsna": 256,
        "epochs": 100,
        "image_size": 224, "zoom_size": 512,
        "m_key": 16, "fig6_m_keys": (4, 8, 12, 16, 20, 24, 28),
        "width": 1.0, "hidden": 256, "fc": (256, 128), "dropout": 0.5,
        "lr_primary": 5e-4, "lr_aps": 3e-4, "lr_fusion": 5e-4,
        "extra_sequences": True, "ablations": True,
        "report_scans": 5, "n_boot": 1000, "train_threads": 1,
        # slice encoder: "auto" = ImageNet file if given, else phantom-pretrained on phantoms
        # and random on real data; pretraining uses RSNA-layout phantoms of another seed.
        "encoder": "auto", "pretrain_studies": 200, "pretrain_epochs": 10,
        "pretrain_batch": 32, "pretrain_lr": 1e-3,
    },
    "quick": {
        "phantom_studies_cq500": 48, "phantom_studies_rsna": 48,
        "phantom_size": 128, "cq500_min_thickness": 2.5,
        "seq_len_cq500": 16, "seq_len_rsna": 14,
        "folds_cq500": 3, "folds_rsna": 3,
        "batch_cq500": 8, "batch_rsna": 8,
        "epochs": 20,
        "image_size": 64, "zoom_size": 146,
        "m_key": 8, "fig6_m_keys": (4, 8, 16),
        "width": 0.125, "hidden": 64, "fc": (64, 32),
        "report_scans": 4, "n_boot": 100,
        "pretrain_studies": 48, "pretrain_epochs": 8,
    },
    "smoke": {
        "phantom_studies_cq500": 12, "phantom_studies_rsna": 12,
        "phantom_size": 64, "cq500_min_thickness": 2.5,
        "seq_len_cq500": 8, "seq_len_rsna": 7,
        "folds_cq500": 2, "folds_rsna": 2,
        "batch_cq500": 8, "batch_rsna": 8,
        "epochs": 3,
        "image_size": 32, "zoom_size": 73,
        "m_key": 4, "fig6_m_keys": (4, 8),
        "width": 0.125, "hidden": 16, "fc": (16, 16),
        "report_scans": 2, "n_boot": 50,
        "pretrain_studies": 12, "pretrain_epochs": 1,
    },
}

#: Settings the paper does not state (our choices at every profile, never "deviations").
NOT_IN_PAPER: frozenset[str] = frozenset({
    "max_studies_cq500", "max_studies_rsna", "phantom_studies_cq500", "phantom_studies_rsna",
    "phantom_size", "difficulty", "phantom_seed", "hidden", "fc", "extra_sequences",
    "ablations", "report_scans", "n_boot", "train_threads", "encoder", "pretrain_studies",
    "pretrain_epochs", "pretrain_batch", "pretrain_lr",
})

CAPTIONS: dict[str, str] = {
    "table1": "Table 1: data distribution (scans, patients, slices per scan, sequence-level "
              "positives per label)",
    "table2": "Table 2: DrCT2 with MSE vs BCE for the primary and APS losses (fusion always "
              "BCE); macro precision/recall (%) and F1 on pooled out-of-fold predictions",
    "table3": "Table 3: DrCT1 vs DrCT2, macro precision/recall (%) and F1 at threshold 0.5 on "
              "pooled out-of-fold predictions; 95% CI of F1 by patient bootstrap; macro ROC AUC "
              "added (not in the paper) as a threshold-free reading",
    "table4": "Table 4: resolution strategies on CQ500 (DrCT1 at working size, zoomed, and "
              "'model fusion' with zoomed slices in the most attended window; DrCT2 with APS "
              "at working size vs zoomed)",
    "table5": "Table 5: key-slice tasks (Algorithm 1) on RSNA-layout scans, slice attention of "
              "the primary network; key slices from the per-slice labels; last column (not in "
              "the paper): chance level of random slice rankings",
    "table6": "Table 6: key-slice accuracy per disease: key slices of that disease found among "
              "each scan's top-h attended slices, over all its key slices (amount = slices)",
    "table7": "Table 7: sequence-level DrCT1/DrCT2 (scan labels) vs a fully supervised "
              "slice-level baseline aggregated by 'any slice positive' (RSNA-1 stand-in: "
              "3 FC layers on the same frozen slice features, trained with slice labels)",
    "table8": "Table 8: reader study as reported (junior radiologists; not reproducible "
              "offline), beside DrCT2 computed here on RSNA-layout test scans; time per scan "
              "measured on this CPU (encoder + DrCT2 from images)",
    "ttest": "DrCT2 vs DrCT1 across folds: paired t-test (scipy.stats.ttest_rel) of per-fold "
             "macro metrics, as in the paper's Discussion; fold scores share training data, "
             "so p-values are optimistic",
    "fig2": "Fig. 2: per-scan diagnostic report from DrCT2",
    "fig5": "Fig. 5: precision and recall of DrCT2 on the held-out fold over training",
    "fig6": "Fig. 6: DrCT2 macro F1 when the APS network reads m_key slices chosen by "
            "attention vs at random",
    "fig7": "Fig. 7: positions of the five most attended slices (DrCT2) over diseased scans",
    "fig8": "Fig. 8: per-disease accuracy of the slice-level baseline, DrCT1 and DrCT2",
}


# --------------------------------------------------------------------------- settings
def settings(profile: str = "quick", **overrides: Any) -> tuple[dict[str, Any], list[str]]:
    """Resolve a profile; `folds`, `max_studies` set both datasets, other keys as named.

    Returns (settings, deviations) where deviations read ``"epochs: 30 (paper: 100)"``.
    """
    over = {k: v for k, v in overrides.items() if v is not None}
    for key in ("folds", "max_studies"):
        if key in over:
            value = over.pop(key)
            over.setdefault(f"{key}_cq500", value)
            over.setdefault(f"{key}_rsna", value)
    unknown = set(over) - set(PROFILES["full"])
    if unknown:
        raise ValueError(f"unknown wang_drct2 settings {sorted(unknown)}")
    s, deviations = resolve_profile(PROFILES, profile, over)
    # Only settings the paper states are deviations; the rest are our choices (see NOT_IN_PAPER).
    deviations = [d for d in deviations if d.split(":")[0] not in NOT_IN_PAPER]
    if s["zoom_size"] < s["image_size"]:
        raise ValueError(f"zoom_size {s['zoom_size']} is smaller than image_size {s['image_size']}")
    if s["encoder"] not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {s['encoder']!r}")
    s["profile"] = profile
    return s, deviations


def datasets_for(dataset: str) -> tuple[str, ...]:
    """``"both"`` -> ("cq500", "rsna"); a single name -> (name,)."""
    if dataset == "both":
        return DATASETS
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be 'cq500', 'rsna' or 'both', got {dataset!r}")
    return (dataset,)


def data_source(data_root: Any, names: Sequence[str], s: Mapping[str, Any]) -> Any:
    """The `brainlib.report` DataSource describing this run's data (phantoms or real)."""
    from brainlib.report import DataSource

    roots = data_roots(data_root, names)
    layout = " and ".join(LAYOUT_LABEL[n] for n in names)
    if all(r is None for r in roots.values()):
        return DataSource("phantom", layout, None, {
            "difficulty": s["difficulty"], "phantom_seed": s["phantom_seed"],
            "phantom_size": s["phantom_size"],
            "studies": {n: s[f"phantom_studies_{n}"] for n in names}})
    return DataSource("real", layout, "; ".join(str(r) for r in roots.values()), {})


# --------------------------------------------------------------------------- sampling
def fixed_length_sequences(n_slices: int, seq_len: int, extra: bool = True) -> list[np.ndarray]:
    """Fixed-length sampling (section VI.A.1): `seq_len` evenly spaced slice indices; with
    `extra`, the slices left out form further evenly spaced sequences while >= seq_len remain.

    Scans shorter than `seq_len` repeat slices (evenly spaced with repeats).
    """
    if n_slices < 1 or seq_len < 1:
        raise ValueError(f"need n_slices >= 1 and seq_len >= 1, got {n_slices}, {seq_len}")
    first = np.round(np.linspace(0, n_slices - 1, seq_len)).astype(np.int64)
    out = [first]
    if extra:
        rest = np.setdiff1d(np.arange(n_slices), first)
        while len(rest) >= seq_len:
            pick = rest[np.round(np.linspace(0, len(rest) - 1, seq_len)).astype(np.int64)]
            out.append(pick)
            rest = np.setdiff1d(rest, pick)
    return out


# --------------------------------------------------------------------------- data + features
@dataclass
class ScanData:
    """One dataset as the DrCT models see it: per-scan slice features and labels."""

    name: str
    classes: tuple[str, ...]
    dataset: Any  # brainlib.data BaseDataset, one row per scan (all slices)
    features: np.ndarray  # (total slices, 2, D): working size, zoomed
    offsets: np.ndarray  # (n_scans + 1,)
    labels: np.ndarray  # (n_scans, C) 1/0/NaN
    case_ids: list[str]
    groups: np.ndarray  # patient per scan
    slice_labels: list[np.ndarray | None]  # per scan (Z, C) in `classes` order, or None
    seq_len: int
    encoder_note: str
    cache_path: Path
    cached: bool
    seconds: float
    skipped: list[Any] = field(default_factory=list)
    encoder_kind: str = "random"  # "phantom_pretrained" | "random" | "imagenet"
    pretrained: PretrainedEncoder | None = None  # the phantom pretraining, when used

    @property
    def n_scans(self) -> int:
        return len(self.case_ids)

    def n_slices(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])

    def scan_features(self, i: int) -> np.ndarray:
        return self.features[self.offsets[i]:self.offsets[i + 1]]


def _open_dataset(name: str, root: Path | None, s: Mapping[str, Any]) -> Any:
    """Open the CQ500 or RSNA (series view) dataset; phantoms are generated once and cached."""
    if root is None:
        from brainlib.data.synth import ensure_phantoms

        root = ensure_phantoms(name, s[f"phantom_studies_{name}"], s["phantom_seed"],
                               s["phantom_size"], s["difficulty"])
    kwargs = dict(size=s["image_size"], max_studies=s[f"max_studies_{name}"],
                  seed=s["phantom_seed"], progress=False)
    if name == "cq500":
        from brainlib.data import CQ500Dataset

        return CQ500Dataset(root, min_thickness=s["cq500_min_thickness"], **kwargs)
    from brainlib.data import RSNADataset

    return RSNADataset(root, view="series", **kwargs)


def _slice_label_matrix(ds: Any, i: int, classes: Sequence[str]) -> np.ndarray | None:
    """Per-slice labels of scan `i` in `classes` order (None when the layout has none)."""
    sl = ds.slice_labels(i)
    if sl is None:
        return None
    sl = np.asarray(sl, dtype=np.float32)
    names = getattr(ds, "slice_classes", None) or tuple(classes)
    cols = [list(names).index(c) for c in classes]
    return sl[:, cols]


def _feature_key(name: str, ds: Any, s: Mapping[str, Any], seed: int,
                 encoder: SliceEncoder) -> str:
    """Key of the feature cache: the pixel cache's own key (every source file with its mtime
    and size, windows, size, format version — so regenerated phantoms or new data re-encode),
    the scan grouping, the encoder and the sizes."""
    from brainlib.data.cache import cache_key

    paths = [tuple(map(str, p)) for p in ds.metadata["paths"]]
    windows = getattr(ds.pixels, "windows", None)
    ident = {
        "version": FEATURE_VERSION, "dataset": name, "cases": ds.ids,
        "paths": hashlib.sha256(json.dumps(paths).encode()).hexdigest(),
        "pixels": cache_key([p for scan in paths for p in scan], windows, s["image_size"]),
        "encoder": encoder.init.note, "encoder_weights": encoder.weights_digest(),
        "image_size": s["image_size"], "zoom_size": s["zoom_size"], "width": s["width"],
        "encoder_seed": seed,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


# --------------------------------------------------------------------------- slice encoder
def resolve_encoder(s: Mapping[str, Any], phantoms: bool, weights: str | None = None) -> str:
    """Which slice encoder a run uses: the setting, or for ``"auto"`` ImageNet when a local
    weights file is given (`weights` or ``$BRAINLIB_VGG16_WEIGHTS``), else random init.

    ``"phantom_pretrained"`` (VGG-16 trained on slice labels of a disjoint phantom split) is
    available on request but not the default: measured on the quick profile it overfitted its
    pretraining split and transferred worse than the frozen random encoder (scan-level macro
    AUC 0.42-0.47 vs 0.58-0.69; a linear probe on slice features 0.66 vs 0.70)."""
    kind = s.get("encoder", "auto")
    file = weights or os.environ.get("BRAINLIB_VGG16_WEIGHTS") or None
    if kind == "auto":
        return "imagenet" if file else "random"
    if kind == "imagenet" and not file:
        raise FileNotFoundError("encoder='imagenet' needs a local VGG-16 weights file: pass "
                                "weights=... or set BRAINLIB_VGG16_WEIGHTS")
    if kind not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {kind!r}")
    return kind


def pretrain_spec(s: Mapping[str, Any], seed: int) -> PretrainSpec:
    """The phantom pretraining of this profile: RSNA-layout phantoms with seed
    ``phantom_seed + 10_000`` (disjoint from every evaluation subject), working image size."""
    return PretrainSpec(
        width=float(s["width"]), image_size=int(s["image_size"]),
        studies=int(s["pretrain_studies"]), phantom_seed=int(s["phantom_seed"]) + SEED_OFFSET,
        phantom_size=int(s["phantom_size"]), difficulty=float(s["difficulty"]),
        epochs=int(s["pretrain_epochs"]), seed=int(seed), batch=int(s["pretrain_batch"]),
        lr=float(s["pretrain_lr"]))


def make_encoder(kind: str, s: Mapping[str, Any], seed: int = 0, weights: str | None = None,
                 device: str = "auto", progress: bool = False
                 ) -> tuple[SliceEncoder, PretrainedEncoder | None]:
    """The frozen slice encoder of `kind` (see `resolve_encoder`); phantom pretraining runs
    once and is cached (`brainlib.models.encoder_pretrain`)."""
    if kind == "imagenet":
        return SliceEncoder(s["width"], weights or os.environ.get("BRAINLIB_VGG16_WEIGHTS"),
                            seed=seed), None
    if kind == "random":
        return SliceEncoder(s["width"], False, seed=seed), None
    if kind != "phantom_pretrained":
        raise ValueError(f"unknown encoder kind {kind!r}")
    from brainlib.engine import resolve_device

    with _torch_threads(None):
        pre = pretrain_encoder(pretrain_spec(s, seed), device=str(resolve_device(device)),
                               progress=progress)
    return SliceEncoder.from_pretrained(pre.path, s["width"], pre.note), pre


def _data_encoder(data: "ScanData", s: Mapping[str, Any], seed: int,
                  weights: str | None) -> SliceEncoder:
    """The encoder that produced `data`'s features (for reports and timing from images)."""
    enc, _ = make_encoder(data.encoder_kind, s, seed, weights, device="cpu")
    return enc


def encode_scan(encoder: SliceEncoder, slices: torch.Tensor, zoom_size: int,
                batch: int = 64) -> np.ndarray:
    """Features (Z, 2, D) of one scan's slices (Z, 3, S, S): as given and zoomed (eq. 8)."""
    out = []
    device = encoder.mean.device
    with torch.inference_mode():
        for i in range(0, slices.shape[0], batch):
            x = slices[i:i + batch].float().to(device)
            out.append(torch.stack([encoder(x), encoder(zoom_slices(x, zoom_size))], 1).cpu())
    return torch.cat(out).numpy().astype(np.float32)


def prepare_data(
    name: str,
    s: Mapping[str, Any],
    data_root: Any = None,
    seed: int = 0,
    weights: str | None = None,
    progress: bool = False,
    device: str = "auto",
) -> ScanData:
    """Open dataset `name` and return its slice features, computed once and cached
    (on `device`; features are stored as float32 on disk and do not depend on it beyond
    floating-point rounding)."""
    t0 = time.perf_counter()
    root = data_root_for(data_root, name)
    ds = _open_dataset(name, root, s)
    classes = tuple(ds.classes)
    expected = CQ500_CLASSES if name == "cq500" else RSNA_CLASSES
    if classes != tuple(expected):
        raise ValueError(f"{name}: dataset classes {classes} differ from {expected}")
    if len(ds) == 0:
        raise ValueError(f"{name}: no usable scan under {getattr(ds, 'root', root)}")
    kind = resolve_encoder(s, root is None, weights)
    encoder, pre = make_encoder(kind, s, seed, weights, device=device, progress=progress)
    key = _feature_key(name, ds, s, seed, encoder)
    folder = cache_dir(PAPER, "features") / f"{name}-{key}"
    cached = (folder / "features.npy").is_file() and (folder / "offsets.npy").is_file()
    if not cached:
        from brainlib.engine import resolve_device

        encoder.to(resolve_device(device))
        feats, lengths = [], []
        iterator = range(len(ds))
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc=f"encoding {name} slices", mininterval=1.0)
        for i in iterator:
            x = _load_all_slices(ds, i)
            feats.append(encode_scan(encoder, x, s["zoom_size"]))
            lengths.append(len(x))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        _atomic_dir(folder, {"features.npy": np.concatenate(feats), "offsets.npy": offsets},
                    {"case_ids": ds.ids, "encoder": encoder.init.note, "settings": {
                        k: s[k] for k in ("image_size", "zoom_size", "width")}})
    features = np.load(folder / "features.npy", mmap_mode="r")
    offsets = np.load(folder / "offsets.npy")
    if len(offsets) != len(ds) + 1:
        raise ValueError(f"{folder}: cached features do not match the dataset "
                         f"({len(offsets) - 1} scans vs {len(ds)}); delete the folder")
    slice_labels = [_slice_label_matrix(ds, i, classes) for i in range(len(ds))]
    return ScanData(
        name=name, classes=classes, dataset=ds, features=features, offsets=offsets,
        labels=np.asarray(ds.labels, dtype=np.float32), case_ids=ds.ids,
        groups=np.asarray(ds.groups).astype(str), slice_labels=slice_labels,
        seq_len=int(s[f"seq_len_{name}"]), encoder_note=encoder.init.note,
        cache_path=folder, cached=cached, seconds=time.perf_counter() - t0,
        skipped=list(getattr(ds, "skipped", [])), encoder_kind=kind, pretrained=pre,
    )


def record_provenance(run: Any, datas: Mapping[str, ScanData] | Sequence[ScanData]) -> None:
    """Put each dataset's skipped files, encoder initialisation and feature cache in the run
    (a randomly initialised encoder is a deviation, so every later caption states it)."""
    items = list(datas.values()) if isinstance(datas, Mapping) else list(datas)
    for d in items:
        run.add_skipped(d.skipped)
        run.add_note(f"{d.name}: slice encoder = {d.encoder_note}")
        run.add_note(f"{d.name}: features {'reused from' if d.cached else 'computed into'} "
                     f"{d.cache_path} ({d.seconds:.1f} s)")
    kinds = {d.encoder_kind for d in items}
    if "random" in kinds:
        run.add_deviation("slice encoder: frozen VGG-16 with random (seeded Kaiming) weights, "
                          "not ImageNet-pretrained (no weights offline)")
    pre = next((d.pretrained for d in items if d.pretrained is not None), None)
    if pre is not None:
        sm = pre.summary
        run.add_deviation(
            "slice encoder: VGG-16 pretrained here on a disjoint phantom set instead of "
            f"ImageNet (RSNA-layout phantoms, seed {pre.spec.phantom_seed}, {pre.spec.studies} "
            f"studies, {sm['train_slices']} slices, per-slice labels any + 5 subtypes, "
            f"{pre.spec.epochs} epochs; held-out slice AUC {sm['val_auc']:.3f}), then frozen")
        run.add_note(f"encoder pretraining {'reused from' if pre.cached else 'written to'} "
                     f"{pre.path.parent} ({pre.seconds:.1f} s); held-out slice macro AUC per "
                     f"epoch {[round(v, 3) for v in sm['val_auc_per_epoch']]}")


def _load_all_slices(ds: Any, i: int) -> torch.Tensor:
    """All slices of scan `i` (Z, 3, S, S), whatever `seq_len` the dataset was opened with."""
    seq_len = getattr(ds, "seq_len", None)
    ds.seq_len = None
    try:
        return ds.load_x(i)
    finally:
        ds.seq_len = seq_len


def _atomic_dir(folder: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Write arrays + meta.json so that `folder` appears complete or not at all."""
    with atomic_dir(folder) as tmp:
        for fname, arr in arrays.items():
            np.save(tmp / fname, arr)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))


class SequenceSet(torch.utils.data.Dataset):
    """Fixed-length feature sequences of some scans (items for `engine.fit`/`predict`).

    Items: ``x`` (M, 2, D) features, ``y`` (C,), ``id`` (case id; extra training sequences get
    ``#k``), ``y_slice`` (M, C) per-slice labels (NaN when unknown), ``position`` (M,) slice
    indices in the scan.
    """

    def __init__(self, data: ScanData, scans: Sequence[int], extra: bool) -> None:
        self.data = data
        self.items: list[tuple[int, int, np.ndarray]] = []
        for scan in scans:
            seqs = fixed_length_sequences(data.n_slices(int(scan)), data.seq_len, extra)
            self.items += [(int(scan), k, idx) for k, idx in enumerate(seqs)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        scan, k, idx = self.items[i]
        d = self.data
        x = np.asarray(d.scan_features(scan)[idx], dtype=np.float32)
        sl = d.slice_labels[scan]
        y_slice = (sl[idx] if sl is not None
                   else np.full((len(idx), len(d.classes)), np.nan, np.float32))
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(d.labels[scan].copy()),
                "id": d.case_ids[scan] + (f"#{k}" if k else ""),
                "y_slice": torch.from_numpy(np.ascontiguousarray(y_slice)),
                "position": torch.from_numpy(idx.copy())}


# --------------------------------------------------------------------------- metrics
def macro_prf(y_true: np.ndarray, y_score: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Macro precision, recall, F1 at `threshold`, over the classes with at least one positive
    case (others have no defined recall); ``n_classes`` says how many were averaged.

    Same definition as scikit-learn's ``precision_recall_fscore_support(average="macro",
    zero_division=0)`` on those columns (tested against it); written with numpy counts
    because the bootstraps call it thousands of times. NaN labels count as negative.
    """
    y = np.nan_to_num(np.asarray(y_true, dtype=float)) > 0
    pred = np.asarray(y_score, dtype=float) >= threshold
    keep = y.any(axis=0)
    if not keep.any():
        return {"precision": np.nan, "recall": np.nan, "f1": np.nan, "n_classes": 0}
    y, pred = y[:, keep], pred[:, keep]
    tp = (y & pred).sum(0).astype(float)
    fp = (~y & pred).sum(0).astype(float)
    fn = (y & ~pred).sum(0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = tp / (tp + fn)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return {"precision": float(precision.mean()), "recall": float(recall.mean()),
            "f1": float(f1.mean()), "n_classes": int(keep.sum())}


def _metric_fn(preds: Any) -> dict[str, float]:
    m = macro_prf(preds.y_true, preds.y_score)
    return {"precision": m["precision"], "recall": m["recall"], "f1": m["f1"]}


# --------------------------------------------------------------------------- variants
def _in_base(b: Mapping[str, Any]) -> torch.Tensor:
    return b["x"][:, :, 0]


def _in_zoom(b: Mapping[str, Any]) -> torch.Tensor:
    return b["x"][:, :, 1]


def _in_both(b: Mapping[str, Any]) -> torch.Tensor:
    return b["x"]


def _in_base_twice(b: Mapping[str, Any]) -> torch.Tensor:
    return b["x"][:, :, [0, 0]]


def _in_window(lo: int, hi: int) -> Callable[[Mapping[str, Any]], torch.Tensor]:
    def fn(b: Mapping[str, Any]) -> torch.Tensor:
        x = b["x"][:, :, 0].clone()
        x[:, lo:hi] = b["x"][:, lo:hi, 1]
        return x
    return fn


@dataclass(frozen=True)
class Variant:
    """One trained configuration: model name, losses, input, m_key."""

    name: str
    model: str
    loss: str  # "mse" | "bce" (primary/APS) | "slice"
    inputs: str  # "base" | "zoom" | "both" | "base_twice" | "window"
    m_key: int | None = None
    label: str = ""


def variants_for(name: str, s: Mapping[str, Any]) -> list[Variant]:
    """The configurations trained on dataset `name` (core first, then ablations)."""
    m = s[f"seq_len_{name}"]
    mk = min(s["m_key"], m)
    out = [Variant("drct1", "drct1", "mse", "base", label="DrCT1"),
           Variant("drct2", "drct2", "mse", "both", mk, label="DrCT2")]
    if not s["ablations"]:
        return out
    out.append(Variant("drct2_bce", "drct2", "bce", "both", mk, label="DrCT2 (BCE/BCE)"))
    if name == "cq500":
        out += [Variant("drct1_highres", "drct1", "mse", "zoom", label="DrCT1, zoomed input"),
                Variant("drct1_model_fusion", "drct1", "mse", "window",
                        label="DrCT1, model fusion"),
                Variant("drct2_aps_base", "drct2", "mse", "base_twice", mk,
                        label="DrCT2, APS at working size")]
        for k in s["fig6_m_keys"]:
            if k > m:
                continue
            if k != mk:
                out.append(Variant(f"drct2_k{k}", "drct2", "mse", "both", k,
                                   label=f"DrCT2, m_key={k}"))
            out.append(Variant(f"drct2_random_k{k}", "drct2_random", "mse", "both", k,
                               label=f"DrCT2, random m_key={k}"))
    else:
        out.append(Variant("slice_baseline", "drct_slice_baseline", "slice", "base",
                           label="Slice-level baseline (any slice)"))
    return out


def _input_fn(v: Variant, window: tuple[int, int] | None) -> Callable:
    if v.inputs == "window":
        if window is None:
            raise ValueError("model fusion needs the attention window of the fold's DrCT2")
        return _in_window(*window)
    return {"base": _in_base, "zoom": _in_zoom, "both": _in_both,
            "base_twice": _in_base_twice}[v.inputs]


def build_model(v: Variant, data: ScanData, s: Mapping[str, Any], seed: int) -> nn.Module:
    """Create the registered model of variant `v` with the profile's sizes."""
    d = int(data.features.shape[-1])
    common = dict(num_classes=len(data.classes), feature_dim=d, fc=tuple(s["fc"]),
                  dropout=s["dropout"], class_names=data.classes)
    if v.model == "drct_slice_baseline":
        return create_model(v.model, **common)
    if v.model == "drct1":
        return create_model(v.model, hidden=s["hidden"], **common)
    return create_model(v.model, hidden=s["hidden"], m_key=v.m_key, seed=seed,
                        zoom_size=s["zoom_size"], **common)


class _Slim(nn.Module):
    """Prediction wrapper keeping only per-scan outputs we store (drops feature attention)."""

    KEEP = ("logits", "slice_attention", "key_index")

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.model(x)
        return {k: out[k] for k in self.KEEP if k in out}


# --------------------------------------------------------------------------- cross-validation
@dataclass
class CVResult:
    """Out-of-fold results of every variant on one dataset."""

    data: ScanData
    settings: dict[str, Any]
    variants: list[Variant]
    fold_of: np.ndarray  # (n_scans,) test fold of each scan
    scores: dict[str, np.ndarray]  # variant -> (n_scans, C) out-of-fold probabilities
    attention: dict[str, np.ndarray]  # variant -> (n_scans, M) slice attention (test sequence)
    positions: np.ndarray  # (n_scans, M) slice index of each test-sequence position
    fold_metrics: pd.DataFrame  # dataset, model, fold, precision, recall, f1
    histories: dict[tuple[str, int], pd.DataFrame]
    states: dict[tuple[str, int], dict[str, torch.Tensor]]  # drct1/drct2 weights per fold
    windows: dict[int, tuple[int, int]]  # model-fusion window per fold
    seconds: dict[str, float]
    device: str

    @property
    def name(self) -> str:
        return self.data.name

    def metrics(self, variant: str) -> dict[str, float]:
        return macro_prf(self.data.labels, self.scores[variant])

    def key(self, column: str = "any") -> np.ndarray:
        """(n_scans, M) bool: test-sequence slices showing `column` (RSNA per-slice labels)."""
        c = list(self.data.classes).index(column)
        out = np.zeros(self.positions.shape, bool)
        for i, sl in enumerate(self.data.slice_labels):
            if sl is None:
                raise ValueError(f"{self.name}: scan {self.data.case_ids[i]} has no slice labels")
            out[i] = np.nan_to_num(sl[self.positions[i], c]) > 0
        return out


def _input_stats(loader: Any, input_fn: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std of the primary-network input over the training slices."""
    total, sq, n = None, None, 0
    for batch in loader:
        x = input_fn(batch)
        x = (x[:, :, 0] if x.dim() == 4 else x).reshape(-1, x.shape[-1]).double()
        total = x.sum(0) if total is None else total + x.sum(0)
        sq = (x * x).sum(0) if sq is None else sq + (x * x).sum(0)
        n += x.shape[0]
    mean = total / n
    std = (sq / n - mean * mean).clamp_min(0).sqrt()
    return mean.float(), std.float()


def _fusion_window(model: nn.Module, loader: Any, data: ScanData, device: str,
                   width: int) -> tuple[int, int]:
    """Window of `width` consecutive positions holding the most top-5 attended slices of the
    DrCT2 model over the (training) scans with any positive label (Fig. 7 -> Table 4)."""
    from brainlib.engine import predict

    preds = predict(_Slim(model), loader, input_fn=_in_both, device=device)
    y = np.nan_to_num(preds.y_true).max(axis=1) > 0
    att = preds.extras["slice_attention"][y if y.any() else slice(None)]
    m = att.shape[1]
    counts = np.bincount(np.argsort(-att, axis=1, kind="stable")[:, :5].ravel(), minlength=m)
    width = max(1, min(width, m))
    sums = np.convolve(counts, np.ones(width, int), mode="valid")
    lo = int(np.argmax(sums))
    return lo, lo + width


def cross_validate(
    data: ScanData,
    s: Mapping[str, Any],
    seed: int = 0,
    device: str = "auto",
    variants: Sequence[Variant] | None = None,
    progress: bool = False,
) -> CVResult:
    """k-fold CV (patients never split) of every variant; returns out-of-fold results.

    Each fold trains every variant of `variants_for` (or `variants`) with `engine.fit` on
    the training scans' sequences (extra sequences included) for ``epochs`` epochs, without
    model selection on the held-out fold (the last epoch is kept; DrCT2 also logs held-out
    precision/recall per epoch for Fig. 5), then predicts the held-out scans' first sequence.
    Same seed, same result on CPU.
    """
    with _torch_threads(s.get("train_threads")):
        return _cross_validate(data, s, seed, device, variants, progress)


@contextmanager
def _torch_threads(n: int | None):
    """Temporarily set torch's intra-op threads (restored afterwards). The DrCT heads are tiny
    (a GRU over a few dozen slices), so one thread avoids thread contention on a shared CPU
    (`train_threads` in the profile; None leaves torch's setting alone)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _cross_validate(data: ScanData, s: Mapping[str, Any], seed: int, device: str,
                    variants: Sequence[Variant] | None, progress: bool) -> CVResult:
    from brainlib.engine import fit, kfold_split, make_loader, predict, resolve_device, \
        seed_everything

    dev = str(resolve_device(device))
    variants = list(variants or variants_for(data.name, s))
    n, m, c = data.n_scans, data.seq_len, len(data.classes)
    folds = kfold_split(data.labels, int(s[f"folds_{data.name}"]), seed=seed, groups=data.groups)
    batch = int(s[f"batch_{data.name}"])
    fold_of = np.full(n, -1)
    scores = {v.name: np.full((n, c), np.nan, np.float32) for v in variants}
    attention = {v.name: np.full((n, m), np.nan, np.float32) for v in variants}
    positions = np.stack([fixed_length_sequences(data.n_slices(i), m, False)[0] for i in range(n)])
    rows, histories, states, windows = [], {}, {}, {}
    seconds = {v.name: 0.0 for v in variants}
    window_width = max(1, round(7 * m / 32))  # the paper's slices 16-22 of 32
    order = sorted(variants, key=lambda v: v.inputs == "window")  # fusion after its DrCT2
    it = [(f, v) for f in range(len(folds)) for v in order]
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"{data.name} folds x variants", mininterval=1.0)
    for fold, v in it:
        train_idx, test_idx = folds[fold]
        fold_of[test_idx] = fold
        train_set = SequenceSet(data, train_idx, extra=bool(s["extra_sequences"]))
        test_set = SequenceSet(data, test_idx, extra=False)
        run_seed = int(seed) * 1000 + fold
        train_loader = make_loader(train_set, batch, shuffle=True, seed=run_seed)
        test_loader = make_loader(test_set, batch, shuffle=False)
        if v.inputs == "window" and fold not in windows:
            raise ValueError("model fusion needs DrCT2 trained first in the same fold")
        seed_everything(run_seed)
        model = build_model(v, data, s, run_seed)
        losses = slice_level_losses() if v.loss == "slice" else drct_losses(v.model, v.loss)
        groups = (model.lr_groups(s["lr_primary"], s["lr_aps"], s["lr_fusion"])
                  if hasattr(model, "lr_groups") and v.model != "drct1" else None)
        input_fn = _input_fn(v, windows.get(fold))
        if hasattr(model, "set_feature_stats"):
            model.set_feature_stats(*_input_stats(train_loader, input_fn))
        curve = v.name == "drct2"
        t0 = time.perf_counter()
        result = fit(model, train_loader, test_loader if curve else None, losses=losses,
                     epochs=int(s["epochs"]), lr=s["lr_primary"], param_groups=groups,
                     monitor="epoch", mode="max", metric_fn=_metric_fn if curve else None,
                     device=dev, seed=run_seed, progress=False, input_fn=input_fn)
        seconds[v.name] += time.perf_counter() - t0
        model = result.model.eval()
        histories[(v.name, fold)] = result.history
        preds = predict(_Slim(model), test_loader, input_fn=input_fn, device=dev)
        idx = np.asarray(test_idx)
        if preds.ids != [data.case_ids[i] for i in idx]:
            raise RuntimeError("prediction order differs from the test scans")
        scores[v.name][idx] = preds.y_score
        if "slice_attention" in preds.extras:
            attention[v.name][idx] = preds.extras["slice_attention"]
        met = macro_prf(data.labels[idx], preds.y_score)
        rows.append({"dataset": data.name, "model": v.name, "fold": fold, **met})
        if v.name in ("drct1", "drct2"):
            states[(v.name, fold)] = {k: t.detach().cpu().clone()
                                      for k, t in model.state_dict().items()}
        if v.name == "drct2":
            windows[fold] = _fusion_window(model, make_loader(
                SequenceSet(data, train_idx, extra=False), batch), data, dev, window_width)
    return CVResult(data, dict(s), variants, fold_of, scores, attention, positions,
                    pd.DataFrame(rows), histories, states, windows, seconds, dev)


# --------------------------------------------------------------------------- tables
def _fmt(met: Mapping[str, float]) -> dict[str, Any]:
    """Paper units: precision/recall in percent, F1 as a fraction."""
    return {"precision_%": round(100 * met["precision"], 2), "recall_%": round(100 * met["recall"], 2),
            "f1": round(met["f1"], 4), "classes_scored": met["n_classes"]}


def _f1_ci(cv: CVResult, variant: str, n_boot: int, seed: int) -> tuple[float, float]:
    from brainlib.metrics import bootstrap_ci

    try:
        ci = bootstrap_ci(lambda y, p: macro_prf(y, p)["f1"], cv.data.labels,
                          cv.scores[variant], n_boot=n_boot, seed=seed, groups=cv.data.groups)
    except ValueError:  # no resample with a positive case (tiny smoke sets)
        return float("nan"), float("nan")
    return ci.low, ci.high


def _auc_macro(cv: CVResult, variant: str) -> float:
    """Threshold-free companion of the paper's metrics: mean ROC AUC over the labels where
    it is defined (scikit-learn, via brainlib.metrics)."""
    from brainlib.metrics import classification_metrics

    return classification_metrics(cv.data.labels, cv.scores[variant], task="multilabel",
                                  per_class=False)["auc_macro"]


def table1(datas: Sequence[ScanData]) -> pd.DataFrame:
    """Table 1: patients, scans, labels, slices per scan, positives per label (sequence level)."""
    rows: dict[str, dict[str, Any]] = {}

    def put(row: str, col: str, value: Any) -> None:
        rows.setdefault(row, {})[col] = value

    for d in datas:
        col = LAYOUT_LABEL[d.name]
        lengths = np.diff(d.offsets)
        put("Patients", col, len(np.unique(d.groups)))
        put("Scans", col, d.n_scans)
        put("Diseases (labels)", col, len(d.classes))
        put("Slices per scan", col, f"{lengths.min()}-{lengths.max()}")
        put("After sampling", col, d.seq_len)
        pos = np.nansum(d.labels, axis=0).astype(int)
        for cls, p in zip(d.classes, pos):
            put(f"{_label_name(d.name, cls)}", col, int(p))
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "item"
    return frame.reset_index().fillna("")


_CQ500_NAMES = {"ICH": "Any (ICH)", "IPH": "Intraparenchymal (IPH)",
                "IVH": "Intraventricular (IVH)", "SDH": "Subdural (SDH)", "EDH": "Epidural (EDH)",
                "SAH": "Subarachnoid (SAH)", "CalvarialFracture": "Calvarial fracture",
                "MassEffect": "Mass effect", "MidlineShift": "Midline shift"}
_RSNA_NAMES = {"any": "Any (ICH)", "intraparenchymal": "Intraparenchymal (IPH)",
               "intraventricular": "Intraventricular (IVH)", "subdural": "Subdural (SDH)",
               "epidural": "Epidural (EDH)", "subarachnoid": "Subarachnoid (SAH)"}


def _label_name(dataset: str, cls: str) -> str:
    return (_CQ500_NAMES if dataset == "cq500" else _RSNA_NAMES).get(cls, cls)


def table2(cvs: Sequence[CVResult]) -> pd.DataFrame:
    """Table 2: MSE vs BCE for the primary and APS losses (DrCT2)."""
    rows = []
    for cv in cvs:
        for v, loss in (("drct2_bce", "BCE"), ("drct2", "MSE")):
            if v in cv.scores:
                rows.append({"model": "DrCT2", "dataset": LAYOUT_LABEL[cv.name],
                             "loss_primary_aps": loss, **_fmt(cv.metrics(v))})
    return pd.DataFrame(rows)


def table3(cvs: Sequence[CVResult], seed: int = 0) -> pd.DataFrame:
    """Table 3: DrCT1 vs DrCT2 on each dataset, with patient-bootstrap 95% CIs of F1."""
    rows = []
    for cv in cvs:
        for v, label in (("drct1", "DrCT1"), ("drct2", "DrCT2")):
            lo, hi = _f1_ci(cv, v, int(cv.settings["n_boot"]), seed)
            rows.append({"dataset": LAYOUT_LABEL[cv.name], "model": label, **_fmt(cv.metrics(v)),
                         "f1_ci_low": round(lo, 4), "f1_ci_high": round(hi, 4),
                         "auc_macro": round(_auc_macro(cv, v), 4)})
    return pd.DataFrame(rows)


def table4(cv: CVResult) -> pd.DataFrame:
    """Table 4 (CQ500): resolution strategies."""
    s = cv.settings
    lo_hi = sorted(set(cv.windows.values()))
    win = ", ".join(f"positions {a + 1}-{b}" for a, b in lo_hi)
    base, zoom = s["image_size"], s["zoom_size"]
    spec = [
        ("drct1", "DrCT1", "Original", f"Primary: {base}x{base}"),
        ("drct1_highres", "DrCT1", "High-resolution input", f"Primary: {zoom}x{zoom}"),
        ("drct1_model_fusion", "DrCT1", "Model fusion",
         f"Primary: {base}x{base}, {zoom}x{zoom} at {win} of {cv.data.seq_len}"),
        ("drct2_aps_base", "DrCT2", "With APS", f"Primary: {base}x{base}; APS: {base}x{base}"),
        ("drct2", "DrCT2", "With APS", f"Primary: {base}x{base}; APS: {zoom}x{zoom}"),
    ]
    return pd.DataFrame([{"model": m, "dataset": LAYOUT_LABEL[cv.name], "strategy": st,
                          "input_resolution": res, **_fmt(cv.metrics(v))}
                         for v, m, st, res in spec if v in cv.scores])


def _random_attention(shape: tuple[int, int], draws: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng([seed, 5])
    return [rng.random(shape) for _ in range(draws)]


def table5(cv: CVResult, draws: int = 20, seed: int = 0) -> pd.DataFrame:
    """Table 5: the three key-slice tasks, DrCT1 vs DrCT2 (key = per-slice 'any' labels),
    beside the chance level of random slice rankings (mean of `draws` seeded draws; not in
    the paper, added to read the numbers)."""
    key = cv.key("any")
    rand = _random_attention(key.shape, draws, seed)
    rows = []
    for task in TASKS:
        a1, n = key_slice_task(cv.attention["drct1"], key, task)
        a2, _ = key_slice_task(cv.attention["drct2"], key, task)
        chance = np.mean([key_slice_task(r, key, task)[0] for r in rand]) if n else np.nan
        rows.append({"task": f"{task.capitalize()} task", "scans": n,
                     "DrCT1_%": round(a1, 2), "DrCT2_%": round(a2, 2),
                     "random_ranking_%": round(float(chance), 2)})
    return pd.DataFrame(rows)


def table6(cv: CVResult) -> pd.DataFrame:
    """Table 6: key-slice accuracy per disease (slice-weighted recall in the top-h)."""
    paper = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")
    order = [c for c in paper if c in cv.data.classes]
    order += [c for c in cv.data.classes if c not in order]
    rows = []
    rand = _random_attention(cv.positions.shape, 20, 0)
    for cls in order:
        key = cv.key(cls)
        a1, amount = key_slice_recall(cv.attention["drct1"], key)
        a2, _ = key_slice_recall(cv.attention["drct2"], key)
        chance = np.mean([key_slice_recall(r, key)[0] for r in rand]) if amount else np.nan
        rows.append({"disease": RSNA_SHORT.get(cls, cls), "amount_slices": amount,
                     "DrCT1_accuracy_%": round(a1, 2), "DrCT2_accuracy_%": round(a2, 2),
                     "random_ranking_%": round(float(chance), 2)})
    return pd.DataFrame(rows)


def table7(cv: CVResult) -> pd.DataFrame:
    """Table 7: slice-level baseline (any slice positive) vs DrCT1 and DrCT2."""
    spec = (("slice_baseline", "Slice-level baseline (RSNA-1 stand-in)"), ("drct1", "DrCT1"),
            ("drct2", "DrCT2"))
    return pd.DataFrame([{"dataset": LAYOUT_LABEL[cv.name], "model": label,
                          **_fmt(cv.metrics(v))} for v, label in spec if v in cv.scores])


def per_class_accuracy(cv: CVResult, variant: str) -> pd.Series:
    """Accuracy per label at threshold 0.5 (Fig. 8), NaN labels ignored."""
    y, p = cv.data.labels, cv.scores[variant] >= 0.5
    acc = [float(np.mean(p[~np.isnan(y[:, j]), j] == (y[~np.isnan(y[:, j]), j] > 0)))
           for j in range(y.shape[1])]
    return pd.Series(acc, index=list(cv.data.classes), name=variant)


def ttest_folds(cvs: Sequence[CVResult]) -> pd.DataFrame:
    """DrCT2 vs DrCT1 per-fold macro metrics: paired t-test per dataset and pooled."""
    from brainlib.metrics import paired_t_test

    fm = pd.concat([cv.fold_metrics for cv in cvs], ignore_index=True)
    rows = []
    scopes = [(LAYOUT_LABEL[cv.name], [cv.name]) for cv in cvs]
    if len(cvs) > 1:
        scopes.append(("pooled", [cv.name for cv in cvs]))
    for scope, names in scopes:
        sub = fm[fm["dataset"].isin(names)]
        a = sub[sub["model"] == "drct2"].sort_values(["dataset", "fold"])
        b = sub[sub["model"] == "drct1"].sort_values(["dataset", "fold"])
        for metric in ("precision", "recall", "f1"):
            va, vb = a[metric].to_numpy(), b[metric].to_numpy()
            ok = np.isfinite(va) & np.isfinite(vb)
            row = {"scope": scope, "metric": metric, "folds": int(ok.sum()),
                   "DrCT1_mean": round(float(np.mean(vb[ok])), 4) if ok.any() else np.nan,
                   "DrCT2_mean": round(float(np.mean(va[ok])), 4) if ok.any() else np.nan}
            if ok.sum() >= 2 and np.any(va[ok] != vb[ok]):
                res = paired_t_test(va[ok], vb[ok])
                row.update(mean_difference=round(res.mean_difference, 4), t=round(res.t, 3),
                           p_value=round(res.p_value, 5))
            else:
                row.update(mean_difference=np.nan, t=np.nan, p_value=np.nan)
            rows.append(row)
    return pd.DataFrame(rows)


def fig6_table(cv: CVResult) -> pd.DataFrame:
    """Macro F1 by m_key for attention-chosen vs random APS slices (Fig. 6 data)."""
    rows = []
    for k in cv.settings["fig6_m_keys"]:
        att = "drct2" if k == min(cv.settings["m_key"], cv.data.seq_len) else f"drct2_k{k}"
        rnd = f"drct2_random_k{k}"
        if att in cv.scores and rnd in cv.scores:
            rows.append({"m_key": k, "attention_f1": round(cv.metrics(att)["f1"], 4),
                         "random_f1": round(cv.metrics(rnd)["f1"], 4)})
    return pd.DataFrame(rows)


def top5_positions(cv: CVResult, variant: str = "drct2") -> tuple[np.ndarray, int]:
    """Counts of 1-based sequence positions among the top-5 attended slices over scans with
    any positive label, and the number of such scans (Fig. 7)."""
    diseased = np.nan_to_num(cv.data.labels).max(axis=1) > 0
    att = cv.attention[variant][diseased]
    m = att.shape[1]
    top = np.argsort(-att, axis=1, kind="stable")[:, :min(5, m)]
    return np.bincount(top.ravel(), minlength=m), int(diseased.sum())


def predictions_frame(cv: CVResult, variants: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-case out-of-fold predictions: case_id, label_<c>, score_<c>, fold, model."""
    frames = []
    for v in variants or list(cv.scores):
        df = pd.DataFrame({"case_id": cv.data.case_ids})
        for j, c in enumerate(cv.data.classes):
            df[f"label_{c}"] = cv.data.labels[:, j]
            df[f"score_{c}"] = cv.scores[v][:, j]
        df["fold"] = cv.fold_of
        df["model"] = v
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- claims
_CLAIM_CLASS = {"ICH": "any", "IPH": "intraparenchymal", "IVH": "intraventricular",
                "SDH": "subdural", "EDH": "epidural", "SAH": "subarachnoid",
                "CalvarialFracture": "calvarial_fracture", "MassEffect": "mass_effect",
                "MidlineShift": "midline_shift"}


def measured_claims(cvs: Sequence[CVResult], datas: Sequence[ScanData],
                    seconds_per_scan: float | None = None, seed: int = 0) -> pd.DataFrame:
    """Measured values under the claim ids of `brainlib/claims/wang_drct2.yaml`, with units
    (precision/recall/accuracy in percent, F1 as a fraction), 95% CIs by patient bootstrap,
    paired-bootstrap CIs and p-values for comparisons (fold t-test for DrCT2 vs DrCT1)."""
    from brainlib.metrics import bootstrap_ci, paired_bootstrap

    rows: list[dict[str, Any]] = []

    def add(cid: str, value: float, lo: float = np.nan, hi: float = np.nan, p: float = np.nan,
            note: str = "", unit: str | None = None) -> None:
        rows.append({"claim_id": cid, "value": float(value), "ci_low": float(lo),
                     "ci_high": float(hi), "p_value": float(p), "note": note, "unit": unit})

    def scale_unit(metric: str) -> tuple[float, str]:
        return (1.0, "fraction") if metric == "f1" else (100.0, "percent")

    def prf(cv: CVResult, variant: str, prefix: str) -> None:
        for metric in ("precision", "recall", "f1"):
            k, unit = scale_unit(metric)
            fn = (lambda y, p, m=metric: macro_prf(y, p)[m])
            try:
                ci = bootstrap_ci(fn, cv.data.labels, cv.scores[variant],
                                  n_boot=int(cv.settings["n_boot"]), seed=seed,
                                  groups=cv.data.groups)
            except ValueError as err:
                add(f"{prefix}/{metric}", k * fn(cv.data.labels, cv.scores[variant]),
                    note=f"no CI: {err}", unit=unit)
                continue
            add(f"{prefix}/{metric}", k * ci.estimate, k * ci.low, k * ci.high, unit=unit)

    def paired(cid: str, cv: CVResult, a: str, b: str, metric: str = "f1",
               p: float | None = None, note: str = "") -> None:
        k, unit = scale_unit(metric)
        fn = (lambda y, s_, m=metric: macro_prf(y, s_)[m])
        try:
            res = paired_bootstrap(fn, cv.data.labels, cv.scores[a], cv.scores[b],
                                   n_boot=int(cv.settings["n_boot"]), seed=seed,
                                   groups=cv.data.groups)
        except ValueError as err:  # too few cases for any defined resample
            diff = fn(cv.data.labels, cv.scores[a]) - fn(cv.data.labels, cv.scores[b])
            add(cid, k * diff, p=np.nan if p is None else p, note=f"no CI: {err}", unit=unit)
            return
        add(cid, k * res.difference, k * res.low, k * res.high,
            res.p_value if p is None else p, note or "paired patient bootstrap", unit)

    def paired_keys(cid: str, cv: CVResult, key: np.ndarray, task: str | None) -> None:
        fn = ((lambda k_, a_: key_slice_task(a_, k_, task)[0]) if task
              else (lambda k_, a_: key_slice_recall(a_, k_)[0]))
        try:
            res = paired_bootstrap(fn, key, cv.attention["drct2"], cv.attention["drct1"],
                                   n_boot=int(cv.settings["n_boot"]), seed=seed,
                                   groups=cv.data.groups)
        except ValueError as err:  # no scan qualifies for the task
            diff = fn(key, cv.attention["drct2"]) - fn(key, cv.attention["drct1"])
            add(cid, diff, note=f"no CI: {err}", unit="percent")
            return
        add(cid, res.difference, res.low, res.high, res.p_value, "paired scan bootstrap",
            "percent")

    for d in datas:
        lengths = np.diff(d.offsets)
        add(f"table1/{d.name}/patients", len(np.unique(d.groups)))
        add(f"table1/{d.name}/scans", d.n_scans)
        add(f"table1/{d.name}/diseases", len(d.classes))
        add(f"table1/{d.name}/slices_min", lengths.min())
        add(f"table1/{d.name}/slices_max", lengths.max())
        add(f"table1/{d.name}/sampled_slices", d.seq_len)
        for cls, npos in zip(d.classes, np.nansum(d.labels, axis=0)):
            add(f"table1/{d.name}/{_CLAIM_CLASS.get(cls, cls)}/scans", npos)
    tt = ttest_folds(cvs) if cvs else None
    for cv in cvs:
        n = cv.name
        f1 = {v: cv.metrics(v)["f1"] for v in cv.scores}
        prf(cv, "drct1", f"table3/{n}/drct1")
        prf(cv, "drct2", f"table3/{n}/drct2")
        add(f"abstract/{n}/drct2/f1", f1["drct2"], unit="fraction")
        add(f"conclusion/{n}/drct2/f1", f1["drct2"], unit="fraction")
        add(f"text/{n}/drct2_minus_drct1/f1", 100 * (f1["drct2"] - f1["drct1"]), unit="percent")
        scope = tt[tt["scope"] == LAYOUT_LABEL[n]]
        for metric in ("precision", "recall", "f1"):
            r = scope[scope["metric"] == metric]
            paired(f"cmp/table3/{n}/drct2_vs_drct1/{metric}", cv, "drct2", "drct1", metric,
                   p=float(r["p_value"].iloc[0]),
                   note=f"p: paired t-test over {int(r['folds'].iloc[0])} folds; "
                        "CI: paired patient bootstrap")
        if "drct2_bce" in cv.scores:
            prf(cv, "drct2_bce", f"table2/{n}/bce")
            prf(cv, "drct2", f"table2/{n}/mse")
            paired(f"cmp/table2/{n}/mse_vs_bce/f1", cv, "drct2", "drct2_bce")
        if n == "cq500" and "drct1_highres" in cv.scores:
            for v, cid in (("drct1", "drct1_original"), ("drct1_highres", "drct1_highres"),
                           ("drct1_model_fusion", "drct1_model_fusion"),
                           ("drct2_aps_base", "drct2_aps224"), ("drct2", "drct2_aps512")):
                prf(cv, v, f"table4/cq500/{cid}")
            add("text/cq500/drct1_highres_minus_original/f1",
                100 * (f1["drct1_highres"] - f1["drct1"]), unit="percent")
            add("text/cq500/drct1_fusion_minus_original/f1",
                100 * (f1["drct1_model_fusion"] - f1["drct1"]), unit="percent")
            paired("cmp/table4/aps512_vs_aps224/f1", cv, "drct2", "drct2_aps_base")
            paired("cmp/table4/aps224_vs_drct1/f1", cv, "drct2_aps_base", "drct1")
            paired("cmp/table4/drct1_highres_vs_original/f1", cv, "drct1_highres", "drct1")
            paired("cmp/table4/drct1_fusion_vs_original/f1", cv, "drct1_model_fusion", "drct1")
            f6 = fig6_table(cv)
            if len(f6):
                diff = f6["attention_f1"] - f6["random_f1"]
                add("cmp/fig6/attention_vs_random/f1", float(diff.mean()),
                    note=f"mean F1 difference over m_key {list(f6['m_key'])}; attention better "
                         f"at {int((diff > 0).sum())} of {len(diff)} (no CI: one run each)",
                    unit="fraction")
        if n == "cq500":
            counts, n_dis = top5_positions(cv)
            add("fig7/cq500/diseased_scans", n_dis)
            w = max(1, round(7 * cv.data.seq_len / 32))
            lo = int(np.argmax(np.convolve(counts, np.ones(w, int), mode="valid")))
            note = f"most attended window of {w} of {cv.data.seq_len} sampled positions"
            add("fig7/cq500/key_slices_first", lo + 1, note=note)
            add("fig7/cq500/key_slices_last", lo + w, note=note)
        if n == "rsna":
            key = cv.key("any")
            for task in TASKS:
                acc = {}
                for v in ("drct1", "drct2"):
                    acc[v], cnt = key_slice_task(cv.attention[v], key, task)
                    add(f"table5/{task}/{v}/accuracy", acc[v], unit="percent")
                add(f"table5/{task}/scans", cnt)
                add(f"conclusion/{task}/drct2/accuracy", acc["drct2"], unit="percent")
                paired_keys(f"cmp/table5/{task}/drct2_vs_drct1", cv, key, task)
            for cls in ("epidural", "intraparenchymal", "intraventricular", "subarachnoid",
                        "subdural", "any"):
                if cls not in cv.data.classes:
                    continue
                k = cv.key(cls)
                a1, amount = key_slice_recall(cv.attention["drct1"], k)
                a2, _ = key_slice_recall(cv.attention["drct2"], k)
                add(f"table6/{cls}/slices", amount)
                add(f"table6/{cls}/drct1/accuracy", a1, unit="percent")
                add(f"table6/{cls}/drct2/accuracy", a2, unit="percent")
                if k.any():
                    paired_keys(f"cmp/table6/{cls}/drct2_vs_drct1", cv, k, None)
            prf(cv, "drct1", "table7/rsna/drct1")
            prf(cv, "drct2", "table7/rsna/drct2")
            if "slice_baseline" in cv.scores:
                add("text/rsna/drct2_minus_rsna1/f1", 100 * (f1["drct2"] - f1["slice_baseline"]),
                    note="RSNA-1 replaced by the slice-level baseline trained here",
                    unit="percent")
            if seconds_per_scan is not None:
                met = cv.metrics("drct2")
                for metric in ("precision", "recall", "f1"):
                    add(f"table8/drct2/{metric}", met[metric], unit="fraction",
                        note="all RSNA-layout scans out-of-fold, not the 148 reader-study scans")
                add("table8/drct2/time_per_scan", seconds_per_scan,
                    note="this CPU: encoder at both sizes + DrCT2, one scan")
                add("table8/drct2/total_time", seconds_per_scan * 148,
                    note="measured time per scan x 148 scans, this CPU")
    if cvs:  # the settings this run used, beside the paper's
        st = cvs[0].settings
        for cv in cvs:
            add(f"text/{cv.name}/kfold", st[f"folds_{cv.name}"])
            add(f"text/{cv.name}/batch_size", st[f"batch_{cv.name}"])
        add("text/training/epochs", st["epochs"])
        add("text/training/lr_aps", st["lr_aps"])
        add("text/training/lr_primary_fusion", st["lr_primary"],
            note=f"fusion {st['lr_fusion']}")
        add("text/model/dropout", st["dropout"], unit="fraction")
        add("text/model/feature_dim", int(cvs[0].data.features.shape[-1]),
            note=f"VGG-16 width {st['width']}")
        add("text/model/input_size", st["image_size"])
        add("text/model/aps_size", st["zoom_size"])
        add("text/tasks/top_k", TOP_SLICES)
        add("text/tasks/slices_per_set", st["seq_len_rsna"])
        for cv in cvs:
            f6 = fig6_table(cv) if cv.name == "cq500" else pd.DataFrame()
            if len(f6):
                best = f6.loc[f6["attention_f1"].idxmax()]
                add("fig6/drct2/best_m_key", best["m_key"],
                    note=f"m_key with the best attention-selected F1 among {list(f6['m_key'])}")
            if cv.name == "cq500":
                counts, _ = top5_positions(cv)
                w = max(1, round(7 * cv.data.seq_len / 32))
                lo = int(np.argmax(np.convolve(counts, np.ones(w, int), mode="valid")))
                add("text/discussion/key_slices_first", lo + 1, note="same window as Fig. 7")
                add("text/discussion/key_slices_last", lo + w, note="same window as Fig. 7")
    if tt is not None and len(cvs) > 1:
        pooled = tt[tt["scope"] == "pooled"]
        for metric in ("precision", "recall", "f1"):
            r = pooled[pooled["metric"] == metric]
            add(f"text/ttest/{metric}/p_value", float(r["p_value"].iloc[0]),
                note=f"paired t-test over {int(r['folds'].iloc[0])} folds of both datasets")
    frame = pd.DataFrame(rows)
    frame["unit"] = frame["unit"].astype(object)
    return frame


# --------------------------------------------------------------------------- table 8
def time_per_scan(cv: CVResult, s: Mapping[str, Any], n_scans: int = 3, seed: int = 0,
                  weights: str | None = None) -> float:
    """Seconds to diagnose one scan from its slices on this machine: encoder at both sizes
    (only the proposed slices are zoomed) + DrCT2, median over `n_scans` scans."""
    model, enc = _report_model(cv, 0, s, seed, weights)
    times = []
    for i in range(min(n_scans, cv.data.n_scans)):
        x = _sequence_images(cv, i)[None]
        t0 = time.perf_counter()
        model.forward_images(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def table8(cv: CVResult, seconds_per_scan: float) -> pd.DataFrame:
    """Table 8: the reader study as reported (from the claims registry), DrCT2 from here."""
    from brainlib.claims import load_claims

    claims = load_claims(PAPER)
    values = _claim_values(claims)
    readers = [("jr_a", "exp1", "Exp. 1 JR A"), ("jr_b", "exp1", "Exp. 1 JR B"),
               ("jr_c", "exp1", "Exp. 1 JR C"), ("jr_a", "exp2", "Exp. 2 JR A"),
               ("jr_b", "exp2", "Exp. 2 JR B"), ("jr_c", "exp2", "Exp. 2 JR C")]
    items = [("Precision", "precision"), ("Recall", "recall"), ("F1-score", "f1"),
             ("Confidence", "confidence"), ("Total time (s)", "total_time"),
             ("Time/scan (s)", "time_per_scan")]
    met = cv.metrics("drct2")
    n = cv.data.n_scans
    ours = {"precision": round(met["precision"], 4), "recall": round(met["recall"], 4),
            "f1": round(met["f1"], 4), "confidence": "", "total_time": round(seconds_per_scan * n, 2),
            "time_per_scan": round(seconds_per_scan, 3)}
    rows = []
    for label, metric in items:
        row: dict[str, Any] = {"item": label}
        for r, e, col in readers:
            row[f"{col} (reported)"] = values.get(f"table8/{r}/{e}/{metric}", "")
        row["DrCT2 (reported)"] = values.get(f"table8/drct2/{metric}", "")
        row["this run"] = ours[metric]
        rows.append(row)
    rows.append({"item": "Scans", **{f"{c} (reported)": values.get("text/reader_study/scans", "")
                                     for _, _, c in readers},
                 "DrCT2 (reported)": values.get("text/reader_study/scans", ""), "this run": n})
    return pd.DataFrame(rows)


def _claim_values(claims: Any) -> dict[str, Any]:
    """{claim id: value} from whatever `load_claims` returns (DataFrame or list of dicts)."""
    if isinstance(claims, pd.DataFrame):
        return dict(zip(claims["id" if "id" in claims else "claim_id"], claims["value"]))
    if isinstance(claims, Mapping) and "claims" in claims:
        claims = claims["claims"]
    out = {}
    for c in claims:
        c = c if isinstance(c, Mapping) else getattr(c, "__dict__", {})
        if "id" in c:
            out[c["id"]] = c.get("value")
    return out


# --------------------------------------------------------------------------- figures
def _sequence_images(cv: CVResult, scan: int) -> torch.Tensor:
    """Windowed slices (M, 3, S, S) of a scan's test sequence."""
    x = _load_all_slices(cv.data.dataset, scan)
    return x[torch.as_tensor(cv.positions[scan])].float()


def _report_model(cv: CVResult, scan: int, s: Mapping[str, Any], seed: int,
                  weights: str | None) -> tuple[nn.Module, SliceEncoder]:
    """The DrCT2 trained on the folds that did not contain `scan`, with its encoder."""
    fold = int(cv.fold_of[scan])
    enc = _data_encoder(cv.data, s, seed, weights)
    v = next(v for v in cv.variants if v.name == "drct2")
    model = build_model(v, cv.data, s, seed)
    model.load_state_dict(cv.states[("drct2", fold)])
    model.encoder = enc
    return model.eval(), enc


def attention_example(cv: CVResult, scan: int | None = None,
                      variant: str = "drct2") -> dict[str, Any]:
    """Data for `brainlib.widgets.SeriesAttentionViewer` on one test scan: ``slices_hu``
    (M, H, W) in HU (the scan's test sequence, read from its DICOM files), the out-of-fold
    slice ``attention`` (M,) and ``probabilities`` {label: p} of `variant`, the ``case_id``,
    ``positions`` (slice index in the scan) and ``key`` (M,) slices with any lesion (truth,
    RSNA layout; None otherwise). Default scan: the first of `report_scans`."""
    from brainlib.io import read_hu

    if scan is None:
        scan = report_scans(cv, 1)[0]
    if not 0 <= scan < cv.data.n_scans:
        raise IndexError(f"scan {scan} out of range 0..{cv.data.n_scans - 1}")
    if variant not in cv.attention:
        raise KeyError(f"no attention for variant {variant!r}; have {sorted(cv.attention)}")
    paths = list(cv.data.dataset.metadata.at[scan, "paths"])
    pos = np.asarray(cv.positions[scan])
    hu = np.stack([np.asarray(read_hu(paths[int(i)]), np.float32) for i in pos])
    sl = cv.data.slice_labels[scan]
    key = None
    if sl is not None:
        key = np.nan_to_num(sl[pos]).max(axis=1) > 0
    probs = {_label_name(cv.name, c): float(p)
             for c, p in zip(cv.data.classes, cv.scores[variant][scan])}
    return {"slices_hu": hu, "attention": cv.attention[variant][scan].astype(np.float64),
            "probabilities": probs, "case_id": cv.data.case_ids[scan], "positions": pos,
            "key": key}


def report_scans(cv: CVResult, n: int) -> list[int]:
    """A handful of test scans for Fig. 2: diseased first (most key slices), then healthy."""
    y = np.nan_to_num(cv.data.labels).max(axis=1) > 0
    order = sorted(range(cv.data.n_scans), key=lambda i: (not y[i], cv.data.case_ids[i]))
    return order[:n]


def fig2_report(cv: CVResult, scan: int, s: Mapping[str, Any], seed: int = 0,
                weights: str | None = None) -> Any:
    """Fig. 2: the per-scan diagnostic report of DrCT2: every slice, the slice-attention
    histogram, the top-5 slices with regions highlighted by slice and feature attention,
    and the predicted probabilities beside the labels."""
    import matplotlib.pyplot as plt

    model, enc = _report_model(cv, scan, s, seed, weights)
    imgs = _sequence_images(cv, scan)
    with torch.no_grad():
        z = enc(imgs)
        feats = torch.stack([z, enc(zoom_slices(imgs, s["zoom_size"]))], 1)[None]
        out = model(feats)
        w_slice = out["slice_attention"][0].numpy()
        w_feat = out["feature_attention"][0]
        prob = torch.sigmoid(out["logits"][0]).numpy()
        top = np.argsort(-w_slice, kind="stable")[:min(5, len(w_slice))]
        maps = enc.feature_maps(imgs[top])  # (5, D, h, w)
        heat = torch.relu((maps * w_feat[top][:, :, None, None]).sum(1, keepdim=True))
        heat = torch.nn.functional.interpolate(heat, size=imgs.shape[-2:], mode="bilinear")[:, 0]
        heat = heat / heat.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    m = len(w_slice)
    sl = cv.data.slice_labels[scan]
    key = (np.nan_to_num(sl[cv.positions[scan], 0]) > 0) if sl is not None else None
    cols = max(min(m, 14), 12)  # >= 12 leaves room for the probability panel
    rows_all = int(np.ceil(m / cols))
    fig = plt.figure(figsize=(14, 2.2 + 1.1 * rows_all + 5.6))
    gs = fig.add_gridspec(rows_all + 3, cols, height_ratios=[1] * rows_all + [1.3, 1.6, 1.6],
                          hspace=0.45)
    for i in range(m):
        ax = fig.add_subplot(gs[i // cols, i % cols])
        ax.imshow(imgs[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(str(i + 1), fontsize=7, color="red" if i in top else "black")
        if i in top:
            for sp in ax.spines.values():
                sp.set_edgecolor("red"), sp.set_linewidth(2)
    ax = fig.add_subplot(gs[rows_all, :])
    colors = ["tab:red" if i in top else "tab:blue" for i in range(m)]
    ax.bar(np.arange(1, m + 1), w_slice, color=colors)
    if key is not None and key.any():
        ax.plot(np.flatnonzero(key) + 1, np.full(int(key.sum()), w_slice.max() * 1.05), "kv",
                ms=4, label="slice shows a lesion (truth)")
        ax.legend(fontsize=7, loc="upper left")
    ax.set_xlabel("slice"), ax.set_ylabel("slice attention")
    ax.set_xlim(0.4, m + 0.6), ax.set_ylim(0, 1.15 * float(w_slice.max()))
    n_top = len(top)
    half = cols // 2
    for j, i in enumerate(top):
        a1 = fig.add_subplot(gs[rows_all + 1, j])
        a1.imshow(imgs[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        a1.set_title(f"#{i + 1}  w={w_slice[i]:.3f}", fontsize=7)
        a1.axis("off")
        a2 = fig.add_subplot(gs[rows_all + 2, j])
        a2.imshow(imgs[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        a2.imshow(heat[j].numpy(), cmap="jet", alpha=0.4, vmin=0, vmax=1)
        a2.axis("off")
        if j == 0:
            a1.text(-0.1, 0.5, "top-5 by\nslice attention", transform=a1.transAxes, ha="right",
                    va="center", fontsize=7)
            a2.text(-0.1, 0.5, "feature\nattention map", transform=a2.transAxes, ha="right",
                    va="center", fontsize=7)
    ax = fig.add_subplot(gs[rows_all + 1:, min(max(n_top + 2, half + 1), cols - 3):])
    names = [_label_name(cv.name, c) for c in cv.data.classes]
    ypos = np.arange(len(names))
    ax.barh(ypos, prob, color="tab:orange")
    truth = cv.data.labels[scan]
    for yy, t in zip(ypos, truth):
        if t == 1:
            ax.text(1.02, yy, "label +", va="center", fontsize=7, color="darkred")
    ax.axvline(0.5, color="gray", ls="--", lw=0.8)
    ax.set_yticks(ypos, names, fontsize=7), ax.set_xlim(0, 1.2), ax.invert_yaxis()
    ax.set_xlabel("predicted probability (DrCT2)")
    fig.suptitle(f"DrCT2 report, scan {cv.data.case_ids[scan]} ({LAYOUT_LABEL[cv.name]} layout, "
                 f"fold {int(cv.fold_of[scan]) + 1} model)", fontsize=10)
    return fig


def fig5_curves(cv: CVResult, fold: int = 0) -> Any:
    """Fig. 5: held-out precision and recall of DrCT2 per epoch (no model selection on them)."""
    import matplotlib.pyplot as plt

    h = cv.histories[("drct2", fold)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(h["epoch"], 100 * h["precision"], label="precision (macro)")
    ax.plot(h["epoch"], 100 * h["recall"], label="recall (macro)")
    ax.set_xlabel("epoch"), ax.set_ylabel("%"), ax.set_ylim(0, 100), ax.legend()
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"DrCT2 on {LAYOUT_LABEL[cv.name]} layout, fold {fold + 1} held out", fontsize=9)
    return fig


def fig6_mkey(cv: CVResult) -> Any:
    """Fig. 6: macro F1 by m_key, attention-chosen vs random APS slices."""
    import matplotlib.pyplot as plt

    t = fig6_table(cv)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(t["m_key"], t["attention_f1"], "o-", label="selected by slice attention")
    ax.plot(t["m_key"], t["random_f1"], "s--", label="selected at random")
    ax.set_xlabel("m_key (slices fed to the APS network)"), ax.set_ylabel("macro F1")
    ax.set_xticks(t["m_key"]), ax.legend()
    return fig


def fig7_positions(cv: CVResult) -> Any:
    """Fig. 7: histogram of the top-5 attended positions over diseased scans."""
    import matplotlib.pyplot as plt

    counts, n = top5_positions(cv)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(np.arange(1, len(counts) + 1), counts)
    ax.set_xlabel("slice position in the sampled sequence"), ax.set_ylabel("count in top 5")
    ax.set_title(f"{n} diseased scans ({LAYOUT_LABEL[cv.name]} layout)", fontsize=9)
    return fig


def fig8_accuracy(cv: CVResult) -> Any:
    """Fig. 8: per-disease accuracy of the slice-level baseline, DrCT1 and DrCT2."""
    import matplotlib.pyplot as plt

    spec = [(v, lab) for v, lab in (("slice_baseline", "slice-level baseline"),
                                    ("drct1", "DrCT1"), ("drct2", "DrCT2")) if v in cv.scores]
    names = [RSNA_SHORT.get(c, c) for c in cv.data.classes]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    wdt = 0.8 / len(spec)
    for k, (v, lab) in enumerate(spec):
        ax.bar(x + (k - (len(spec) - 1) / 2) * wdt, 100 * per_class_accuracy(cv, v), wdt,
               label=lab)
    ax.set_xticks(x, names), ax.set_ylabel("accuracy (%)"), ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    return fig
