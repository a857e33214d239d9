"""DrCT1 and DrCT2 (Wang et al., "A diagnostic model based on key slices", section V).

Sequence-level multi-label brain CT classification from scan-level labels only.

- `SliceEncoder` (in the leaf `brainlib.models.slice_encoder`, re-exported here): frozen
  VGG-16 conv layers + adaptive max-pool -> one D-vector per slice. Because it is frozen,
  features are computed once per slice and resolution (`brainlib.papers.wang_drct2` caches
  them) and the networks below read features.
- `DrCT1` (the primary network): feature attention -> BiGRU -> slice attention -> 3 FC.
- `DrCT2`: DrCT1 plus the attention-proposal-slices (APS) network — the `m_key` slices with the
  highest slice attention, zoomed by bilinear interpolation and encoded by the same encoder,
  then batch norm + FC, BiGRU and 3 FC — and the knowledge-fusion head (sum of the two
  networks' pooled feature matrices, 3 FC).

Inputs: DrCT1 takes features (B, M, D). DrCT2 takes (B, M, 2, D): per slice the features at the
working size and at the zoom size (the APS network gathers its key slices from the second);
or images (B, M, C, H, W) through `forward_images`, which zooms and encodes the proposed slices
on the fly (same result, used for single-scan reports and timing).

Outputs are dicts of logits: ``logits`` (the model's prediction: primary for DrCT1, fusion for
DrCT2), ``primary``, ``aps``, ``fusion``, plus ``slice_attention`` (B, M),
``feature_attention`` (B, M, D) and ``key_index`` (B, m_key).
Widths of the BiGRU and FC layers are not given in the paper; the defaults are ours, as are
g of eq. 4 (`output_activation`, tanh), the pooling of the slice-attention matrix (`pooling`,
the attention-weighted sum) and of the APS BiGRU outputs (`aps_pooling`, the mean).
`standardize=True` (not in the paper; off by default) standardises z per feature with
training-set statistics before eq. 3's softmax.
"""
from __future__ import annotations

from typing import Any, Callable, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from brainlib.layers.sequence_attention import (
    DependencyOutput,
    FeatureAttention,
    SliceAttention,
    gather_slices,
    pool_slices,
    select_key_slices,
    zoom_slices,
)
from brainlib.models._registry import register_model
from brainlib.models.slice_encoder import SliceEncoder

PAPER = "wang_drct2"


def _head(in_dim: int, hidden: tuple[int, int], out_dim: int, dropout: float) -> nn.Sequential:
    """Three fully connected layers, ReLU + dropout between them (section V.A.3)."""
    h1, h2 = hidden
    return nn.Sequential(
        nn.Linear(in_dim, h1), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(h1, h2), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(h2, out_dim),
    )


class DrCT1(nn.Module):
    """The primary network: feature attention (eq. 3), BiGRU with its output layer (eq. 4),
    slice attention (eqs. 5-6), three FC layers."""

    def __init__(
        self,
        num_classes: int,
        feature_dim: int = 512,
        hidden: int = 256,
        fc: tuple[int, int] = (256, 128),
        dropout: float = 0.5,
        class_names: tuple[str, ...] | None = None,
        standardize: bool = False,
        output_activation: str = "tanh",
        pooling: str = "sum",
        rescale: bool = True,
    ) -> None:
        super().__init__()
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.class_names = tuple(class_names) if class_names else None
        self.standardize = bool(standardize)
        self.feature_attention = FeatureAttention(rescale=rescale)
        # Per-feature standardisation of the encoder output before eq. 3 (training-set
        # statistics, `set_feature_stats`), applied only with `standardize=True`: a deviation
        # from eq. 3, which takes the softmax of z itself.
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_std", torch.ones(feature_dim))
        self.gru = nn.GRU(feature_dim, hidden, batch_first=True, bidirectional=True)
        self.output = DependencyOutput(2 * hidden, output_activation)
        self.slice_attention = SliceAttention(2 * hidden, pooling)
        self.head = _head(2 * hidden, fc, num_classes, dropout)

    def _check(self, z: torch.Tensor) -> None:
        if z.dim() != 3 or z.shape[-1] != self.feature_dim:
            raise ValueError(f"{type(self).__name__} expects features (B, M, {self.feature_dim}), "
                             f"got {tuple(z.shape)}")

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-feature statistics of the training slices, used when `standardize=True`."""
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feature_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))

    def encode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Primary network up to the pooled vector; also returns both attentions."""
        self._check(z)
        if self.standardize:
            z = (z - self.feature_mean) / self.feature_std
        x, w_feat = self.feature_attention(z)
        a, _ = self.gru(x)
        _, pooled, w_slice = self.slice_attention(self.output(a))
        return {"pooled": pooled, "slice_attention": w_slice, "feature_attention": w_feat}

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        if z.dim() == 4:  # (B, M, 2, D) input: DrCT1 reads the working-size features
            z = z[:, :, 0]
        enc = self.encode(z)
        logits = self.head(enc["pooled"])
        return {"logits": logits, "primary": logits,
                "slice_attention": enc["slice_attention"],
                "feature_attention": enc["feature_attention"]}

    def lr_groups(self, lr: float = 5e-4) -> list[tuple[nn.Module, float]]:
        """``fit(param_groups=...)`` spec: the whole primary network at `lr`."""
        return [(self, lr)]


