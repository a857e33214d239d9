"""Cross-validation of DrCT1, DrCT2 and their ablations on cached slice features.

`cross_validate` trains, fold by fold (patient-grouped `engine.kfold_split`), every variant of
`variants_for`: DrCT1, DrCT2 and the ablations (Table 2 BCE/BCE, Table 4 resolution
strategies, Fig. 6 m_key sweep with attention vs random proposals, Table 7 slice-level
baseline), each through `engine.fit` with the paper's per-module learning rates, and keeps
out-of-fold predictions and slice attention. Same seed, same result on CPU.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from brainlib.data.sequences import fixed_length_sequences
from brainlib.engine import fit, kfold_split, make_loader, predict, resolve_device, \
    seed_everything, torch_threads
from brainlib.metrics import macro_auc, macro_prf
from brainlib.models import create_model
from brainlib.models.drct import drct_losses, scan_max_losses, slice_level_losses
from brainlib.papers.wang_drct2.data import ScanData, SequenceSet
from brainlib.papers.wang_drct2.settings import WangDrct2Settings

Batch = Mapping[str, Any]


# --------------------------------------------------------------------------- variants
def _in_base(b: Batch) -> torch.Tensor:
    return b["x"][:, :, 0]


def _in_zoom(b: Batch) -> torch.Tensor:
    return b["x"][:, :, 1]


def _in_both(b: Batch) -> torch.Tensor:
    return b["x"]


def _in_base_twice(b: Batch) -> torch.Tensor:
    return b["x"][:, :, [0, 0]]


def _in_window(lo: int, hi: int) -> Callable[[Batch], torch.Tensor]:
    def fn(b: Batch) -> torch.Tensor:
        x = b["x"][:, :, 0].clone()
        x[:, lo:hi] = b["x"][:, lo:hi, 1]
        return x
    return fn


@dataclass(frozen=True)
class Variant:
    """One trained configuration: model name, losses, input, m_key."""

    name: str
    model: str
    loss: str  # "mse" | "bce" (primary/APS) | "slice" | "scan_max"
    inputs: str  # "base" | "zoom" | "both" | "base_twice" | "window"
    m_key: int | None = None
    label: str = ""
    flip_standardize: bool = False  # the feature-standardisation ablation (eq. 3 vs ours)


#: Sanity baseline of the positive controls (not in the paper): three FC layers score every
#: slice's frozen features, the scan score is the maximum over the slices, trained from scan
#: labels only (multiple-instance max pooling). It shows whether a scan-level signal reaches
#: the sequence models' inputs at all.
SLICE_MAX = Variant("slice_max", "drct_slice_baseline", "scan_max", "base",
                    label="Max over slices (scan labels; sanity baseline)")


def _cq500_ablations(s: WangDrct2Settings, m: int, mk: int) -> list[Variant]:
    """Table 4's resolution strategies and Fig. 6's m_key sweep (attention vs random)."""
    out = [Variant("drct1_highres", "drct1", "mse", "zoom", label="DrCT1, zoomed input"),
           Variant("drct1_model_fusion", "drct1", "mse", "window", label="DrCT1, model fusion"),
           Variant("drct2_aps_base", "drct2", "mse", "base_twice", mk,
                   label="DrCT2, APS at working size")]
    for k in s.fig6_m_keys:
        if k > m:
            continue
        if k != mk:
            out.append(Variant(f"drct2_k{k}", "drct2", "mse", "both", k,
                               label=f"DrCT2, m_key={k}"))
        if k < m:  # m_key = m: attention and random both pick every slice (not retrained)
            out.append(Variant(f"drct2_random_k{k}", "drct2_random", "mse", "both", k,
                               label=f"DrCT2, random m_key={k}"))
    return out


def norm_ablation(mk: int, s: WangDrct2Settings) -> Variant:
    """DrCT2 with the other choice of feature standardisation before eq. 3's softmax."""
    label = ("DrCT2, eq. 3 on raw z" if s.feature_standardize
             else "DrCT2, z standardised before eq. 3")
    return Variant("drct2_norm_ablation", "drct2", "mse", "both", mk, label=label,
                   flip_standardize=True)


