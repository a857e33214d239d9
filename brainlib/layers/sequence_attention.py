"""Sequence-level attention blocks of DrCT1/DrCT2 (Wang et al., "A diagnostic model based on
key slices", sections V.A-V.B).

- `FeatureAttention` (eq. 3): a softmax over the feature dimensions of each slice vector,
  merged with the vector element-wise. The paper's block has no parameters.
- `DependencyOutput` (eq. 4): the output layer of each BiGRU time step,
  ``y_t = g(W_y [a_fwd_t, a_bwd_t] + b_y)``; the paper leaves g and the width open.
- `SliceAttention` (eqs. 5-6): a fully connected layer maps each BiGRU output to one score,
  a softmax over the slices turns the scores into weights, and the outputs are weighted
  element-wise; the weighted matrix is pooled over slices (``"sum"``, the attention-weighted
  sum, or ``"mean"``: the paper does not say how the matrix reaches the FC layers).
- `select_key_slices` / `zoom_slices` / `gather_slices`: the attention proposal of the APS
  network (eqs. 7-8): the `m_key` most attended slices, zoomed by bilinear interpolation.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class FeatureAttention(nn.Module):
    """Eq. 3: ``w_i = softmax_i(z_i)`` over the D feature dims, ``x = z * w`` element-wise.

    The softmax reads z as given (the encoder output, as eq. 3 writes it). `rescale=True`
    multiplies by D so that a uniform attention leaves the vector unchanged (softmax weights
    sum to 1, which would otherwise shrink every input of the BiGRU by D); it is a fixed
    constant, so the attention pattern is exactly the paper's (a reading, listed as such).
    """

    def __init__(self, rescale: bool = True) -> None:
        super().__init__()
        self.rescale = rescale

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z: (..., D) -> (x, w) both (..., D)."""
        w = torch.softmax(z, dim=-1)
        x = z * w
        if self.rescale:
            x = x * z.shape[-1]
        return x, w


ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU,
                                           "sigmoid": nn.Sigmoid, "identity": nn.Identity}
POOLINGS: tuple[str, ...] = ("sum", "mean")


class DependencyOutput(nn.Module):
    """Eq. 4: ``y_t = g(W_y [a_fwd_t, a_bwd_t] + b_y)`` on every BiGRU output (B, M, 2H).

    `activation` is g (``tanh``, ``relu``, ``sigmoid`` or ``identity``); the paper names
    neither g nor the output width, which is kept at 2H.
    """

    def __init__(self, in_features: int, activation: str = "tanh") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
        self.linear = nn.Linear(in_features, in_features)
        self.g = ACTIVATIONS[activation]()

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.g(self.linear(a))


def pool_slices(y: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, M, H) -> (B, H) by ``sum`` or ``mean`` over the slices."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    return y.sum(dim=1) if pooling == "sum" else y.mean(dim=1)


class SliceAttention(nn.Module):
    """Eqs. 5-6: ``a_t = FC(y_t)``, ``w = softmax_t(a)``, weighted outputs ``y_t * w_t``.

    Returns the weighted matrix (B, M, H), its pooling over slices (B, H) — ``"sum"``
    (default: the attention-weighted sum) or ``"mean"`` — that the fully connected head reads,
    and the weights (B, M).
    """

    def __init__(self, in_features: int, pooling: str = "sum") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.score = nn.Linear(in_features, 1)
        self.pooling = pooling

    def forward(
        self, y: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """y: (B, M, H); mask: optional (B, M) bool, False for padding slices."""
        a = self.score(y).squeeze(-1)
        if mask is not None:
            a = a.masked_fill(~mask, float("-inf"))
        w = torch.softmax(a, dim=1)
        weighted = y * w.unsqueeze(-1)
        return weighted, pool_slices(weighted, self.pooling), w


def select_key_slices(
    attention: torch.Tensor,
    m_key: int,
    *,
    random: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Indices (B, m_key) of the key slices, in slice order (the APS BiGRU reads a sequence).

    `random=True` draws m_key slices uniformly instead (the paper's Fig. 6 control).
    Ties in attention go to the lower slice index (stable sort), so selection is deterministic.
    """
    if attention.dim() != 2:
        raise ValueError(f"attention must be (B, M), got shape {tuple(attention.shape)}")
    b, m = attention.shape
    if not 1 <= m_key <= m:
        raise ValueError(f"m_key must be in [1, {m}] for {m} slices, got {m_key}")
    if random:
        scores = torch.rand(b, m, generator=generator, device="cpu").to(attention.device)
    else:
        scores = attention.detach()
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :m_key]
    return torch.sort(order, dim=1).values


def gather_slices(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Pick slices `index` (B, K) from x (B, M, ...) -> (B, K, ...)."""
    if index.shape[0] != x.shape[0]:
        raise ValueError(f"batch mismatch: x {tuple(x.shape)} vs index {tuple(index.shape)}")
    extra = x.shape[2:]
    idx = index.view(index.shape[0], index.shape[1], *([1] * len(extra))).expand(-1, -1, *extra)
    return torch.gather(x, 1, idx)


def zoom_slices(images: torch.Tensor, size: int) -> torch.Tensor:
    """Eq. 8: bilinear zoom of slices (..., C, H, W) to (..., C, size, size)."""
    if images.dim() < 3:
        raise ValueError(f"images must be (..., C, H, W), got shape {tuple(images.shape)}")
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:])
    if flat.shape[-1] != size or flat.shape[-2] != size:
        flat = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False)
    return flat.reshape(*lead, *flat.shape[1:])