class APSNetwork(nn.Module):
    """Attention-proposal-slices network (section V.B): BN + FC, BiGRU with its eq. 4 output
    layer, pooling over the key slices (``aps_pooling``: mean, a reading), three FC."""

    def __init__(self, num_classes: int, feature_dim: int, proj: int, hidden: int,
                 fc: tuple[int, int], dropout: float, output_activation: str = "tanh",
                 pooling: str = "mean") -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(feature_dim)
        self.proj = nn.Linear(feature_dim, proj)
        self.gru = nn.GRU(proj, hidden, batch_first=True, bidirectional=True)
        self.output = DependencyOutput(2 * hidden, output_activation)
        self.pooling = pooling
        self.head = _head(2 * hidden, fc, num_classes, dropout)

    def encode(self, f: torch.Tensor) -> torch.Tensor:
        """f: (B, K, D) key-slice features -> pooled (B, 2H) over the BiGRU outputs."""
        b, k, d = f.shape
        f = self.bn(f.reshape(b * k, d)).reshape(b, k, d)
        a, _ = self.gru(F.relu(self.proj(f)))
        return pool_slices(self.output(a), self.pooling)


class DrCT2(nn.Module):
    """DrCT1 + APS network + knowledge fusion (section V, Fig. 4)."""

    def __init__(
        self,
        num_classes: int,
        feature_dim: int = 512,
        hidden: int = 256,
        fc: tuple[int, int] = (256, 128),
        dropout: float = 0.5,
        m_key: int = 16,
        selection: Literal["attention", "random"] = "attention",
        seed: int = 0,
        class_names: tuple[str, ...] | None = None,
        zoom_size: int = 512,
        encoder: SliceEncoder | None = None,
        standardize: bool = False,
        output_activation: str = "tanh",
        pooling: str = "sum",
        aps_pooling: str = "mean",
        rescale: bool = True,
    ) -> None:
        super().__init__()
        if selection not in ("attention", "random"):
            raise ValueError(f"selection must be 'attention' or 'random', got {selection!r}")
        self.primary = DrCT1(num_classes, feature_dim, hidden, fc, dropout, class_names,
                             standardize=standardize, output_activation=output_activation,
                             pooling=pooling, rescale=rescale)
        self.aps = APSNetwork(num_classes, feature_dim, hidden, hidden, fc, dropout,
                              output_activation, aps_pooling)
        self.fusion = _head(2 * hidden, fc, num_classes, dropout)
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.class_names = self.primary.class_names
        self.m_key = int(m_key)
        self.selection = selection
        self.zoom_size = int(zoom_size)
        self.encoder = encoder
        self._gen = torch.Generator().manual_seed(int(seed))

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Primary-network input statistics, used with `standardize=True` (the APS network
        starts with batch norm, as the paper writes)."""
        self.primary.set_feature_stats(mean, std)

    def _fuse(self, enc: dict[str, torch.Tensor], key_feats: torch.Tensor,
              index: torch.Tensor) -> dict[str, torch.Tensor]:
        aps_pooled = self.aps.encode(key_feats)
        primary = self.primary.head(enc["pooled"])
        aps = self.aps.head(aps_pooled)
        fusion = self.fusion(enc["pooled"] + aps_pooled)
        return {"logits": fusion, "primary": primary, "aps": aps, "fusion": fusion,
                "slice_attention": enc["slice_attention"],
                "feature_attention": enc["feature_attention"], "key_index": index}

    def _select(self, w: torch.Tensor) -> torch.Tensor:
        """Key slices by attention, or at random: in training from torch's global generator
        (saved and restored with the engine's checkpoints, so a resumed training draws what
        an uninterrupted one would), in evaluation from the model's own seeded generator."""
        m_key = min(self.m_key, w.shape[1])
        return select_key_slices(w, m_key, random=self.selection == "random",
                                 generator=None if self.training else self._gen)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B, M, 2, D) features at working size [:, :, 0] and zoom size [:, :, 1]."""
        if x.dim() != 4 or x.shape[2] != 2:
            raise ValueError(f"DrCT2 expects features (B, M, 2, D) (working size, zoom size), "
                             f"got {tuple(x.shape)}")
        enc = self.primary.encode(x[:, :, 0])
        index = self._select(enc["slice_attention"])
        return self._fuse(enc, gather_slices(x[:, :, 1], index), index)

    @torch.no_grad()
    def forward_images(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """End-to-end inference from slices (B, M, 3, H, W): encode, propose, zoom, encode."""
        if self.encoder is None:
            raise ValueError("DrCT2.forward_images needs an encoder (pass encoder=SliceEncoder)")
        b, m = images.shape[:2]
        z = self.encoder(images.flatten(0, 1)).view(b, m, -1)
        enc = self.primary.encode(z)
        index = self._select(enc["slice_attention"])
        key_imgs = zoom_slices(gather_slices(images, index), self.zoom_size)
        f = self.encoder(key_imgs.flatten(0, 1)).view(b, index.shape[1], -1)
        return self._fuse(enc, f, index)

    def lr_groups(self, lr_primary: float = 5e-4, lr_aps: float = 3e-4,
                  lr_fusion: float = 5e-4) -> list[tuple[nn.Module, float]]:
        """``fit(param_groups=...)`` spec with the per-module learning rates of section
        VI.A.1: 3e-4 for the APS network, 5e-4 for the primary and fusion networks."""
        return [(self.primary, lr_primary), (self.aps, lr_aps), (self.fusion, lr_fusion)]


class SliceLevelBaseline(nn.Module):
    """Fully supervised slice classifier aggregated by "any slice positive" (Table 7, RSNA-1).

    The RSNA challenge winner is a large image-level ensemble; this stand-in trains three FC
    layers on the same frozen slice features with per-slice labels, and the sequence score
    is the maximum slice score (a scan is positive if any slice is).
    """

    def __init__(self, num_classes: int, feature_dim: int = 512, fc: tuple[int, int] = (256, 128),
                 dropout: float = 0.5, class_names: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.class_names = tuple(class_names) if class_names else None
        self.bn = nn.BatchNorm1d(feature_dim)
        self.head = _head(feature_dim, fc, num_classes, dropout)

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        if z.dim() == 4:
            z = z[:, :, 0]
        if z.dim() != 3 or z.shape[-1] != self.feature_dim:
            raise ValueError(f"SliceLevelBaseline expects (B, M, {self.feature_dim}), "
                             f"got {tuple(z.shape)}")
        b, m, d = z.shape
        slice_logits = self.head(self.bn(z.reshape(b * m, d))).view(b, m, -1)
        return {"logits": slice_logits.max(dim=1).values, "slice_logits": slice_logits}


def scan_max_losses() -> list[tuple]:
    """BCE of the max-over-slices logit against the scan label (``batch["y"]``): the
    slice-level baseline trained from scan labels only (multiple-instance max pooling), the
    sanity check that a scan-level signal reaches the sequence models' inputs."""
    return [("scan_max_bce", lambda out, batch: _bce(out["logits"], batch["y"]), 1.0)]


