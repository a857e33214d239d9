"""GPU-hour estimates of each paper's ``full`` profile on the real datasets (docs/scale.md).

An estimate is ``sum over trainings of (cases per epoch x epochs x runs x FLOPs per case)``
divided by an assumed GPU throughput. FLOPs per case are *measured*: one forward and backward
pass of the paper's network at its full-profile input size, counted by
``torch.utils.flop_counter.FlopCounterMode`` on the meta device (shapes only, no arithmetic,
so it runs on this CPU in a second). What is assumed, and why:

* ``GPU_TFLOPS = 60``: the sustained training throughput of one NVIDIA A100 with mixed
  precision and channels-last on convolutional networks. Anchor: ResNet-50 trains at about
  2,600 images/s on an A100 with timm's ``--amp --channels-last`` (huggingface/pytorch-image-
  models issue 1491); ResNet-50's forward+backward at 224 px counts ~24.5 GFLOP here
  (:func:`flops_per_case`), i.e. ~64 TFLOP/s sustained, ~20 % of the A100's 312 TFLOP/s
  bf16 peak. Models with small or memory-bound layers (attention maps, deformable
  convolutions, recurrent heads) sustain less, so these are lower bounds on GPU time.
* Dataset sizes are the public releases' counts (RSNA 2019 stage-2 train 752,803 slices;
  CQ500 1,181 scans of 32-396 slices, Wang et al. Table 1; DeepLesion 32,120 key slices;
  BUSI 780 images). Lin et al.'s Dscint set is private and its size not given: its estimate
  is per 1,000 scans.
* Evaluation passes (validation each epoch, bootstrap, CAMs) are not counted (forward only on
  a tenth of the data: < 5 % of training).
"""
from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

GPU_TFLOPS = 60.0
GPU_NAME = "one NVIDIA A100 (mixed precision, channels-last), 60 TFLOP/s sustained (assumed)"

RSNA_TRAIN_SLICES = 752_803
CQ500_SCANS = 1_181
CQ500_MEAN_SLICES = 100  # Wang et al. Table 1: 32-396 slices per scan; a mid value (assumed)
DEEPLESION_KEY_SLICES = 32_120
BUSI_IMAGES = 780


@dataclass(frozen=True)
class Training:
    """``runs`` trainings of ``model`` on ``cases`` cases per epoch for ``epochs`` epochs."""

    label: str
    model: str
    inputs: tuple[tuple[int, ...], ...]  # per-case input shapes (no batch dimension)
    cases: float
    epochs: float
    runs: int = 1
    kwargs: dict[str, Any] = field(default_factory=dict)
    forward_only: bool = False  # feature extraction, not training
    note: str = ""


@dataclass
class Estimate:
    paper: str
    rows: list[dict[str, Any]]
    gpu_hours: float
    assumption: str = GPU_NAME
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"{self.paper} full profile: about {self.gpu_hours:.3g} GPU hours on {self.assumption}"]
        for r in self.rows:
            lines.append(f"  {r['label']}: {r['gflop_per_case']:,.1f} GFLOP/case x {r['cases']:,.0f} "
                         f"cases x {r['epochs']:g} epochs x {r['runs']} runs = {r['gpu_hours']:.3g} h")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"paper": self.paper, "gpu_hours": round(self.gpu_hours, 2),
                "assumption": self.assumption, "gpu_tflops": GPU_TFLOPS, "trainings": self.rows,
                "notes": self.notes}


_FLOPS: dict[tuple, float] = {}


