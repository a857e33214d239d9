"""Dscint and the classical baselines of Lin et al. 2021 (Med Phys 48, doi:10.1002/mp.15196).

The abstract fixes Dscint's outline only: "eight weight layers, one hybrid attention module,
two normalization modules, two fully connected layers, and one softmax layer", the attention
being "spatial and channel". Everything else is a reading, stated in `DSCINT_CONFIG`:

* weight layers: six convolutions + the two fully connected layers (6 + 2 = 8);
* normalisation: BatchNorm after the first two convolutions (where AlexNet, the classical
  network of that size, put its two local-response normalisations);
* hybrid attention: one CBAM block (channel, then spatial; `brainlib.layers.attention`) after
  the last convolution;
* the last feature map is flattened into the first FC layer (``head="flatten"``, the classical
  conv -> FC design of networks of that size), so the FC layers see *where* uptake is; this
  needs the working input size. Global average pooling (``head="avg"``), our first reading,
  diluted a focal hot spot over the whole 8 x 4 map: on the quick phantoms Dscint then barely
  trained in 10 epochs (training loss ~1.0, test accuracy ~0.5 in both evaluations, 3 seeds);
  ``head="max"`` (global max pooling) is kept for comparison;
* convolutions start from He (Kaiming) normal weights (fan-out, ReLU), as torchvision's VGG and
  ResNet do: four of the six convolutions have no normalisation after them;
* the softmax layer is the model's output activation: `forward` returns logits (trained with
  cross-entropy, which contains the softmax) and `predict_proba` applies it;
* input: both views as two channels (anterior, and posterior mirrored left-right so that each
  pixel shows the same side of the body in both channels).

Baselines (AlexNet, ResNet-18, VGG-16 with BatchNorm, DenseNet-121 in torchvision's layouts;
Inception-v4 from timm), adapted to the two-view input and four classes; `width` < 1 scales
their channel counts for CPU profiles (timm's Inception-v4 has no such knob: below width 1 it is
rebuilt from timm's own blocks with scaled channels, `brainlib.models.dscint_inception`). It needs
an input side of at least 75 px (`INCEPTION_MIN_SIDE`, measured: its valid-padded stem and
reductions leave nothing of 74 px); a smaller input is upsampled (bilinear, aspect kept) to it
by a forward pre-hook, which does nothing at the full profile's 256 x 128. They start from random
weights: ImageNet weights cannot be downloaded here. A local weights file (torchvision or timm
state dict) can be given with ``weights=``; tensors whose shapes match are loaded (the first
convolution, built for two channels, and the classifier stay random) and `init_note` says so.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from brainlib.data.classes import BONESCAN_CLASSES
from brainlib.layers.attention import CBAM
from brainlib.models._registry import register_model
from brainlib.models._weights import load_weights

__all__ = ["Dscint", "DSCINT_CONFIG", "BASELINES", "HEADS", "INCEPTION_MIN_SIDE", "count_structure",
           "feature_size", "init_note", "min_input_size"]


class Dscint(nn.Module):
    """Dscint: 6 conv + 2 FC weight layers, 2 BatchNorms, one CBAM, softmax output.

    Shape contract: ``x`` (B, in_channels, H, W) -> logits (B, num_classes); H, W >= 32 and,
    with ``head="flatten"``, (H, W) == ``input_size``.

    Args:
        in_channels: 2 (anterior + mirrored posterior) by default.
        num_classes: 4 (normal, metastasis, arthritis, thyroid carcinoma).
        widths: output channels of the six convolutions.
        hidden: units of the first FC layer.
        reduction: CBAM channel-attention bottleneck ratio.
        dropout: dropout before each FC layer.
        head: ``"flatten"`` (the feature map into the first FC layer), ``"avg"`` or ``"max"``
            (global pooling: any input size).
        input_size: (H, W) the flatten head is built for.
        init: ``"kaiming"`` (He-normal convolutions) or ``"default"`` (PyTorch's).
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 4,
                 widths: tuple[int, ...] = (32, 64, 128, 128, 256, 256), hidden: int = 256,
                 reduction: int = 16, dropout: float = 0.5, head: str = "flatten",
                 input_size: tuple[int, int] = (256, 128), init: str = "kaiming") -> None:
        super().__init__()
        if len(widths) != 6:
            raise ValueError(f"Dscint has six convolutions, got widths {widths}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if init not in ("kaiming", "default"):
            raise ValueError(f"init must be 'kaiming' or 'default', got {init!r}")
        c1, c2, c3, c4, c5, c6 = widths
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, stride=2, padding=2), nn.BatchNorm2d(c1), relu(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), relu(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), relu(),
            nn.Conv2d(c3, c4, 3, padding=1), relu(), nn.MaxPool2d(2),
            nn.Conv2d(c4, c5, 3, padding=1), relu(),
            nn.Conv2d(c5, c6, 3, padding=1), relu(),
        )
        self.attention = CBAM(c6, reduction=reduction, kernel_size=7)
        self.head, self.input_size = head, tuple(int(v) for v in input_size)
        cells = int(np.prod(feature_size(self.input_size))) if head == "flatten" else 1
        self.pool = {"flatten": nn.Identity(), "avg": nn.AdaptiveAvgPool2d(1),
                     "max": nn.AdaptiveMaxPool2d(1)}[head]
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(c6 * cells, hidden), relu(),
            nn.Dropout(dropout), nn.Linear(hidden, num_classes),
        )
        for m in self.features if init == "kaiming" else ():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        self.softmax = nn.Softmax(dim=1)
        self.classes = BONESCAN_CLASSES if num_classes == len(BONESCAN_CLASSES) else ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head == "flatten" and tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(f"Dscint (flatten head) was built for input {self.input_size}, "
                             f"got {tuple(x.shape[-2:])}")
        return self.classifier(self.pool(self.attention(self.features(x))))

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities: the softmax layer applied to the logits."""
        return self.softmax(self.forward(x))

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial-attention map of the hybrid module, (B, 1, h, w) in (0, 1)."""
        f = self.features(x)
        return self.attention.spatial.weights(self.attention.channel(f))


