"""Networks of Yin et al. (2024, Sci Rep, "Brain CT image classification based on mask RCNN and
attention mechanism").

* **ResNet-N** (Table 2): torchvision's ``ResNet`` machinery (``BasicBlock`` [1, 1, 1, 1] for
  ResNet-10, [2, 2, 2, 2] for 18, [3, 4, 6, 3] for 34, ``Bottleneck`` [3, 4, 6, 3] for 50) with
  Table 1's head: conv1 7x7/2, max pool 3x3/2, four residual stages, global average pool,
  dropout 0.5, FC (softmax in the loss).
* **DResNet-N** (Table 3): every 3x3 convolution of the residual modules of stages 2-4 ("the
  last three blocks") is a DCNv2 :class:`~brainlib.layers.deformable.DeformConv2d` (eq. 3);
  stage 1 keeps standard convolution. In a Bottleneck only the 3x3 convolution is deformable
  (1x1 convolutions have no sampling grid to deform) - a reading.
* **CBAM-/TCCBAM-DResNet-N** (Table 4): the attention block sits after the last convolution
  (+BN) of each residual module, before the identity addition ("after the second 1 x 1
  convolution layer of each residual module": conv3 in a Bottleneck, conv2 in a BasicBlock).
* **Mask R-CNN** (Tables 5-6): ``torchvision.models.detection.MaskRCNN`` on a ResNet-10 (+DC,
  +AM) + FPN backbone, with the mask loss of eqs. 11-12 (:func:`yin_mask_loss`) and an
  image-level decision (:class:`MaskRCNNClassifier`).

Widths: ``widths`` (default Table 1's 64/128/256/512) and the detector's head sizes may be
reduced for CPU profiles; that is a declared deviation of the run, not of this file.
No pretrained weights are downloaded: networks start from random initialisation, and a Mask
R-CNN's backbone can be initialised from a trained classifier of the same variant
(:func:`init_backbone`, :data:`MASKRCNN_BACKBONES`), the usual ImageNet-style transfer.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads, project_masks_on_boxes
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from brainlib.layers.attention import CBAM
from brainlib.layers.deformable import DeformConv2d
from brainlib.layers.tccbam import TCCBAM
from brainlib.models._registry import register_model

__all__ = ["DEPTHS", "MASKRCNN_BACKBONES", "MaskRCNNClassifier", "YinResNet", "YinRoIHeads", "build_maskrcnn",
           "build_resnet", "image_decision", "init_backbone", "laplace_dice_loss", "yin_mask_loss",
           "YIN2024_CONFIG"]

#: Block type and blocks per stage of each depth (torchvision's, [1, 1, 1, 1] for ResNet-10).
DEPTHS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    10: (BasicBlock, (1, 1, 1, 1)), 18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)), 50: (Bottleneck, (3, 4, 6, 3)),
}
ATTENTIONS = (None, "cbam", "tccbam")


class _Attended:
    """Mixin for a torchvision residual block: an ``attention`` slot (Identity until CBAM or
    TCCBAM is put in) applied by the block's ``forward`` before the identity addition."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attention: nn.Module = nn.Identity()

    def _finish(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.attention(out) + identity)


class _AttnBasic(_Attended, BasicBlock):
    """torchvision BasicBlock with the attention after conv2 + bn2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self._finish(self.bn2(self.conv2(out)), x)


class _AttnBottleneck(_Attended, Bottleneck):
    """torchvision Bottleneck with the attention after conv3 + bn3."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self._finish(self.bn3(self.conv3(out)), x)


class YinResNet(ResNet):
    """Table 1's classifier on torchvision's ResNet (its ``_make_layer`` and ``_forward_impl``).

    Args:
        depth: 10, 18, 34 or 50.
        num_classes: outputs of the FC layer (logits; softmax in the loss).
        deformable: DCNv2 in the residual modules of stages 2-4 (DResNet).
        attention: None, ``"cbam"`` or ``"tccbam"`` after each residual module's last conv.
        widths: channels of the four stages (Table 1: 64, 128, 256, 512).
        in_channels: image channels; dropout: before the FC layer (Table 1: 0.5).
        reduction: bottleneck ratio of the attention MLPs.
    """

    def __init__(self, depth: int = 10, num_classes: int = 4, *, deformable: bool = False,
                 attention: str | None = None, widths: Sequence[int] = (64, 128, 256, 512),
                 in_channels: int = 3, dropout: float = 0.5, reduction: int = 16) -> None:
        if depth not in DEPTHS:
            raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {depth}")
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        if len(widths) != 4:
            raise ValueError(f"widths must have 4 entries, got {widths}")
        nn.Module.__init__(self)
        kind, layers = DEPTHS[depth]
        block = _AttnBasic if kind is BasicBlock else _AttnBottleneck
        self.depth, self.deformable, self.attention_kind = depth, deformable, attention
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, 1, 64
        self.conv1 = nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.out_channels = widths[3] * block.expansion
        self.fc = nn.Linear(self.out_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for blk in stage:
                channels = blk.bn3.num_features if isinstance(blk, Bottleneck) else blk.bn2.num_features
                if attention == "cbam":
                    blk.attention = CBAM(channels, reduction)
                elif attention == "tccbam":
                    blk.attention = TCCBAM(channels, reduction)
        if deformable:  # after the plain init, so the deformable copies keep its weights
            for stage in (self.layer2, self.layer3, self.layer4):
                for blk in stage:
                    for name in ("conv1", "conv2"):
                        conv = getattr(blk, name)
                        if conv.kernel_size == (3, 3):
                            setattr(blk, name, DeformConv2d.from_conv(conv))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map (B, out_channels, H/32, W/32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.avgpool(self.features(x)), 1)))