def flops_per_case(model: str, inputs: tuple[tuple[int, ...], ...], forward_only: bool = False,
                   batch: int = 2, **kwargs: Any) -> float:
    """Forward (+ backward) FLOPs per case of registered ``model``, counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    from brainlib.models import create_model

    key = (model, inputs, forward_only, tuple(sorted(kwargs.items())))
    if key in _FLOPS:
        return _FLOPS[key]
    with torch.device("meta"):
        net = _EXTRA_MODELS[model](**kwargs) if model in _EXTRA_MODELS else create_model(model, **kwargs)
        xs = [torch.randn(batch, *shape) for shape in inputs]
    counter = FlopCounterMode(display=False)
    with counter:
        out = net(*xs)
        if not forward_only:
            _sum_outputs(out).backward()
    _FLOPS[key] = counter.get_total_flops() / batch
    return _FLOPS[key]


def _resnet50() -> torch.nn.Module:
    import torchvision

    return torchvision.models.resnet50()


def _slice_encoder(**kwargs: Any) -> torch.nn.Module:
    from brainlib.models.slice_encoder import SliceEncoder

    return SliceEncoder(weights=None, **kwargs)


#: networks outside the model registry: the anchor of GPU_TFLOPS and DrCT's slice encoder
_EXTRA_MODELS: dict[str, Callable[..., torch.nn.Module]] = {
    "resnet50": _resnet50, "slice_encoder": _slice_encoder}


def _sum_outputs(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out.float().sum()
    if isinstance(out, dict):
        return sum(_sum_outputs(v) for v in out.values() if isinstance(v, torch.Tensor)
                   and v.is_floating_point() and v.requires_grad)
    return sum(_sum_outputs(v) for v in out)


def estimate(paper: str, trainings: list[Training], notes: list[str] | None = None) -> Estimate:
    """GPU hours of ``trainings`` at :data:`GPU_TFLOPS`."""
    rows, total = [], 0.0
    for t in trainings:
        flops = flops_per_case(t.model, t.inputs, t.forward_only, **t.kwargs)
        hours = flops * t.cases * t.epochs * t.runs / (GPU_TFLOPS * 1e12) / 3600
        total += hours
        rows.append({"label": t.label, "model": t.model, "gflop_per_case": flops / 1e9,
                     "cases": t.cases, "epochs": t.epochs, "runs": t.runs, "gpu_hours": hours,
                     "note": t.note})
    return Estimate(paper, rows, total, notes=list(notes or []))


def full_trainings(paper: str) -> tuple[list[Training], list[str]]:
    """The trainings of ``paper``'s full profile on the real data, from its settings."""
    return _PLANS[paper]()


def full_estimate(paper: str) -> Estimate:
    """Estimate of ``paper``'s full run (printed by ``brainlib run --profile full``)."""
    trainings, notes = full_trainings(paper)
    return estimate(paper, trainings, notes)


def _settings(paper: str) -> Any:
    import importlib

    module = importlib.import_module(f"brainlib.papers.{paper}.settings")
    cls = next(v for k, v in vars(module).items() if k.endswith("Settings") and isinstance(v, type)
               and v.__module__ == module.__name__)
    return cls.for_profile("full")


def _he2024() -> tuple[list[Training], list[str]]:
    from brainlib.models.he2024 import HE2024_VARIANTS

    s = _settings("he2024")
    cases = RSNA_TRAIN_SLICES * (1 - s.test_fraction) * (1 - s.val_fraction)
    size = s.image_size
    return ([Training("Table 4 / ablation variants", "he2024_full", ((1, size, size),), cases,
                      s.epochs, runs=len(HE2024_VARIANTS))],
            [f"{len(HE2024_VARIANTS)} variants, each costed as the full model (the others are "
             "no larger)"])


def _wang_drct2() -> tuple[list[Training], list[str]]:
    s = _settings("wang_drct2")
    slices = RSNA_TRAIN_SLICES + CQ500_SCANS * CQ500_MEAN_SLICES
    arch = {"arch": s.encoder_arch}
    return ([Training("slice encoder features at 224 px (every slice)", "slice_encoder",
                      ((3, s.image_size, s.image_size),), slices, 1, kwargs=arch, forward_only=True),
             Training("slice encoder features at the 512 px zoom (every slice)", "slice_encoder",
                      ((3, s.zoom_size, s.zoom_size),), slices, 1, kwargs=arch, forward_only=True)],
            ["every slice encoded at both sizes (an upper bound: the paper zooms key slices); "
             "sequence networks on cached features (BiGRU, 100 epochs x folds) are not counted"])


