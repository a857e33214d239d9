"""Data of the DrCT experiments: each dataset opened once, every slice encoded once.

`prepare_data` opens CQ500 or RSNA (series view) — the embedded phantoms written in the
official layouts, or a real root — and encodes every slice once at the working size and once
zoomed (bilinear, `zoom_size`) with the frozen slice encoder (`encoder.py`). The encoder is
frozen, so these features are exactly what DrCT2 would compute on the fly; they are cached
under ``cache_dir("wang_drct2", "features", <key>)``, keyed by data + encoder weights (their
digest) + sizes. `SequenceSet` serves fixed-length feature sequences (section VI.A.1: the
slices the first sequence leaves out form extra training sequences; test scans use the first
sequence only) to `brainlib.engine`.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from brainlib._atomic import atomic_dir
from brainlib.data import CQ500Dataset, RSNADataset
from brainlib.data.cache import cache_key
from brainlib.data.classes import CQ500_CLASSES, RSNA_CLASSES
from brainlib.data.roots import data_root_for, data_roots
from brainlib.data.sequences import fixed_length_sequences, load_all_slices
from brainlib.data.synth import ensure_phantoms
from brainlib.engine import resolve_device
from brainlib.experiment import Experiment
from brainlib.models.slice_encoder import SliceEncoder
from brainlib.papers.wang_drct2.encoder import (PretrainedEncoder, certain_slice_labels,
                                                encode_scan, make_encoder, resolve_encoder)
from brainlib.papers.wang_drct2.settings import LAYOUT_LABEL, WangDrct2Settings
from brainlib.paths import cache_dir
from brainlib.report import DataSource

PAPER = "wang_drct2"
FEATURE_VERSION = "3"
RANDOM_ENCODER_DEVIATION = ("slice encoder: frozen VGG-16 with random (seeded Kaiming) weights, "
                            "not ImageNet-pretrained (no weights offline)")


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
    embedded: bool = True  # phantoms generated here (no data root given)

    @property
    def n_scans(self) -> int:
        return len(self.case_ids)

    def n_slices(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])

    def scan_features(self, i: int) -> np.ndarray:
        return self.features[self.offsets[i]:self.offsets[i + 1]]


def open_dataset(name: str, root: Path | None, s: WangDrct2Settings) -> Any:
    """Open the CQ500 or RSNA (series view) dataset; phantoms are generated once and cached."""
    if root is None:
        root = ensure_phantoms(name, s.of("phantom_studies", name), s.phantom_seed,
                               s.phantom_size, s.difficulty, label_size=s.phantom_label_size)
    kwargs = dict(size=s.image_size, max_studies=s.of("max_studies", name),
                  seed=s.phantom_seed, progress=False)
    if name == "cq500":
        return CQ500Dataset(root, min_thickness=s.cq500_min_thickness, **kwargs)
    return RSNADataset(root, view="series", **kwargs)


def _slice_label_matrix(ds: Any, i: int, classes: Sequence[str],
                        certain: Any = None) -> np.ndarray | None:
    """Per-slice labels of scan `i` in `classes` order (None when the layout has none).

    `certain` (phantoms with a label rule, `certain_slice_labels`): the truth's labels with
    slices whose lesion is too small to see at the working size as NaN."""
    sl = ds.slice_labels(i)
    if sl is None:
        return None
    if certain is not None:
        return certain.loc[list(ds.metadata.at[i, "slice_ids"]), list(classes)].to_numpy(
            np.float32)
    sl = np.asarray(sl, dtype=np.float32)
    names = getattr(ds, "slice_classes", None) or tuple(classes)
    cols = [list(names).index(c) for c in classes]
    return sl[:, cols]


def feature_key(name: str, ds: Any, s: WangDrct2Settings, seed: int,
                encoder: SliceEncoder) -> str:
    """Key of the feature cache: the pixel cache's own key (every source file with its mtime
    and size, windows, size, format version — so regenerated phantoms or new data re-encode),
    the scan grouping, the encoder and the sizes."""
    paths = [tuple(map(str, p)) for p in ds.metadata["paths"]]
    windows = getattr(ds.pixels, "windows", None)
    ident = {
        "version": FEATURE_VERSION, "dataset": name, "cases": ds.ids,
        "paths": hashlib.sha256(json.dumps(paths).encode()).hexdigest(),
        "pixels": cache_key([p for scan in paths for p in scan], windows, s.image_size),
        "encoder": encoder.init.note, "encoder_weights": encoder.weights_digest(),
        "image_size": s.image_size, "zoom_size": s.zoom_size, "width": s.width,
        "encoder_seed": seed,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def _encode_dataset(name: str, ds: Any, encoder: SliceEncoder, folder: Path,
                    s: WangDrct2Settings, device: str, progress: bool) -> None:
    """Encode every slice of every scan into `folder` (features.npy, offsets.npy, meta.json),
    atomically: the folder appears complete or not at all."""
    encoder.to(resolve_device(device))
    feats, lengths = [], []
    for i in tqdm(range(len(ds)), desc=f"encoding {name} slices", mininterval=1.0,
                  disable=not progress):
        x = load_all_slices(ds, i)
        feats.append(encode_scan(encoder, x, s.zoom_size))
        lengths.append(len(x))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    meta = {"case_ids": ds.ids, "encoder": encoder.init.note,
            "settings": {"image_size": s.image_size, "zoom_size": s.zoom_size, "width": s.width}}
    with atomic_dir(folder) as tmp:
        np.save(tmp / "features.npy", np.concatenate(feats))
        np.save(tmp / "offsets.npy", offsets)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))


def prepare_data(name: str, s: WangDrct2Settings, data_root: Any = None, seed: int = 0,
                 weights: str | None = None, progress: bool = False,
                 device: str = "auto",
                 encoder_settings: WangDrct2Settings | None = None) -> ScanData:
    """Open dataset `name` and return its slice features, computed once and cached
    (on `device`; features are stored as float32 on disk and do not depend on it beyond
    floating-point rounding). `encoder_settings` (default `s`) choose the frozen encoder, so a
    difficulty sweep keeps the run's encoder while the phantoms change.

    Raises ValueError when the dataset's classes are not the paper's, it has no usable
    scan, or cached features do not match it.
    """
    t0 = time.perf_counter()
    root = data_root_for(data_root, name)
    ds = open_dataset(name, root, s)
    classes = tuple(ds.classes)
    expected = CQ500_CLASSES if name == "cq500" else RSNA_CLASSES
    if classes != tuple(expected):
        raise ValueError(f"{name}: dataset classes {classes} differ from {expected}")
    if len(ds) == 0:
        raise ValueError(f"{name}: no usable scan under {getattr(ds, 'root', root)}")
    certain = (certain_slice_labels(ds.root, list(classes))
               if root is None and name == "rsna" else None)
    kind = resolve_encoder(encoder_settings or s, weights)
    encoder, pre = make_encoder(kind, encoder_settings or s, seed, weights, device=device,
                                progress=progress)
    folder = cache_dir(PAPER, "features") / f"{name}-{feature_key(name, ds, s, seed, encoder)}"
    cached = (folder / "features.npy").is_file() and (folder / "offsets.npy").is_file()
    if not cached:
        _encode_dataset(name, ds, encoder, folder, s, device, progress)
    features = np.load(folder / "features.npy", mmap_mode="r")
    offsets = np.load(folder / "offsets.npy")
    if len(offsets) != len(ds) + 1:
        raise ValueError(f"{folder}: cached features do not match the dataset "
                         f"({len(offsets) - 1} scans vs {len(ds)}); delete the folder")
    return ScanData(
        name=name, classes=classes, dataset=ds, features=features, offsets=offsets,
        labels=np.asarray(ds.labels, dtype=np.float32), case_ids=ds.ids,
        groups=np.asarray(ds.groups).astype(str),
        slice_labels=[_slice_label_matrix(ds, i, classes, certain) for i in range(len(ds))],
        seq_len=int(s.of("seq_len", name)), encoder_note=encoder.init.note,
        cache_path=folder, cached=cached, seconds=time.perf_counter() - t0,
        skipped=list(getattr(ds, "skipped", [])), encoder_kind=kind, pretrained=pre,
        embedded=root is None)


def _phantom_source(names: Sequence[str], s: WangDrct2Settings,
                    marked: Sequence[str] = ()) -> DataSource:
    return DataSource("phantom", " and ".join(LAYOUT_LABEL[n] for n in names), None, {
        "difficulty": s.difficulty, "phantom_seed": s.phantom_seed,
        "phantom_size": s.phantom_size, "studies": {n: s.of("phantom_studies", n) for n in names},
        **({"marked_trees": list(marked)} if marked else {})})


def _real_source(names: Sequence[str], data_root: Any) -> DataSource:
    roots = data_roots(data_root, names)
    return DataSource("real", " and ".join(LAYOUT_LABEL[n] for n in names),
                      "; ".join(str(r) for r in roots.values()), {})


def planned_source(data_root: Any, names: Sequence[str], s: WangDrct2Settings) -> DataSource:
    """The data source before any file is read: phantoms when no root is given (replaced by
    `data_source` once the datasets are open and their phantom mark is read)."""
    if all(r is None for r in data_roots(data_root, names).values()):
        return _phantom_source(names, s)
    return _real_source(names, data_root)


def data_source(datas: Sequence[ScanData], s: WangDrct2Settings,
                data_root: Any = None) -> DataSource:
    """Where the data came from: phantoms when any dataset was generated here or carries the
    phantom mark (`dataset.synthetic`), real only when every dataset is unmarked."""
    names = [d.name for d in datas]
    phantom = [d.embedded or bool(d.dataset.synthetic) for d in datas]
    if any(phantom):
        return _phantom_source(names, s, [d.name for d, p in zip(datas, phantom)
                                          if p and not d.embedded])
    return _real_source(names, data_root)


def _arch_name(arch: str) -> str:
    return "VGG-16" if arch == "vgg16" else "a shallow conv+BN encoder"


def record_provenance(exp: Experiment, datas: Mapping[str, ScanData]) -> None:
    """Put each dataset's skipped files, encoder and feature cache in the run, and the data
    source (a randomly initialised encoder is a deviation, so every caption states it)."""
    items = list(datas.values())
    for d in items:
        exp.skipped(d.skipped)
        exp.note(f"{d.name}: slice encoder = {d.encoder_note}")
        exp.note(f"{d.name}: features {'reused from' if d.cached else 'computed into'} "
                 f"{d.cache_path} ({d.seconds:.1f} s)")
    kinds = sorted({d.encoder_kind for d in items})
    exp.read("slice encoder", ", ".join(kinds), f"setting encoder={exp.settings.encoder!r}; "
             "ImageNet weights only from a local file")
    if "random" in kinds:
        exp.deviate(RANDOM_ENCODER_DEVIATION)
    pre = next((d.pretrained for d in items if d.pretrained is not None), None)
    if pre is not None:
        sm = pre.summary
        exp.deviate(
            f"slice encoder: {_arch_name(pre.spec.arch)} pretrained here on a disjoint "
            f"phantom set instead of an ImageNet VGG-16 (RSNA-layout phantoms, seed "
            f"{pre.spec.phantom_seed}, {pre.spec.studies} studies, {sm['train_slices']} "
            f"slices, per-slice labels any + 5 subtypes + fracture, {pre.spec.epochs} epochs"
            f"{', flips and shifts' if pre.spec.augment else ''}; held-out slice AUC "
            f"{sm['val_auc']:.3f}), then frozen")
        exp.note(f"encoder pretraining {'reused from' if pre.cached else 'written to'} "
                 f"{pre.path.parent} ({pre.seconds:.1f} s); held-out slice macro AUC per "
                 f"epoch {[round(v, 3) for v in sm['val_auc_per_epoch']]}")
    exp.use_data(data_source(items, exp.settings, exp.data_root))


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