HEADS: tuple[str, ...] = ("flatten", "avg", "max")


def feature_size(input_size: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of Dscint's last feature map for an (H, W) input: stride-2 conv, three 2x2 pools."""
    h, w = input_size
    h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1  # 5x5 conv, stride 2, padding 2
    for _ in range(3):
        h, w = h // 2, w // 2
    if h < 1 or w < 1:
        raise ValueError(f"input {input_size} is too small for Dscint (needs >= 32 x 32)")
    return h, w


def count_structure(model: nn.Module) -> dict[str, int]:
    """Weight layers (conv + linear outside attention), normalisations, attention, FC, softmax."""
    attention = [m for m in model.modules() if isinstance(m, CBAM)]
    inside = {id(p) for a in attention for p in a.modules()}
    outside = [m for m in model.modules() if id(m) not in inside]
    return {
        "weight_layers": sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in outside),
        "hybrid_attention_modules": len(attention),
        "normalization_modules": sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in outside),
        "fully_connected_layers": sum(isinstance(m, nn.Linear) for m in outside),
        "softmax_layers": sum(isinstance(m, nn.Softmax) for m in outside),
    }


# --------------------------------------------------------------------------- baselines
def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    """Swap the first Conv2d for one taking `in_channels` (same kernel, stride, padding)."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                setattr(parent, name, nn.Conv2d(
                    in_channels, child.out_channels, child.kernel_size, child.stride,
                    child.padding, bias=child.bias is not None))
                return
    raise ValueError("model has no Conv2d")


def _load_matching(model: nn.Module, weights: str | os.PathLike) -> str:
    """Load a local state dict (weights_only, sha256 recorded); say what stayed random.

    Only the first convolution (rebuilt for two views) and the last linear layer (four classes)
    may be missing or of another shape; any other difference refuses the file
    (:class:`brainlib.models._weights.WeightsMismatchError`): an ImageNet file does not fit a
    network of another width or layout.
    """
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    free = {f"{n}.{t}" for n in (convs[:1] + linears[-1:]) for t in ("weight", "bias")}
    loaded = load_weights(model, weights, "ImageNet (torchvision/timm layout)", allow_missing=free,
                          allow_shape=free)
    kept = loaded.total - loaded.loaded
    return (f"{loaded.loaded} of {loaded.total} tensors from {weights} (sha256 {loaded.sha256[:16]})"
            + (f"; {kept} left random (first conv, classifier)" if kept else ""))


def _w(c: int, width: float) -> int:
    return max(8, int(round(c * width)))


def _alexnet(num_classes: int, in_channels: int, width: float) -> nn.Module:
    """torchvision's AlexNet layout (same module names), channel counts scaled by `width`."""
    import torchvision.models as tvm

    model = tvm.AlexNet(num_classes=num_classes)
    c = [_w(n, width) for n in (64, 192, 384, 256, 256)]
    hidden = _w(4096, width)
    model.features = nn.Sequential(
        nn.Conv2d(in_channels, c[0], 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
    model.classifier = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(c[4] * 36, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes))
    return model


def _vgg16_bn(num_classes: int, in_channels: int, width: float) -> nn.Module:
    """torchvision's VGG-16 with BatchNorm (same module names), widths scaled by `width`."""
    from torchvision.models.vgg import VGG, cfgs, make_layers

    cfg = [v if v == "M" else _w(v, width) for v in cfgs["D"]]
    model = VGG(make_layers(cfg, batch_norm=True), num_classes=num_classes)
    hidden, last = _w(4096, width), cfg[-2]
    model.classifier = nn.Sequential(
        nn.Linear(last * 49, hidden), nn.ReLU(True), nn.Dropout(0.5),
        nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(0.5), nn.Linear(hidden, num_classes))
    _replace_first_conv(model, in_channels)
    return model


def _resnet18(num_classes: int, in_channels: int, width: float) -> nn.Module:
    """ResNet-18 (timm's ResNet, torchvision's module names), channels scaled by `width`."""
    from timm.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes, in_chans=in_channels,
                  stem_width=_w(64, width), channels=tuple(_w(c, width) for c in (64, 128, 256, 512)))