def variants_for(name: str, s: WangDrct2Settings) -> list[Variant]:
    """The configurations trained on dataset `name` (core first, then ablations)."""
    m = s.of("seq_len", name)
    mk = min(s.m_key, m)
    out = [Variant("drct1", "drct1", "mse", "base", label="DrCT1"),
           Variant("drct2", "drct2", "mse", "both", mk, label="DrCT2"),
           SLICE_MAX]
    if not s.ablations:
        return out
    out += [Variant("drct2_bce", "drct2", "bce", "both", mk, label="DrCT2 (BCE/BCE)"),
            norm_ablation(mk, s)]
    if name == "cq500":
        return out + _cq500_ablations(s, m, mk)
    return out + [Variant("slice_baseline", "drct_slice_baseline", "slice", "base",
                          label="Slice-level baseline (any slice)")]


def _input_fn(v: Variant, window: tuple[int, int] | None) -> Callable[[Batch], torch.Tensor]:
    if v.inputs == "window":
        if window is None:
            raise ValueError("model fusion needs the attention window of the fold's DrCT2")
        return _in_window(*window)
    return {"base": _in_base, "zoom": _in_zoom, "both": _in_both,
            "base_twice": _in_base_twice}[v.inputs]


def build_model(v: Variant, data: ScanData, s: WangDrct2Settings, seed: int) -> nn.Module:
    """Create the registered model of variant `v` with the settings' sizes."""
    d = int(data.features.shape[-1])
    common = dict(num_classes=len(data.classes), feature_dim=d, fc=tuple(s.fc),
                  dropout=s.dropout, class_names=data.classes)
    if v.model == "drct_slice_baseline":
        return create_model(v.model, **common)
    standardize = (not s.feature_standardize) if v.flip_standardize else s.feature_standardize
    primary = dict(hidden=s.hidden, standardize=bool(standardize), rescale=s.feature_rescale,
                   output_activation=s.output_activation, pooling=s.slice_pooling)
    if v.model == "drct1":
        return create_model(v.model, **primary, **common)
    return create_model(v.model, m_key=v.m_key, seed=seed, zoom_size=s.zoom_size,
                        aps_pooling=s.aps_pooling, **primary, **common)


class Slim(nn.Module):
    """Prediction wrapper keeping only per-scan outputs we store (drops feature attention)."""

    KEEP = ("logits", "slice_attention", "key_index")

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.model(x)
        return {k: out[k] for k in self.KEEP if k in out}


# --------------------------------------------------------------------------- results
@dataclass
class CVResult:
    """Out-of-fold results of every variant on one dataset."""

    data: ScanData
    settings: WangDrct2Settings
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

    def fold_macro_aucs(self, variant: str) -> list[float]:
        """Macro ROC AUC of each fold's model on its own held-out scans (labels without both
        values in a fold are left out of that fold's mean; NaN when none has both)."""
        masks = [self.fold_of == f for f in np.unique(self.fold_of[self.fold_of >= 0])]
        return [macro_auc(self.data.labels[m], self.scores[variant][m]) for m in masks]

    def key(self, column: str = "any") -> np.ndarray:
        """(n_scans, M) bool: test-sequence slices showing `column` (RSNA per-slice labels)."""
        c = list(self.data.classes).index(column)
        out = np.zeros(self.positions.shape, bool)
        for i, sl in enumerate(self.data.slice_labels):
            if sl is None:
                raise ValueError(f"{self.name}: scan {self.data.case_ids[i]} has no slice labels")
            out[i] = np.nan_to_num(sl[self.positions[i], c]) > 0
        return out


def fusion_window_width(seq_len: int) -> int:
    """Width of the model-fusion window: the paper's slices 16-22 of 32, scaled."""
    return max(1, round(7 * seq_len / 32))


