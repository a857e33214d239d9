"""He et al. 2024, "Deep multiscale convolutional feature learning for intracranial hemorrhage
classification and weakly supervised localization", Heliyon 10, e30270.

VGG-16 whose input layer is the window-setting optimisation module (eq. 3.1), whose C3, C4
and C5 features are brought to one size by stride-2 convolutions, concatenated, recalibrated
by channel attention (average + max pooling into one bottleneck, eqs. 3.2-3.4) and spatial
attention (eq. 3.5), then global-average pooled into six sigmoid outputs (``any`` + five
subtypes, `brainlib.data.classes.RSNA_CLASSES`). CAM (Zhou et al. 2016) is read from the
attended fused features (`CAM_TARGET`) with the classifier weights (`CAM_CLASSIFIER`).

Choices the paper leaves open, made here and stated:
- C3, C4, C5 are the outputs of conv3_3, conv4_3 and conv5_3 (before their max-pools), so the
  fused map is 1/16 of the input, the usual resolution for CAM; C3 goes through two stride-2
  3x3 convolutions and C4 through one, each projecting to C5's channel count.
- The bottleneck reduction r is 16 (the SE default; not given in the paper).
- The module's output U*sigmoid(.) is divided by U and centred ((x - 0.5) / 0.5) before VGG;
  this leaves W and b, hence the learned windows, unchanged.
- One-channel inputs (brain window, raw HU) are repeated to VGG's three input channels.
- Raw HU (Table 4, first row) enters as HU / 1000, a fixed linear scaling that keeps all
  information. "Without window module" (Table 3) feeds the three preset windows computed
  the conventional way (clipped linear ramp, `brainlib.io.window`) with no module at all.
- "Without multiscale fusion" keeps the channel + spatial attention, on C5 alone.
- Table 4's fixed-window rows are the module frozen at its preset initialisation (the paper:
  "only completes mapping the HU value to fixed window images").
- New layers (and the backbone when no ImageNet weights are given) get torchvision's VGG
  initialisation (Kaiming-normal convolutions, N(0, 0.01) linear layer).
- Table 4's "trained from random init" module: PyTorch's default 1x1-convolution init
  (U(-1, 1) for W and b, fan-in 1) would put W x at hundreds on HU input, a saturated sigmoid
  that passes no gradient. W is drawn from U(-1, 1) / 1000 instead (the default init for the
  HU / 1000 input the raw-HU row gets) and b from U(-1, 1): every channel starts as a broad,
  unsaturated ramp over -1000..1000 HU (`random_window_init`).
- ``batch_norm=True`` (CPU profiles only, a declared deviation) uses the `vgg16_bn` layout.
Every model takes HU images (B, 1, H, W); H and W must be multiples of 16.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn

from brainlib.data.classes import RSNA_CLASSES
from brainlib.io import BRAIN, SOFT_TISSUE, SUBDURAL, window
from brainlib.layers.attention import ChannelAttention, SpatialAttention
from brainlib.layers.window_module import WindowModule
from brainlib.models._registry import register_model
from brainlib.models.backbones import vgg16_channels, vgg16_features, vgg16_stage_slices

__all__ = ["He2024Net", "HE2024_CONFIG", "HE2024_VARIANTS", "CAM_TARGET", "CAM_CLASSIFIER",
           "STRUCTURE_READINGS", "random_window_init"]

InputMode = Literal["module", "preset", "hu"]

CAM_TARGET = "attention"      # module whose output is the attended fused feature map
CAM_CLASSIFIER = "classifier"  # linear layer after GAP whose weights make the CAM
HU_SCALE = 1000.0


class _Attention(nn.Module):
    """Channel attention then spatial attention; kept as one named module for CAM hooks."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