def _densenet121(num_classes: int, in_channels: int, width: float) -> nn.Module:
    """torchvision's DenseNet-121, growth rate and stem scaled by `width`."""
    from torchvision.models.densenet import DenseNet

    model = DenseNet(growth_rate=_w(32, width), block_config=(6, 12, 24, 16),
                     num_init_features=_w(64, width), num_classes=num_classes)
    _replace_first_conv(model, in_channels)
    return model


def _finish(model: nn.Module, label: str, weights: str | os.PathLike | None) -> nn.Module:
    loaded = _load_matching(model, weights) if weights else None
    model.init_note = (f"{label}: {loaded}" if loaded else  # type: ignore[attr-defined]
                       f"{label} from random initialisation (no local ImageNet weights file given)")
    model.classes = BONESCAN_CLASSES  # type: ignore[attr-defined]
    return model


#: Smallest input side timm's Inception-v4 runs on (measured: 74 px fails, 75 px runs).
INCEPTION_MIN_SIDE = 75

#: Registered baseline name -> (label in tables, smallest input side in pixels the built model
#: accepts; Inception-v4 upsamples anything smaller than `INCEPTION_MIN_SIDE`).
BASELINES: dict[str, tuple[str, int]] = {
    "lin2021_alexnet": ("AlexNet", 64),
    "lin2021_resnet18": ("ResNet-18", 32),
    "lin2021_vgg16": ("VGG-16 (BN)", 32),
    "lin2021_densenet121": ("DenseNet-121", 32),
    "lin2021_inception_v4": ("Inception-v4", 32),
}


def _upsample_to_min_side(min_side: int):
    """A forward pre-hook: bilinear upsampling (aspect kept) when the input's short side < `min_side`."""
    def hook(module: nn.Module, args: tuple) -> tuple | None:
        x = args[0]
        short = min(x.shape[-2:])
        if short >= min_side:
            return None
        scale = min_side / short
        size = tuple(max(min_side, int(np.ceil(v * scale))) for v in x.shape[-2:])
        return (torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False),
                *args[1:])
    return hook


def _label(name: str, width: float) -> str:
    return name if width == 1.0 else f"{name} at width {width:g}"


def min_input_size(name: str) -> int:
    """Smallest input side a registered lin2021 model accepts (Dscint: 32)."""
    return BASELINES.get(name, ("", 32))[1]


def init_note(model: nn.Module) -> str:
    """How a model was initialised (random or which local file), for the manifest."""
    return getattr(model, "init_note", "random initialisation")