def _metric_fn(preds: Any) -> dict[str, float]:
    m = macro_prf(preds.y_true, preds.y_score)
    return {"precision": m["precision"], "recall": m["recall"], "f1": m["f1"]}


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


def _fusion_window(model: nn.Module, loader: Any, device: str, width: int) -> tuple[int, int]:
    """Window of `width` consecutive positions holding the most top-5 attended slices of the
    DrCT2 model over the (training) scans with any positive label (Fig. 7 -> Table 4)."""
    preds = predict(Slim(model), loader, input_fn=_in_both, device=device)
    y = np.nan_to_num(preds.y_true).max(axis=1) > 0
    att = preds.extras["slice_attention"][y if y.any() else slice(None)]
    m = att.shape[1]
    counts = np.bincount(np.argsort(-att, axis=1, kind="stable")[:, :5].ravel(), minlength=m)
    width = max(1, min(width, m))
    sums = np.convolve(counts, np.ones(width, int), mode="valid")
    lo = int(np.argmax(sums))
    return lo, lo + width


# --------------------------------------------------------------------------- training
def _train_variant(v: Variant, data: ScanData, s: WangDrct2Settings, train_loader: Any,
                   test_loader: Any, input_fn: Callable, run_seed: int, dev: str,
                   checkpoint_dir: Path | None = None) -> Any:
    """Train one variant on one fold (last epoch kept; DrCT2 logs held-out P/R per epoch).

    With `checkpoint_dir` every epoch is checkpointed and a rerun resumes (a finished
    training is loaded, not retrained)."""
    seed_everything(run_seed)
    model = build_model(v, data, s, run_seed)
    losses = ({"slice": slice_level_losses, "scan_max": scan_max_losses}[v.loss]()
              if v.loss in ("slice", "scan_max") else drct_losses(v.model, v.loss))
    groups = (model.lr_groups(s.lr_primary, s.lr_aps, s.lr_fusion)
              if hasattr(model, "lr_groups") and v.model != "drct1" else None)
    if hasattr(model, "set_feature_stats"):
        model.set_feature_stats(*_input_stats(train_loader, input_fn))
    curve = v.name == "drct2"
    lr = s.lr_slice_max if v.loss == "scan_max" else s.lr_primary
    return fit(model, train_loader, test_loader if curve else None, losses=losses,
               epochs=int(s.epochs), lr=lr, param_groups=groups, monitor="epoch",
               mode="max", metric_fn=_metric_fn if curve else None, device=dev, seed=run_seed,
               progress=False, input_fn=input_fn, checkpoint_dir=checkpoint_dir,
               resume=checkpoint_dir is not None)


def cross_validate(data: ScanData, s: WangDrct2Settings, seed: int = 0, device: str = "auto",
                   variants: Sequence[Variant] | None = None, progress: bool = False,
                   checkpoint_dir: Callable[[str], Path] | None = None,
                   threads: int | None = None) -> CVResult:
    """k-fold CV (patients never split) of every variant; returns out-of-fold results.

    Each fold trains every variant of `variants_for` (or `variants`) with `engine.fit` on
    the training scans' sequences (extra sequences included) for ``epochs`` epochs, without
    model selection on the held-out fold (the last epoch is kept; DrCT2 also logs held-out
    precision/recall per epoch for Fig. 5), then predicts the held-out scans' first sequence.
    `checkpoint_dir(name)` (e.g. ``exp.checkpoint_dir``) gives each training's checkpoint
    folder, ``name = f"{variant}-{dataset}-fold{k}"``: rerunning after a kill resumes, and
    finished folds are not retrained. `threads`: torch threads while training (None leaves
    torch's setting). Same seed, same result on CPU.
    """
    with torch_threads(threads):
        return _cross_validate(data, s, seed, str(resolve_device(device)),
                               list(variants or variants_for(data.name, s)), progress,
                               checkpoint_dir)