def _down(cin: int, cout: int, times: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(times):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride=2, padding=1),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class He2024Net(nn.Module):
    """The He et al. 2024 classifier and its ablations (see module docstring).

    Args:
        input_mode: "module" (window-setting module), "preset" (fixed clipped windows, no
            module) or "hu" (raw HU / 1000).
        windows: (level, width) presets for "module" and "preset"; None with "module" means
            random initialisation of ``random_channels`` channels.
        window_trainable: train W and b of the module (False: fixed windows).
        fusion: multiscale C3+C4+C5 fusion (False: C5 only).
        width: VGG-16 channel multiplier (< 1 only for CPU profiles, a recorded deviation).
        weights: local torchvision VGG-16 weights file, else random init (see `init`).
        reduction: channel-attention bottleneck ratio r.
        batch_norm: VGG-16 with batch norm after every convolution (not the paper's network).
        random_window_scale: W ~ U(-1, 1) / this for a randomly initialised window module.
        hu_scale: raw HU input (input_mode "hu") enters VGG as HU / hu_scale.
    """

    def __init__(
        self,
        *,
        num_classes: int = len(RSNA_CLASSES),
        input_mode: InputMode = "module",
        windows: Sequence[tuple[float, float]] | None = (BRAIN, SUBDURAL, SOFT_TISSUE),
        window_trainable: bool = True,
        random_channels: int = 3,
        fusion: bool = True,
        width: float = 1.0,
        weights: str | None = None,
        reduction: int = 16,
        upper: float = 255.0,
        eps: float = 1.0,
        batch_norm: bool = False,
        random_window_scale: float = HU_SCALE,
        hu_scale: float = HU_SCALE,
    ) -> None:
        super().__init__()
        if input_mode not in ("module", "preset", "hu"):
            raise ValueError(f"input_mode must be 'module', 'preset' or 'hu', got {input_mode!r}")
        if input_mode == "preset" and not windows:
            raise ValueError("input_mode='preset' needs windows")
        self.input_mode = input_mode
        self.hu_scale = float(hu_scale)
        self.classes = tuple(RSNA_CLASSES) if num_classes == len(RSNA_CLASSES) else None
        self.fusion = fusion
        self.window_module: WindowModule | None = None
        self.preset_windows = tuple(windows) if input_mode == "preset" else ()
        if input_mode == "module":
            self.window_module = WindowModule(
                windows, None if windows else random_channels,
                upper=upper, eps=eps, trainable=window_trainable,
            )
            in_ch = self.window_module.channels
        elif input_mode == "preset":
            in_ch = len(self.preset_windows)
        else:
            in_ch = 1
        if in_ch not in (1, 3):
            raise ValueError(f"VGG-16 takes 1 (repeated) or 3 input channels, got {in_ch}")
        self.in_channels = in_ch

        self.features, self.init = vgg16_features(width, weights, batch_norm)  # init: BackboneInit
        s = vgg16_stage_slices(width, batch_norm)
        # Indices of pool3, pool4, pool5 in `features`; C_k is taken just before pool_k.
        self._p3, self._p4, self._p5 = s["C1_3"].stop - 1, s["C4"].stop - 1, s["C5"].stop - 1
        ch = vgg16_channels(width)
        c5 = ch["C5"]
        if fusion:
            self.down3 = _down(ch["C3"], c5, 2)
            self.down4 = _down(ch["C4"], c5, 1)
            fused = 3 * c5
        else:
            fused = c5
        self.attention = _Attention(fused, reduction)
        self.classifier = nn.Linear(fused, num_classes)
        self._init_new_layers(backbone_too=not self.init.pretrained)
        if self.window_module is not None and windows is None:
            random_window_init(self.window_module.conv, random_window_scale)

    def _init_new_layers(self, backbone_too: bool) -> None:
        """torchvision's VGG initialisation (Kaiming-normal convs, N(0, 0.01) linear).

        `vgg16_features` returns torchvision's `make_layers`, which keeps PyTorch's default
        conv init; torchvision's VGG class re-initialises, and without it a randomly
        initialised 13-conv VGG (no batch norm) barely trains. Pretrained weights are kept.
        """
        modules = [self.attention, self.classifier]
        modules += [m for m in (getattr(self, "down3", None), getattr(self, "down4", None)) if m]
        if backbone_too:
            modules.append(self.features)
        for root in modules:
            for m in root.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)

    # -- input stage -------------------------------------------------------------------
    def prepare_input(self, hu: torch.Tensor) -> torch.Tensor:
        """HU (B, 1, H, W) -> the network's normalised 3-channel input."""
        if hu.dim() != 4 or hu.shape[1] != 1:
            raise ValueError(f"He2024Net expects HU of shape (B, 1, H, W), got {tuple(hu.shape)}")
        if hu.shape[-1] % 16 or hu.shape[-2] % 16:
            raise ValueError(f"image size must be a multiple of 16, got {tuple(hu.shape[-2:])}")
        if self.window_module is not None:
            x = self.window_module(hu) / self.window_module.upper
            x = (x - 0.5) / 0.5
        elif self.input_mode == "preset":
            x = torch.cat([window(hu, lv, wd) for lv, wd in self.preset_windows], dim=1)
            x = (x - 0.5) / 0.5
        else:
            x = hu / self.hu_scale
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return x

    def fused_features(self, hu: torch.Tensor) -> torch.Tensor:
        """Attended (fused) feature map used for GAP and CAM, (B, C, H/16, W/16)."""
        x = self.prepare_input(hu)
        f = self.features
        c3 = f[: self._p3](x)
        c4 = f[self._p3: self._p4](c3)
        c5 = f[self._p4: self._p5](c4)
        if self.fusion:
            z = torch.cat([self.down3(c3), self.down4(c4), c5], dim=1)
        else:
            z = c5
        return self.attention(z)

    def forward(self, hu: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes); apply a sigmoid for probabilities."""
        z = self.fused_features(hu)
        return self.classifier(torch.flatten(torch.mean(z, dim=(2, 3)), 1))


def random_window_init(conv: nn.Conv2d, hu_scale: float = HU_SCALE) -> None:
    """Random init of the window module's 1x1 convolution that leaves the sigmoid unsaturated
    on HU: W ~ U(-1, 1) / `hu_scale`, b ~ U(-1, 1) (PyTorch's default for fan-in 1, applied to
    HU / `hu_scale`), so W x + b stays within about +-2 for -1000..1000 HU."""
    with torch.no_grad():
        conv.weight.uniform_(-1.0 / hu_scale, 1.0 / hu_scale)
        conv.bias.uniform_(-1.0, 1.0)


#: Structural choices the paper leaves open (see the module docstring), for the manifest.
STRUCTURE_READINGS: dict[str, tuple[str, str]] = {
    "multiscale taps": ("C3, C4, C5 = conv3_3, conv4_3, conv5_3 outputs before pooling",
                        "Sec. 2.1.2 names C3-C5 only; fused map at 1/16 of the input"),
    "fusion down-sampling": ("C3: two stride-2 3x3 convs, C4: one, each to C5's channels",
                             "Sec. 2.1.2: 'convolution with a step size 2'; counts and widths "
                             "not given"),
    "module output scaling": ("U sigmoid(.) / U, centred ((x - 0.5) / 0.5) before VGG",
                              "not given; leaves W, b and the learned windows unchanged"),
    "one-channel input": ("repeated to VGG's three channels", "brain-window and raw-HU rows"),
    "w/o window module": ("the three preset windows as clipped linear ramps, no module",
                          "Table 3 ablation; what replaces the module is not given"),
    "fixed-window rows": ("the module frozen at its preset initialisation",
                          "Table 4: 'only completes mapping the HU value to fixed window "
                          "images'"),
    "w/o multiscale fusion": ("channel + spatial attention on C5 alone",
                              "Table 3 ablation; whether attention stays is not given"),
    "layer init": ("Kaiming-normal convolutions, N(0, 0.01) classifier (torchvision VGG)",
                   "not given; random backbone without local ImageNet weights"),
}


# -- configuration and builders (the model file ends with its config) ------------------
HE2024_CONFIG: dict = {
    "paper": "He et al. 2024, Heliyon 10:e30270, doi:10.1016/j.heliyon.2024.e30270",
    "classes": tuple(RSNA_CLASSES),
    "input": "HU, one channel, (B, 1, H, W), H and W multiples of 16",
    "windows": {"brain": BRAIN, "subdural": SUBDURAL, "soft_tissue": SOFT_TISSUE},
    "upper": 255.0,
    "eps": 1.0,
    "reduction": 16,
    "cam_target": CAM_TARGET,
    "cam_classifier": CAM_CLASSIFIER,
}

THREE = (BRAIN, SUBDURAL, SOFT_TISSUE)

# name -> (description, constructor kwargs). Table 4's last row is the full model.
HE2024_VARIANTS: dict[str, tuple[str, dict]] = {
    "he2024_full": ("Full model: learnable window module (three windows) + multiscale fusion",
                    dict(input_mode="module", windows=THREE, window_trainable=True, fusion=True)),
    "he2024_no_window": ("Without window module (three preset windows as plain input)",
                         dict(input_mode="preset", windows=THREE, fusion=True)),
    "he2024_no_fusion": ("Without multiscale fusion (attention on C5 only)",
                         dict(input_mode="module", windows=THREE, window_trainable=True,
                              fusion=False)),
    "he2024_t4_hu": ("Raw HU, no window module",
                     dict(input_mode="hu", windows=None, fusion=True)),
    "he2024_t4_brain_fixed": ("Brain window, fixed",
                              dict(input_mode="module", windows=(BRAIN,),
                                   window_trainable=False, fusion=True)),
    "he2024_t4_three_fixed": ("Three windows, fixed",
                              dict(input_mode="module", windows=THREE,
                                   window_trainable=False, fusion=True)),
    "he2024_t4_random_learn": ("Learnable window module from random initialisation",
                               dict(input_mode="module", windows=None, window_trainable=True,
                                    fusion=True)),
    "he2024_t4_brain_learn": ("Learnable window module from the brain window",
                              dict(input_mode="module", windows=(BRAIN,),
                                   window_trainable=True, fusion=True)),
    "he2024_t4_three_learn": ("Learnable window module from three windows (= full model)",
                              dict(input_mode="module", windows=THREE, window_trainable=True,
                                   fusion=True)),
}


def _builder(name: str):
    desc, kwargs = HE2024_VARIANTS[name]

    def build(**cfg) -> He2024Net:
        model = He2024Net(**{**kwargs, **cfg})
        model.variant = name
        return model

    build.__name__ = name
    build.__doc__ = f"{desc}. Keyword arguments override He2024Net's (width, weights, ...)."
    return register_model(name, paper="he2024")(build)


for _name in HE2024_VARIANTS:
    _builder(_name)