def _yin2024() -> tuple[list[Training], list[str]]:
    s = _settings("yin2024")
    samples = s.max_iterations * s.batch_size
    size = s.image_size
    rows = [Training(f"classifiers depth {d} (plain, deformable, 3 attentions)",
                     f"yin2024_tccbam_dresnet{d}", ((3, size, size),), samples, 1, runs=5)
            for d in s.depths]
    return rows, [f"{s.max_iterations} iterations of batch {s.batch_size} per network (paper); "
                  "FlopCounterMode counts no FLOPs for torchvision's deform_conv2d and roi_align, "
                  "so deformable layers are undercounted and the Mask R-CNN detectors are left out"]


def _lin2021() -> tuple[list[Training], list[str]]:
    s = _settings("lin2021")
    h = s.image_size
    cases = 1000 * (1 + s.n_augment)
    return ([Training("Dscint per 1,000 scans (augmented copies included)", "lin2021_dscint",
                      ((2, h, h // 2),), cases, s.epochs, kwargs={"input_size": (h, h // 2)})],
            ["private dataset of unstated size: hours per 1,000 scans; the five classical "
             "baselines are not counted"])


def _pandiyaraju2024() -> tuple[list[Training], list[str]]:
    s = _settings("pandiyaraju2024")
    return ([Training("LinkNet-InceptionResNet + scSE segmentation", "pandiyaraju2024_linknet_scse",
                      ((3, s.image_size, s.image_size),), BUSI_IMAGES * 0.8, s.seg_epochs),
             Training("DCNNIMAF classifier", "pandiyaraju2024_dcnnimaf",
                      ((3, s.crop_size, s.crop_size),), BUSI_IMAGES * 0.8, s.cls_epochs)],
            ["80 % of BUSI for training (split not in the abstract)"])


_PLANS: dict[str, Callable[[], tuple[list[Training], list[str]]]] = {
    "he2024": _he2024, "wang_drct2": _wang_drct2, "yin2024": _yin2024, "lin2021": _lin2021,
    "pandiyaraju2024": _pandiyaraju2024,
}


PAPERS_PLANNED = tuple(_PLANS)


@dataclass(frozen=True)
class CachePlan:
    """Whether a pixel cache of ``n_slices`` fits: ``bytes_needed`` vs ``bytes_free`` at ``folder``."""

    n_slices: int
    bytes_needed: int
    bytes_free: int
    folder: str
    fits: bool

    def text(self) -> str:
        verdict = "fits" if self.fits else "does NOT fit (stream: cache=False, decode in workers)"
        return (f"pixel cache of {self.n_slices:,} slices: {self.bytes_needed / 1e9:,.1f} GB; "
                f"{self.bytes_free / 1e9:,.1f} GB free at {self.folder}: {verdict}")


def cache_plan(n_slices: int, size: int, channels: int, itemsize: int, folder: str | os.PathLike,
               reserve: float = 0.1) -> CachePlan:
    """Size of a ``(n, channels, size, size)`` cache and a free-space check before building it.

    ``itemsize``: 1 for windowed uint8, 2 for int16 HU (:mod:`brainlib.data.cache`). The cache
    fits if it leaves ``reserve`` of the file system free. docs/scale.md: RSNA at 512 px does
    not fit a typical disk (394 GB of int16 HU), so its trainings stream.
    """
    need = int(n_slices) * channels * size * size * itemsize
    path = Path(folder)
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    return CachePlan(int(n_slices), need, int(usage.free), str(path),
                     need <= usage.free - reserve * usage.total)


def hours_text(estimates: list[Estimate]) -> str:
    total = sum(e.gpu_hours for e in estimates if not math.isnan(e.gpu_hours))
    return "\n".join([e.text() for e in estimates]
                     + [f"total: about {total:,.0f} GPU hours ({math.ceil(total / 24)} GPU days)"])


def full_run_text(papers: list[str]) -> str:
    """What ``brainlib run --profile full`` prints before it starts (one block per paper)."""
    blocks = []
    for paper in papers:
        try:
            blocks.append(full_estimate(paper))
        except Exception as exc:  # an estimate must not stop a run; say why it is missing
            blocks.append(Estimate(paper, [], float("nan"),
                                   notes=[f"no estimate ({type(exc).__name__}: {exc})"]))
    return hours_text(blocks)