def _empty_result(data: ScanData, s: WangDrct2Settings, variants: list[Variant],
                  dev: str) -> CVResult:
    n, m, c = data.n_scans, data.seq_len, len(data.classes)
    positions = np.stack([fixed_length_sequences(data.n_slices(i), m, False)[0]
                          for i in range(n)])
    return CVResult(data, s, variants, np.full(n, -1),
                    {v.name: np.full((n, c), np.nan, np.float32) for v in variants},
                    {v.name: np.full((n, m), np.nan, np.float32) for v in variants},
                    positions, pd.DataFrame(), {}, {}, {}, {v.name: 0.0 for v in variants}, dev)


def _cross_validate(data: ScanData, s: WangDrct2Settings, seed: int, dev: str,
                    variants: list[Variant], progress: bool,
                    checkpoint_dir: Callable[[str], Path] | None = None) -> CVResult:
    cv = _empty_result(data, s, variants, dev)
    folds = kfold_split(data.labels, int(s.of("folds", data.name)), seed=seed,
                        groups=data.groups)
    batch = int(s.of("batch", data.name))
    rows = []
    order = sorted(variants, key=lambda v: v.inputs == "window")  # fusion after its DrCT2
    pairs = [(f, v) for f in range(len(folds)) for v in order]
    for fold, v in tqdm(pairs, desc=f"{data.name} folds x variants", mininterval=1.0,
                        disable=not progress):
        train_idx, test_idx = folds[fold]
        cv.fold_of[test_idx] = fold
        run_seed = int(seed) * 1000 + fold
        train_loader = make_loader(SequenceSet(data, train_idx, extra=bool(s.extra_sequences)),
                                   batch, shuffle=True, seed=run_seed)
        test_loader = make_loader(SequenceSet(data, test_idx, extra=False), batch, shuffle=False)
        if v.inputs == "window" and fold not in cv.windows:
            raise ValueError("model fusion needs DrCT2 trained first in the same fold")
        input_fn = _input_fn(v, cv.windows.get(fold))
        t0 = time.perf_counter()
        ckpt = (checkpoint_dir(f"{v.name}-{data.name}-fold{fold}")
                if checkpoint_dir is not None else None)
        result = _train_variant(v, data, s, train_loader, test_loader, input_fn, run_seed, dev,
                                ckpt)
        cv.seconds[v.name] += time.perf_counter() - t0
        rows.append(_store_fold(cv, v, fold, result, test_loader, input_fn, test_idx))
        if v.name == "drct2":
            cv.windows[fold] = _fusion_window(result.model, make_loader(
                SequenceSet(data, train_idx, extra=False), batch), dev,
                fusion_window_width(data.seq_len))
    cv.fold_metrics = pd.DataFrame(rows)
    return cv


def _store_fold(cv: CVResult, v: Variant, fold: int, result: Any, test_loader: Any,
                input_fn: Callable, test_idx: Sequence[int]) -> dict[str, Any]:
    """Predict the held-out scans, store scores/attention/history/weights; fold metrics row."""
    data = cv.data
    model = result.model.eval()
    cv.histories[(v.name, fold)] = result.history
    preds = predict(Slim(model), test_loader, input_fn=input_fn, device=cv.device)
    idx = np.asarray(test_idx)
    if preds.ids != [data.case_ids[i] for i in idx]:
        raise RuntimeError("prediction order differs from the test scans")
    cv.scores[v.name][idx] = preds.y_score
    if "slice_attention" in preds.extras:
        cv.attention[v.name][idx] = preds.extras["slice_attention"]
    if v.name in ("drct1", "drct2"):
        cv.states[(v.name, fold)] = {k: t.detach().cpu().clone()
                                     for k, t in model.state_dict().items()}
    return {"dataset": data.name, "model": v.name, "fold": fold,
            **macro_prf(data.labels[idx], preds.y_score)}