def build_resnet(depth: int, num_classes: int = 4, deformable: bool = False,
                 attention: str | None = None, **kw: Any) -> YinResNet:
    """Any classification network of Tables 2-4."""
    return YinResNet(depth, num_classes, deformable=deformable, attention=attention, **kw)


# --------------------------------------------------------------------------- eqs. 11-12
def laplace_dice_loss(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 11 per mask: ``1 - (2 sum(P G) + 1) / (sum P + sum G + 1)`` over the last two axes.

    ``prob`` and ``target`` are (N, H, W); returns (N,). The "+1" is the Laplace smoothing.
    """
    inter = (prob * target).sum(dim=(-2, -1))
    return 1 - (2 * inter + 1) / (prob.sum(dim=(-2, -1)) + target.sum(dim=(-2, -1)) + 1)


def yin_mask_loss(logits: torch.Tensor, target: torch.Tensor, mu: float) -> torch.Tensor:
    """Eq. 12: ``mu * BCE + (1 - mu) * L_la`` for mask logits and 0/1 targets (N, H, W).

    BCE is the mean over pixels and masks (as torchvision's Mask R-CNN); ``L_la`` (eq. 11) is
    computed per mask on sigmoid probabilities and averaged over masks (reading). ``mu`` = 1
    gives the original loss, 0 the Dice-like loss alone. Empty input gives a zero that keeps
    the graph.
    """
    if not 0.0 <= mu <= 1.0:
        raise ValueError(f"mu must be in [0, 1], got {mu}")
    if target.numel() == 0:
        return logits.sum() * 0
    bce = F.binary_cross_entropy_with_logits(logits, target)
    la = laplace_dice_loss(torch.sigmoid(logits), target).mean()
    return mu * bce + (1 - mu) * la


class YinRoIHeads(RoIHeads):
    """torchvision RoIHeads whose ``loss_mask`` is eq. 12 instead of plain BCE.

    The positive proposals and their matched ground truth are kept from
    ``select_training_samples`` and the mask logits from the predictor (a forward hook), then
    the loss is recomputed; no torchvision function is patched.
    """

    def __init__(self, *args: Any, mask_mu: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mask_mu = float(mask_mu)
        self._stash: dict[str, Any] = {}

    def select_training_samples(self, proposals, targets):  # type: ignore[override]
        out = super().select_training_samples(proposals, targets)
        self._stash["samples"] = out
        return out

    def forward(self, features, proposals, image_shapes, targets=None):  # type: ignore[override]
        if not (self.training and self.has_mask()):
            return super().forward(features, proposals, image_shapes, targets)
        self._stash.clear()
        handle = self.mask_predictor.register_forward_hook(
            lambda mod, inp, out: self._stash.__setitem__("mask_logits", out))
        try:
            result, losses = super().forward(features, proposals, image_shapes, targets)
        finally:
            handle.remove()
        props, matched, labels, _ = self._stash["samples"]
        logits = self._stash["mask_logits"]
        pos = [torch.where(lab > 0)[0] for lab in labels]
        boxes = [p[i] for p, i in zip(props, pos)]
        idx = [m[i] for m, i in zip(matched, pos)]
        gt_labels = torch.cat([t["labels"][i] for t, i in zip(targets, idx)]) if idx else None
        size = logits.shape[-1]
        mask_t = [project_masks_on_boxes(t["masks"], b, i, size) for t, b, i in zip(targets, boxes, idx)]
        target = torch.cat(mask_t) if mask_t else logits.new_zeros((0, size, size))
        if target.numel() == 0:
            losses["loss_mask"] = logits.sum() * 0
        else:
            chosen = logits[torch.arange(len(gt_labels), device=logits.device), gt_labels]
            losses["loss_mask"] = yin_mask_loss(chosen, target, self.mask_mu)
        self._stash.clear()
        return result, losses


def build_maskrcnn(num_classes: int, *, deformable: bool = True, attention: str | None = "tccbam",
                   widths: Sequence[int] = (64, 128, 256, 512), fpn_channels: int = 256,
                   head_dim: int = 1024, mask_dim: int = 256, image_size: int = 224,
                   mask_mu: float = 0.5, in_channels: int = 3,
                   anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
                   anchor_ratios: Sequence[float] = (0.5, 1.0, 2.0), **kw: Any) -> MaskRCNN:
    """Mask R-CNN on a (D)ResNet-10 (+attention) + FPN backbone with the eq. 12 mask loss.

    ``num_classes`` counts the background (lesion classes + 1). ``image_size`` fixes
    torchvision's resize (min = max size) so images are used at their given size.
    ``anchor_sizes``: the anchor side(s) of each FPN level, an int or a tuple of ints (the same
    count on every level; torchvision's default 32-512 px suits 800 px images; small inputs need
    smaller anchors or lesions never match one). ``anchor_ratios``: height / width of the
    anchors (torchvision's convention), the same on every level.
    """
    body = YinResNet(10, 1, deformable=deformable, attention=attention, widths=widths,
                     in_channels=in_channels)
    mult = body.out_channels // widths[3]
    backbone = BackboneWithFPN(body, {f"layer{i}": str(i - 1) for i in range(1, 5)},
                               [w * mult for w in widths], fpn_channels)
    box_head = TwoMLPHead(fpn_channels * 7 * 7, head_dim)
    mask_head = MaskRCNNHeads(fpn_channels, (mask_dim,) * 4, 1)
    sizes = tuple(tuple(int(x) for x in a) if isinstance(a, (tuple, list)) else (int(a),) for a in anchor_sizes)
    anchors = AnchorGenerator(sizes, (tuple(float(r) for r in anchor_ratios),) * len(sizes))
    model = MaskRCNN(backbone, num_classes=None, min_size=image_size, max_size=image_size,
                     rpn_anchor_generator=anchors,
                     image_mean=[0.0] * in_channels, image_std=[1.0] * in_channels,
                     box_head=box_head, box_predictor=FastRCNNPredictor(head_dim, num_classes),
                     mask_head=mask_head, mask_predictor=MaskRCNNPredictor(mask_dim, mask_dim, num_classes),
                     **kw)
    old = model.roi_heads
    heads = YinRoIHeads(old.box_roi_pool, old.box_head, old.box_predictor,
                        0.5, 0.5, 512, 0.25, (10.0, 10.0, 5.0, 5.0),
                        old.score_thresh, old.nms_thresh, old.detections_per_img,
                        mask_roi_pool=old.mask_roi_pool, mask_head=old.mask_head,
                        mask_predictor=old.mask_predictor, mask_mu=mask_mu)
    heads.fg_bg_sampler, heads.proposal_matcher, heads.box_coder = \
        old.fg_bg_sampler, old.proposal_matcher, old.box_coder  # keep the caller's kw settings
    model.roi_heads = heads
    return model


def image_decision(detections: list[dict[str, torch.Tensor]], num_classes: int) -> torch.Tensor:
    """Per image, the highest detection score of each class (B, num_classes); column 0
    (background = normal) is 0. With a score threshold ``t``, the image class is the argmax
    after setting column 0 to ``t``: the best detection's class, or normal when none passes."""
    out = torch.zeros(len(detections), num_classes)
    for b, det in enumerate(detections):
        for label, score in zip(det["labels"].tolist(), det["scores"].tolist()):
            out[b, label] = max(out[b, label].item(), score)
    return out


#: Table 6 row -> the Table 1 classifier whose trained stem and stages initialise its backbone
#: (same deformable convolutions and attention, so every tensor has a counterpart).
MASKRCNN_BACKBONES: dict[str, str] = {
    "maskrcnn": "yin2024_resnet10", "maskrcnn_dc": "yin2024_dresnet10",
    "maskrcnn_am": "yin2024_tccbam_resnet10", "maskrcnn_dc_am": "yin2024_tccbam_dresnet10",
}


def init_backbone(detector: "MaskRCNNClassifier | MaskRCNN", classifier: YinResNet) -> list[str]:
    """Copy a trained classifier's stem (conv1, bn1) and four stages into a Mask R-CNN's backbone
    body, as a detector's backbone normally starts from ImageNet weights; FPN, RPN and heads stay
    at their random initialisation. Every body tensor must exist in ``classifier`` with the same
    shape and no classifier stage tensor may be left over, so a backbone of another variant
    (with or without DC or attention, other widths) raises instead of half-loading. Returns the
    names of the copied tensors."""
    det = detector.detector if isinstance(detector, MaskRCNNClassifier) else detector
    body = det.backbone.body
    target, source = body.state_dict(), classifier.state_dict()
    stem = tuple(body.keys())  # conv1, bn1, relu, maxpool, layer1..layer4
    leftover = [k for k in source if k.split(".")[0] in stem and k not in target]
    missing = [k for k in target if k not in source]
    shape = [k for k in target if k in source and source[k].shape != target[k].shape]
    if missing or leftover or shape:
        raise ValueError(f"classifier {type(classifier).__name__} does not match the detector backbone: "
                         f"missing {missing[:3]}, extra {leftover[:3]}, shape mismatch {shape[:3]}")
    body.load_state_dict({k: source[k] for k in target})
    return list(target)


class MaskRCNNClassifier(nn.Module):
    """Adapter that lets :func:`brainlib.engine.fit` train and evaluate a torchvision Mask R-CNN.

    Input: the batch dict itself (``fit(..., input_fn=lambda b: b)``) with ``x`` (B, C, H, W)
    and ``targets`` (list of dicts: ``boxes``, ``labels``, ``masks``). Training mode returns
    torchvision's loss dict (``loss_classifier, loss_box_reg, loss_mask, loss_objectness,
    loss_rpn_box_reg``); eval mode returns ``{"logits": image-level scores}`` (see
    :func:`image_decision`, column 0 set to ``threshold``) and keeps the detections in
    ``last_detections``.
    """

    LOSS_NAMES = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg")

    def __init__(self, detector: MaskRCNN, num_classes: int, threshold: float = 0.5) -> None:
        super().__init__()
        self.detector, self.num_classes, self.threshold = detector, num_classes, threshold
        self.last_detections: list[dict[str, torch.Tensor]] = []

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images = list(batch["x"])
        if self.training:
            dev = images[0].device
            targets = [{k: v.to(dev) for k, v in t.items()} for t in batch["targets"]]
            return self.detector(images, targets)
        dets = self.detector(images)
        self.last_detections = [{k: v.detach().cpu() for k, v in d.items()} for d in dets]
        scores = image_decision(self.last_detections, self.num_classes)
        raw = scores.clone()
        scores[:, 0] = self.threshold
        return {"logits": scores.to(batch["x"].device), "class_scores": raw.to(batch["x"].device)}


# --------------------------------------------------------------------------- registry
YIN2024_CONFIG: dict[str, Any] = {
    "paper": "Yin et al. 2024, Sci Rep (Mask R-CNN + TCCBAM + deformable ResNet-10)",
    "input_size": 224, "preprocessed_size": 256, "dropout": 0.5, "widths": (64, 128, 256, 512),
    "depths": tuple(DEPTHS), "attentions": ATTENTIONS,
}


def _register_classifiers() -> None:
    for depth in DEPTHS:
        for deform in (False, True):
            for att in ATTENTIONS:
                if att == "cbam" and not deform:
                    continue  # Table 4 puts attention on the deformable nets only; TCCBAM without
                    # DC is the backbone of Table 6's "+AM" row (MASKRCNN_BACKBONES)
                name = f"yin2024_{att + '_' if att else ''}{'d' if deform else ''}resnet{depth}"

                def builder(num_classes: int = 4, _d: int = depth, _f: bool = deform,
                            _a: str | None = att, **kw: Any) -> YinResNet:
                    return build_resnet(_d, num_classes, _f, _a, **kw)

                builder.__name__ = name
                builder.__doc__ = f"{name}: Table 1 classifier (depth {depth}, deformable={deform}, attention={att})."
                register_model(name, paper="yin2024")(builder)


_register_classifiers()

#: Table 6 rows -> (deformable, attention) of the Mask R-CNN backbone.
MASKRCNN_VARIANTS: dict[str, tuple[bool, str | None]] = {
    "yin2024_maskrcnn": (False, None), "yin2024_maskrcnn_dc": (True, None),
    "yin2024_maskrcnn_am": (False, "tccbam"), "yin2024_maskrcnn_dc_am": (True, "tccbam"),
}


def _register_detectors() -> None:
    for name, (deform, att) in MASKRCNN_VARIANTS.items():
        def builder(num_classes: int = 4, threshold: float = 0.5, _f: bool = deform,
                    _a: str | None = att, **kw: Any) -> MaskRCNNClassifier:
            return MaskRCNNClassifier(build_maskrcnn(num_classes, deformable=_f, attention=_a, **kw),
                                      num_classes, threshold)

        builder.__name__ = name
        register_model(name, paper="yin2024")(builder)


_register_detectors()