#: The model file's config: input, classes, reading of the abstract, paper reference.
DSCINT_CONFIG: dict[str, Any] = {
    "paper": "Lin et al. 2021, Med Phys 48, doi:10.1002/mp.15196 (abstract only)",
    "classes": BONESCAN_CLASSES,
    "in_channels": 2,
    "input": "anterior and left-right mirrored posterior view as two channels",
    "widths": (32, 64, 128, 128, 256, 256),
    "hidden": 256,
    "head": "flatten",
    "init": "He (Kaiming) normal, fan-out, ReLU; zero biases",
    "structure": {"weight_layers": 8, "hybrid_attention_modules": 1, "normalization_modules": 2,
                  "fully_connected_layers": 2, "softmax_layers": 1},
}


@register_model("lin2021_dscint", paper="lin2021")
def dscint(num_classes: int = 4, in_channels: int = 2, width: float = 1.0, hidden: int | None = None,
           dropout: float = 0.5, head: str = DSCINT_CONFIG["head"],
           input_size: tuple[int, int] = (256, 128), init: str = "kaiming", **_: Any) -> Dscint:
    """Dscint; `width` scales the six convolution widths (CPU profiles); `input_size` (H, W)
    is the working size the flatten head is built for."""
    widths = tuple(max(8, int(round(c * width))) for c in DSCINT_CONFIG["widths"])
    model = Dscint(in_channels, num_classes, widths,
                   hidden or max(16, int(round(DSCINT_CONFIG["hidden"] * width))), dropout=dropout,
                   head=head, input_size=input_size, init=init)
    model.init_note = "Dscint from random initialisation (the paper trains it from scratch)"  # type: ignore[attr-defined]
    return model


@register_model("lin2021_alexnet", paper="lin2021")
def alexnet(num_classes: int = 4, in_channels: int = 2, width: float = 1.0,
            weights: str | None = None, **_: Any) -> nn.Module:
    return _finish(_alexnet(num_classes, in_channels, width), _label("AlexNet", width), weights)


@register_model("lin2021_resnet18", paper="lin2021")
def resnet18(num_classes: int = 4, in_channels: int = 2, width: float = 1.0,
             weights: str | None = None, **_: Any) -> nn.Module:
    return _finish(_resnet18(num_classes, in_channels, width), _label("ResNet-18", width), weights)


@register_model("lin2021_vgg16", paper="lin2021")
def vgg16(num_classes: int = 4, in_channels: int = 2, width: float = 1.0,
          weights: str | None = None, **_: Any) -> nn.Module:
    return _finish(_vgg16_bn(num_classes, in_channels, width), _label("VGG-16 (BN)", width), weights)


@register_model("lin2021_densenet121", paper="lin2021")
def densenet121(num_classes: int = 4, in_channels: int = 2, width: float = 1.0,
                weights: str | None = None, **_: Any) -> nn.Module:
    return _finish(_densenet121(num_classes, in_channels, width), _label("DenseNet-121", width),
                   weights)


@register_model("lin2021_inception_v4", paper="lin2021")
def inception_v4(num_classes: int = 4, in_channels: int = 2, width: float = 1.0,
                 weights: str | None = None, **_: Any) -> nn.Module:
    """timm's Inception-v4 (`timm.create_model("inception_v4")` at width 1; below 1 the same
    network built from timm's blocks with every channel count x `width`,
    `brainlib.models.dscint_inception.scaled_inception_v4`). Inputs with a side below
    `INCEPTION_MIN_SIDE` are upsampled to it (`model.input_note` says so)."""
    if width == 1.0:
        import timm

        model = timm.create_model("inception_v4", pretrained=False, num_classes=num_classes,
                                  in_chans=in_channels)
    else:
        from brainlib.models.dscint_inception import scaled_inception_v4

        model = scaled_inception_v4(num_classes, in_channels, width)
    model.register_forward_pre_hook(_upsample_to_min_side(INCEPTION_MIN_SIDE))
    model.input_note = (f"inputs with a side < {INCEPTION_MIN_SIDE} px upsampled (bilinear) to "  # type: ignore[attr-defined]
                        f"{INCEPTION_MIN_SIDE} px, Inception-v4's smallest")
    return _finish(model, _label("Inception-v4 (timm)", width), weights)