def slice_level_losses() -> list[tuple]:
    """BCE on every slice with its own label (``batch["y_slice"]``, (B, M, C))."""
    return [("slice_bce", lambda out, batch: _bce(out["slice_logits"], batch["y_slice"]), 1.0)]


# --- losses (section V.D, Table 2) ------------------------------------------------------

def _masked(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = y.to(logits.dtype)
        known = ~torch.isnan(y)
        if not known.any():
            return logits.sum() * 0.0
        return fn(logits[known], y[known])
    return loss


_mse = _masked(lambda lo, y: F.mse_loss(torch.sigmoid(lo), y))
_bce = _masked(lambda lo, y: F.binary_cross_entropy_with_logits(lo, y))
_LOSS = {"mse": _mse, "bce": _bce}


def drct_losses(model_name: str, primary_aps: Literal["mse", "bce"] = "mse") -> list[tuple]:
    """Engine losses ``(name, fn(outputs, batch), weight)``.

    DrCT2 (eq. 11): Loss = L_primary + L_aps + L_fusion, with MSE on the sigmoid outputs for
    primary and APS and BCE for fusion (`primary_aps="bce"` is Table 2's BCE/BCE variant).
    DrCT1 is the primary network alone, trained with the same primary loss.
    """
    if primary_aps not in _LOSS:
        raise ValueError(f"primary_aps must be 'mse' or 'bce', got {primary_aps!r}")
    f = _LOSS[primary_aps]
    primary = ("primary_" + primary_aps, lambda out, batch: f(out["primary"], batch["y"]), 1.0)
    if model_name.startswith("drct1"):
        return [primary]
    return [primary,
            ("aps_" + primary_aps, lambda out, batch: f(out["aps"], batch["y"]), 1.0),
            ("fusion_bce", lambda out, batch: _bce(out["fusion"], batch["y"]), 1.0)]


# --- config and builders (timm style) ---------------------------------------------------

CONFIG: dict[str, Any] = {
    "paper": "Wang et al., DrCT2: a diagnostic model based on key slices (CQ500, RSNA)",
    "input": "sequences of m slices (32 CQ500, 28 RSNA), 224 x 224, zoom 512 x 512",
    "encoder": "VGG-16 conv layers, frozen, adaptive max-pool -> 512",
    "m_key": 16,
    "lr": {"primary": 5e-4, "aps": 3e-4, "fusion": 5e-4},
    "loss": "MSE(primary) + MSE(APS) + BCE(fusion)",
}


@register_model("drct1", paper=PAPER)
def drct1(num_classes: int, **cfg: Any) -> DrCT1:
    """DrCT1: the primary network on cached slice features (B, M, D)."""
    return DrCT1(num_classes, **cfg)


@register_model("drct2", paper=PAPER)
def drct2(num_classes: int, **cfg: Any) -> DrCT2:
    """DrCT2: primary + APS (top-m_key slices by attention, zoomed) + knowledge fusion."""
    return DrCT2(num_classes, **cfg)


@register_model("drct_slice_baseline", paper=PAPER)
def drct_slice_baseline(num_classes: int, **cfg: Any) -> SliceLevelBaseline:
    """Slice-level supervised baseline aggregated by max (Table 7's RSNA-1 stand-in)."""
    return SliceLevelBaseline(num_classes, **cfg)


@register_model("drct2_random", paper=PAPER)
def drct2_random(num_classes: int, **cfg: Any) -> DrCT2:
    """DrCT2 whose APS network reads m_key random slices (Fig. 6 control)."""
    return DrCT2(num_classes, selection="random", **cfg)


__all__ = ["APSNetwork", "CONFIG", "DrCT1", "DrCT2", "SliceEncoder", "SliceLevelBaseline",
           "drct1", "drct2", "drct2_random", "drct_losses", "drct_slice_baseline",
           "scan_max_losses", "slice_level_losses"]
