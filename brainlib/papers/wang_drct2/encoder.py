"""The frozen VGG-16 slice encoder of a DrCT run: which one, and its optional pretraining.

Wang et al. (DrCT1/DrCT2, section V.A) freeze an ImageNet-pretrained VGG-16 as slice encoder.
No ImageNet weights can be downloaded here, so the setting ``encoder`` chooses (see
`resolve_encoder`): ImageNet from a local file when one is given, else seeded random weights;
on request (``"phantom_pretrained"``), the stated substitute: VGG-16 trained first on a
**disjoint** phantom set, then frozen exactly like the ImageNet one:

- data: RSNA-layout phantoms generated with seed ``phantom_seed + SEED_OFFSET``, so no
  evaluation subject is seen; every slice with its per-slice labels (the five subtypes + any),
  windowed as the pipeline windows them, at the working image size;
- model: the (width-scaled) VGG-16 conv layers + adaptive max-pool (`SliceEncoder`) + one
  linear layer, BCE on the slice labels, trained with `brainlib.engine.fit` (seeded,
  bit-identical on CPU); the epoch with the best slice-level macro AUC on a held-out
  patient split *of the pretraining set* is kept;
- cache: ``cache_dir("wang_drct2", "encoders", <key>)`` keyed by everything that determines
  the weights (phantom key, seeds, width, size, epochs, batch, lr, code version), written
  atomically and reused on the next run.

`pretrain_encoder` returns a `PretrainedEncoder` whose ``note`` says all of this for the
manifest; `SliceEncoder.from_pretrained` loads the weights, frozen. (Moved here from
``brainlib/models/encoder_pretrain.py``: training code belongs to the paper, and the leaf
`brainlib.models.slice_encoder` breaks the old models/drct <-> encoder_pretrain cycle.)
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from brainlib._atomic import atomic_path, atomic_write
from brainlib.data import RSNADataset
from brainlib.data.sequences import load_all_slices
from brainlib.data.synth import GENERATOR_VERSION, ensure_phantoms
from brainlib.data.synth.head_ct import FRACTURE
from brainlib.data.synth.truth import LABEL_MIN_PIXELS, load_truth
from brainlib.engine import (fit, make_loader, predict, resolve_device, seed_everything,
                             torch_threads)
from brainlib.layers.sequence_attention import zoom_slices
from brainlib.metrics.multilabel import masked_bce
from brainlib.models.slice_encoder import SliceEncoder
from brainlib.papers.wang_drct2.settings import ENCODERS, WangDrct2Settings
from brainlib.paths import cache_dir

WEIGHTS_ENV = "BRAINLIB_VGG16_WEIGHTS"
PRETRAIN_VERSION = "2"
#: Offset added to the evaluation phantom seed for the pretraining phantoms (disjoint subjects).
SEED_OFFSET = 10_000


@dataclass(frozen=True)
class PretrainSpec:
    """Everything that determines the pretrained weights (the cache key is made of it)."""

    width: float
    image_size: int
    studies: int
    phantom_seed: int
    phantom_size: int
    difficulty: float
    epochs: int
    seed: int = 0
    batch: int = 32
    lr: float = 1e-3
    val_fraction: float = 0.2
    label_size: int | None = None  # label rule at the working size (truth sidecar)
    arch: str = "vgg16"
    augment: bool = False  # random left-right flips and shifts of the training slices
    label_min_pixels: int = LABEL_MIN_PIXELS  # pixels at label_size a lesion needs to count
    optimizer: str = "adam"  # engine.fit's optimiser name ("adam" | "adamw" | "sgd")
    weight_decay: float = 0.0
    lr_step: int | None = None  # StepLR: lr x lr_gamma every lr_step epochs; None = constant
    lr_gamma: float = 0.1
    #: torch CPU threads of the pretraining (None: the caller's). Part of the key because
    #: intra-op threading changes float summation order: 1 and 2 threads give different
    #: weights on CPU, and a cached encoder must not depend on which run trained it first.
    threads: int | None = None

    def key(self) -> str:
        ident = {**asdict(self), "version": PRETRAIN_VERSION, "phantoms": str(GENERATOR_VERSION)}
        for name, default in _LATER_FIELDS.items():  # keys written before these fields existed
            if ident[name] == default:
                del ident[name]
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


#: Fields added after encoders were cached: left out of the key at these defaults, so the
#: weights cached before they existed are still found.
_LATER_FIELDS: dict[str, Any] = {"label_min_pixels": LABEL_MIN_PIXELS, "optimizer": "adam",
                                 "weight_decay": 0.0, "lr_step": None, "lr_gamma": 0.1,
                                 "threads": None}


@dataclass
class PretrainedEncoder:
    """A pretrained encoder on disk: weights file, spec, training summary, manifest note."""

    path: Path  # encoder.pt: state dict of SliceEncoder.features
    spec: PretrainSpec
    summary: dict[str, Any]
    cached: bool
    seconds: float
    history: Any = field(default=None, repr=False)

    @property
    def note(self) -> str:
        s, m = self.spec, self.summary
        name = ("VGG-16" if s.arch == "vgg16" else "shallow conv+BN encoder (4 blocks)")
        labels = ", ".join(m.get("classes", [])) or "any + 5 subtypes"
        rule = (f", slices with lesions < {s.label_min_pixels} px at {s.label_size} px ignored"
                if s.label_size else "")
        return (f"{name} (width {s.width}) pretrained here on RSNA-layout phantoms disjoint from "
                f"the evaluation data (phantom seed {s.phantom_seed}, difficulty "
                f"{s.difficulty}, {s.studies} studies, "
                f"{m['train_slices']} training slices, per-slice labels {labels}{rule}, "
                f"{s.image_size}px, {s.epochs} epochs{_optimiser_note(s)}"
                f"{', random flips and shifts' if s.augment else ''}, engine.fit seed "
                f"{s.seed}); held-out "
                f"slice-level macro AUC {m['val_auc']:.3f} on {m['val_slices']} slices of "
                f"{m['val_patients']} pretraining patients; then frozen (substitute for "
                f"ImageNet weights)")


def _optimiser_note(s: PretrainSpec) -> str:
    """", <optimiser>, lr ..., weight decay ..., lr x gamma every k epochs" (the default
    Adam at constant lr stays as it was written before these fields existed: empty)."""
    if (s.optimizer, s.weight_decay, s.lr_step) == ("adam", 0.0, None):
        return ""
    step = f", lr x {s.lr_gamma} every {s.lr_step} epochs" if s.lr_step else ""
    return f", {s.optimizer} lr {s.lr:g} weight decay {s.weight_decay:g}{step}"


def augment_slices(x: torch.Tensor) -> torch.Tensor:
    """Random left-right flip (p = 0.5 per slice) and one random shift of the batch by up to
    1/16 of the slice size in each direction (rolled: the border is air), drawn from torch's
    global generator (seeded by the engine and saved in its checkpoints, so a resumed
    pretraining draws what an uninterrupted one would)."""
    flip = torch.rand(x.shape[0]) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(-1), x)
    m = max(1, x.shape[-1] // 16)
    dy, dx = (int(v) for v in torch.randint(-m, m + 1, (2,)))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


class SliceClassifier(nn.Module):
    """SliceEncoder (trainable during pretraining) + one linear layer -> per-slice logits;
    with `augment`, training batches are flipped and shifted (`augment_slices`)."""

    def __init__(self, width: float, num_classes: int, seed: int, arch: str = "vgg16",
                 augment: bool = False) -> None:
        super().__init__()
        self.augment = bool(augment)
        self.encoder = SliceEncoder(width, weights=False, seed=seed, arch=arch)
        self.encoder.frozen = False
        for p in self.encoder.features.parameters():
            p.requires_grad_(True)
        self.head = nn.Linear(self.encoder.out_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.augment and self.training:
            x = augment_slices(x)
        return self.head(self.encoder(x))


class _SliceSet(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor, ids: list[str]) -> None:
        self.x, self.y, self.ids = x, y, ids

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": self.x[i], "y": self.y[i], "id": self.ids[i]}


def certain_slice_labels(root: Path, classes: list[str]) -> Any:
    """The phantom truth's slice labels (DataFrame by image id, `classes` columns) with slices
    whose lesion is too small to see at the tree's label size as NaN; None when the tree was
    written without a label rule."""
    truth = load_truth(root)
    return None if truth.label_size is None else truth.certain_labels(classes)


def load_phantom_slices(spec: PretrainSpec) -> tuple[torch.Tensor, torch.Tensor, np.ndarray,
                                                      list[str], tuple[str, ...]]:
    """All windowed slices (N, 3, S, S), per-slice labels (N, C), patient of each slice,
    slice ids and class names of the pretraining phantoms (generated once, cached).

    Labels: any + the five subtypes + calvarial fracture from the truth sidecar, slices whose
    lesion covers fewer than the label rule's pixels at the working size as NaN (masked in the
    loss and the AUC); trees written without a label rule give the CSV's labels."""
    root = ensure_phantoms("rsna", spec.studies, spec.phantom_seed, spec.phantom_size,
                           spec.difficulty, label_size=spec.label_size,
                           label_min_pixels=spec.label_min_pixels)
    ds = RSNADataset(root, view="series", size=spec.image_size, seed=spec.phantom_seed,
                     progress=False)
    classes = list(getattr(ds, "slice_classes", None) or ds.classes) + [FRACTURE]
    certain = certain_slice_labels(root, classes)
    xs, ys, groups, ids = [], [], [], []
    for i in range(len(ds)):
        x = load_all_slices(ds, i)
        if certain is not None:
            y = certain.loc[list(ds.metadata.at[i, "slice_ids"])].to_numpy(np.float32)
        else:
            y = ds.slice_labels(i)
            y = None if y is None else np.asarray(y, np.float32)[:, :len(classes) - 1]
        if y is None or len(y) != len(x):
            raise ValueError(f"{root}: scan {ds.ids[i]} has no per-slice labels for every slice")
        xs.append(x.float())
        ys.append(torch.from_numpy(np.array(y, np.float32)))
        groups += [str(ds.groups[i])] * len(x)
        ids += [f"{ds.ids[i]}:{k}" for k in range(len(x))]
    return (torch.cat(xs), torch.cat(ys), np.asarray(groups), ids,
            tuple(classes[:ys[0].shape[1]]))


def _macro_auc(preds: Any) -> dict[str, float]:
    y, p = np.asarray(preds.y_true), np.asarray(preds.y_score)
    aucs = []
    for j in range(y.shape[1]):
        known = ~np.isnan(y[:, j])
        if 0 < y[known, j].sum() < known.sum():
            aucs.append(roc_auc_score(y[known, j], p[known, j]))
    return {"auc": float(np.mean(aucs)) if aucs else float("nan")}


def _bce(out: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
    return masked_bce(out, batch["y"].to(out.dtype))


def pretrain_encoder(spec: PretrainSpec, device: str = "cpu", progress: bool = False,
                     cache: bool = True, scratch_dir: Path | None = None) -> PretrainedEncoder:
    """Train (or reuse from the cache) the slice encoder on disjoint phantom slices.

    ``cache=False`` always trains and writes the weights into `scratch_dir` (required then,
    so that no temporary folder outlives the caller: the caller owns and removes it).
    """
    if not cache and scratch_dir is None:
        raise ValueError("pretrain_encoder(cache=False) needs scratch_dir for the weights")
    t0 = time.perf_counter()
    folder = cache_dir("wang_drct2", "encoders") / f"vgg16-{spec.key()}"
    weights, meta = folder / "encoder.pt", folder / "meta.json"
    if cache and weights.is_file() and meta.is_file():
        summary = json.loads(meta.read_text())["summary"]
        return PretrainedEncoder(weights, spec, summary, True, time.perf_counter() - t0)
    x, y, groups, ids, classes = load_phantom_slices(spec)
    patients = np.unique(groups)
    rng = np.random.default_rng([spec.seed, 17])
    n_val = max(1, int(round(spec.val_fraction * len(patients))))
    val_patients = set(rng.permutation(patients)[:n_val].tolist())
    is_val = np.array([g in val_patients for g in groups])
    tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    train_set = _SliceSet(x[tr], y[tr], [ids[i] for i in tr])
    val_set = _SliceSet(x[va], y[va], [ids[i] for i in va])
    seed_everything(spec.seed)
    model = SliceClassifier(spec.width, y.shape[1], spec.seed, spec.arch, spec.augment)
    with torch_threads(spec.threads):  # the weights depend on it (PretrainSpec.threads)
        result = fit(model, make_loader(train_set, spec.batch, shuffle=True, seed=spec.seed),
                     make_loader(val_set, 256), losses=[("bce", _bce, 1.0)],
                     epochs=spec.epochs, lr=spec.lr, optimizer=spec.optimizer,
                     weight_decay=spec.weight_decay, lr_step=spec.lr_step,
                     lr_gamma=spec.lr_gamma, monitor="auc", mode="max", metric_fn=_macro_auc,
                     device=device, seed=spec.seed, progress=progress)
        best = result.model.to("cpu").eval()
        val_auc = _macro_auc(predict(best, make_loader(val_set, 256), device="cpu"))["auc"]
    hist = result.history
    summary = {
        "classes": list(classes), "train_slices": int(len(tr)), "val_slices": int(len(va)),
        "train_patients": int(len(patients) - n_val), "val_patients": int(n_val),
        "val_auc": val_auc,
        "val_auc_per_epoch": [float(v) for v in hist["auc"]] if "auc" in hist else [],
        "train_loss_per_epoch": ([float(v) for v in hist["train_loss"]]
                                 if "train_loss" in hist else []),
        "positive_rate": [float(v) for v in np.nanmean(y[tr].numpy(), 0)],
        "train_seconds": time.perf_counter() - t0,
    }
    if not cache:
        weights = Path(scratch_dir) / "encoder.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(weights) as tmp:
        torch.save(best.encoder.features.state_dict(), tmp)
    if cache:
        atomic_write(meta, json.dumps({"spec": asdict(spec), "summary": summary}, indent=1))
    return PretrainedEncoder(weights, spec, summary, False, time.perf_counter() - t0, hist)


# --------------------------------------------------------------------------- choosing one
def resolve_encoder(s: WangDrct2Settings, weights: str | None = None) -> str:
    """Which slice encoder a run uses: the setting, or for ``"auto"`` ImageNet when a local
    weights file is given (`weights` or ``$BRAINLIB_VGG16_WEIGHTS``), else random init.

    ``"phantom_pretrained"`` (the encoder trained on slice labels of a disjoint phantom split)
    is what the quick profile uses. Measured there (RSNA layout, 48 evaluation scans at 64 px):
    the shallow encoder pretrained on 48 studies without augmentation overfitted its
    pretraining subjects (its own slice head: 'any' AUC 0.71 on the evaluation slices, but
    max over each scan's slices 0.39-0.50 for 'any' at scan level, below a one-feature
    blood-fraction score at 0.92); on 144 studies with flips and shifts (a stand-alone run of
    the same training, AdamW with weight decay 0.01) the head reached slice 'any' AUC 0.97
    and scan-level max-over-slices macro AUC 0.88 after 5 epochs. With the pipeline's
    6-epoch pretraining DrCT2 reached scan-level macro AUC 0.79-0.83 (seeds 0-2), short of
    the issue-10 floor of 0.85. Quick now pretrains 20 epochs (held-out slice macro AUC
    0.879 after 6, 0.906 after 20; seed 0: DrCT2 CQ500 0.831 -> 0.842, RSNA 0.833 -> 0.872);
    288 pretraining studies x 12 epochs (0.929 held out) gave DrCT2 0.850 / 0.849 and a
    96-px working size (0.910) 0.822 / 0.829, so the encoder's features, not the DrCT2
    head, still set the ceiling near the floor (docs/PERFORMANCE.md, wang_drct2 section).
    he2024's 16-px visibility rule for the pretraining labels (`pretrain_label_min_pixels`)
    lowered DrCT2 on seeds 0-2 (means CQ500 0.847 -> 0.834, RSNA 0.843 -> 0.823): not used.
    Better encoders raise the max-over-slices baseline but not DrCT2: 288 studies x 20 epochs
    (held-out 0.939 / 0.951 / 0.916, seeds 0-2) gave DrCT2 CQ500 0.845 / 0.841 / 0.838, RSNA
    0.857 / 0.866 / 0.822 (max-over-slices RSNA 0.878 / 0.892 / 0.884); width 0.25 on 288
    studies (held-out 0.951, seed 0) DrCT2 0.827 / 0.824 against max-over-slices 0.894 /
    0.912; none adopted (docs/PERFORMANCE.md, "Encoder width and pretraining size").

    Raises:
        FileNotFoundError: ``"imagenet"`` without a weights file.
        ValueError: an unknown encoder name.
    """
    kind = s.encoder
    file = weights or os.environ.get(WEIGHTS_ENV) or None
    if kind == "auto":
        return "imagenet" if file else "random"
    if kind == "imagenet" and not file:
        raise FileNotFoundError("encoder='imagenet' needs a local VGG-16 weights file: pass "
                                f"weights=... or set {WEIGHTS_ENV}")
    if kind not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {kind!r}")
    return kind


def pretrain_spec(s: WangDrct2Settings, seed: int) -> PretrainSpec:
    """The phantom pretraining of these settings: RSNA-layout phantoms with seed
    ``phantom_seed + SEED_OFFSET`` (disjoint from every evaluation subject), working size."""
    return PretrainSpec(
        width=float(s.width), image_size=int(s.image_size), studies=int(s.pretrain_studies),
        phantom_seed=int(s.phantom_seed) + SEED_OFFSET, phantom_size=int(s.phantom_size),
        difficulty=float(s.difficulty), epochs=int(s.pretrain_epochs), seed=int(seed),
        batch=int(s.pretrain_batch), lr=float(s.pretrain_lr), label_size=s.phantom_label_size,
        arch=str(s.encoder_arch), augment=bool(s.pretrain_augment),
        label_min_pixels=int(s.pretrain_label_min_pixels), optimizer=str(s.pretrain_optimizer),
        weight_decay=float(s.pretrain_weight_decay),
        lr_step=None if s.pretrain_lr_step is None else int(s.pretrain_lr_step),
        threads=int(s.encode_threads))


def make_encoder(kind: str, s: WangDrct2Settings, seed: int = 0, weights: str | None = None,
                 device: str = "auto", progress: bool = False
                 ) -> tuple[SliceEncoder, PretrainedEncoder | None]:
    """The frozen slice encoder of `kind` (see `resolve_encoder`); phantom pretraining runs
    once and is cached."""
    if kind == "imagenet":
        return SliceEncoder(s.width, weights or os.environ.get(WEIGHTS_ENV), seed=seed), None
    if kind == "random":
        return SliceEncoder(s.width, False, seed=seed, arch=s.encoder_arch), None
    if kind != "phantom_pretrained":
        raise ValueError(f"unknown encoder kind {kind!r}")
    pre = pretrain_encoder(pretrain_spec(s, seed), device=str(resolve_device(device)),
                           progress=progress)
    return SliceEncoder.from_pretrained(pre.path, s.width, pre.note, s.encoder_arch), pre


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
