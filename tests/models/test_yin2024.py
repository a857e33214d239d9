"""Networks of Yin et al. (2024): registry names, shapes, DResNet placement, eq. 11-12 loss."""
import pytest
import torch

from brainlib.layers.attention import CBAM
from brainlib.layers.deformable import DeformConv2d
from brainlib.layers.tccbam import TCCBAM
from brainlib.models import create_model, list_models
from brainlib.models.yin2024 import laplace_dice_loss, yin_mask_loss

SMALL = dict(widths=(8, 16, 32, 64))
EXPECTED = {f"yin2024_{p}resnet{d}" for d in (10, 18, 34, 50)
            for p in ("", "d", "cbam_d", "tccbam_d", "tccbam_")} | {
    "yin2024_maskrcnn", "yin2024_maskrcnn_dc", "yin2024_maskrcnn_am", "yin2024_maskrcnn_dc_am"}


def test_every_table_row_is_registered():
    assert set(list_models("yin2024")) == EXPECTED


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if "maskrcnn" not in n))
def test_classifier_shapes(name):
    torch.set_num_threads(1)
    m = create_model(name, num_classes=4, **SMALL).eval()
    assert m(torch.randn(2, 3, 64, 64)).shape == (2, 4)


def test_resnet10_is_one_block_per_stage_and_table1_sizes():
    m = create_model("yin2024_resnet10")
    assert [len(getattr(m, f"layer{i}")) for i in range(1, 5)] == [1, 1, 1, 1]
    x = torch.randn(1, 3, 200, 200)  # Table 1's output sizes are those of a 200 px input
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    sizes = [x.shape[-1]]
    for i in range(1, 5):
        x = getattr(m, f"layer{i}")(x)
        sizes.append(x.shape[-1])
    assert sizes == [50, 50, 25, 13, 7]


def test_deformable_only_in_stages_2_to_4_and_attention_in_every_block():
    m = create_model("yin2024_tccbam_dresnet18", **SMALL)
    assert not any(isinstance(x, DeformConv2d) for blk in m.layer1 for x in (blk.conv1, blk.conv2))
    for stage in (m.layer2, m.layer3, m.layer4):
        assert all(isinstance(blk.conv1, DeformConv2d) and isinstance(blk.conv2, DeformConv2d) for blk in stage)
    assert all(isinstance(blk.attention, TCCBAM) for s in (m.layer1, m.layer4) for blk in s)
    c = create_model("yin2024_cbam_dresnet50", **SMALL)
    assert all(isinstance(blk.attention, CBAM) for blk in c.layer3)
    assert all(isinstance(blk.conv2, DeformConv2d) and not isinstance(blk.conv1, DeformConv2d) for blk in c.layer3)


def test_fresh_dresnet_equals_its_resnet():
    torch.manual_seed(0)
    plain = create_model("yin2024_resnet10", **SMALL).eval()
    deform = create_model("yin2024_dresnet10", **SMALL).eval()
    state = {k: v for k, v in deform.state_dict().items() if ".offset." not in k and ".modulation." not in k}
    plain_state = plain.state_dict()
    deform.load_state_dict({**deform.state_dict(), **{k: plain_state[k] for k in state}})
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(deform(x), plain(x), atol=1e-4, rtol=1e-4)


def test_eq11_hand_worked():
    # P = [[1, 0.5], [0, 0]], G = [[1, 1], [0, 0]]: sum PG = 1.5, sum P = 1.5, sum G = 2
    # L_la = 1 - (2 * 1.5 + 1) / (1.5 + 2 + 1) = 1 - 4 / 4.5 = 1/9
    p = torch.tensor([[[1.0, 0.5], [0.0, 0.0]]])
    g = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    torch.testing.assert_close(laplace_dice_loss(p, g), torch.tensor([1 / 9]))
    # both empty: 1 - 1/1 = 0 (the Laplace smoothing keeps it defined)
    assert laplace_dice_loss(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)).item() == 0.0


def test_eq12_hand_worked():
    # logits 0 everywhere: sigmoid 0.5, BCE = ln 2 per pixel; G = one pixel of four
    # L_la = 1 - (2 * 0.5 + 1) / (4 * 0.5 + 1 + 1) = 1 - 2 / 4 = 0.5
    logits = torch.zeros(1, 2, 2)
    g = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    ln2 = torch.log(torch.tensor(2.0))
    torch.testing.assert_close(yin_mask_loss(logits, g, 1.0), ln2)
    torch.testing.assert_close(yin_mask_loss(logits, g, 0.0), torch.tensor(0.5))
    torch.testing.assert_close(yin_mask_loss(logits, g, 0.25), 0.25 * ln2 + 0.75 * 0.5)
    with pytest.raises(ValueError):
        yin_mask_loss(logits, g, 1.5)


def _tiny_detector(name):
    return create_model(name, num_classes=3, widths=(8, 16, 32, 64), fpn_channels=16, head_dim=32,
                        mask_dim=16, image_size=64, rpn_pre_nms_top_n_train=50, rpn_post_nms_top_n_train=20,
                        rpn_pre_nms_top_n_test=20, rpn_post_nms_top_n_test=10, box_batch_size_per_image=16,
                        mask_mu=0.5)


def test_maskrcnn_losses_use_eq12_and_eval_gives_image_scores():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    m = _tiny_detector("yin2024_maskrcnn_dc_am")
    masks = torch.zeros(1, 64, 64, dtype=torch.uint8)
    masks[0, 20:40, 10:30] = 1
    batch = {"x": torch.rand(2, 3, 64, 64),
             "targets": [{"boxes": torch.tensor([[10.0, 20, 30, 40]]), "labels": torch.tensor([2]),
                          "masks": masks}] * 2}
    m.train()
    losses = m(batch)
    assert set(losses) == set(m.LOSS_NAMES)
    assert m.detector.roi_heads.mask_mu == 0.5
    sum(losses.values()).backward()
    m.eval()
    with torch.no_grad():
        out = m({"x": batch["x"]})
    assert out["logits"].shape == (2, 3) and torch.all(out["logits"][:, 0] == m.threshold)
    assert len(m.last_detections) == 2


@pytest.mark.parametrize("variant", ["maskrcnn", "maskrcnn_dc", "maskrcnn_am", "maskrcnn_dc_am"])
def test_backbone_initialised_from_the_matching_classifier(variant):
    from brainlib.models.yin2024 import MASKRCNN_BACKBONES, init_backbone

    torch.manual_seed(0)
    det = _tiny_detector(f"yin2024_{variant}")
    cls = create_model(MASKRCNN_BACKBONES[variant], num_classes=3, **SMALL)
    with torch.no_grad():  # a "trained" classifier: weights unlike any fresh initialisation
        for v in cls.state_dict().values():
            if v.is_floating_point():
                v.copy_(torch.randn_like(v))
    fpn_before = {k: v.clone() for k, v in det.detector.backbone.fpn.state_dict().items()}
    copied = init_backbone(det, cls)
    body = det.detector.backbone.body.state_dict()
    assert set(copied) == set(body) and any("layer4" in k for k in copied)
    for k in copied:
        torch.testing.assert_close(body[k], cls.state_dict()[k])
    for k, v in det.detector.backbone.fpn.state_dict().items():
        torch.testing.assert_close(v, fpn_before[k])  # FPN and heads keep their own init
    other = {"maskrcnn": "yin2024_dresnet10", "maskrcnn_dc": "yin2024_resnet10",
             "maskrcnn_am": "yin2024_tccbam_dresnet10", "maskrcnn_dc_am": "yin2024_cbam_dresnet10"}[variant]
    with pytest.raises(ValueError, match="does not match"):
        init_backbone(det, create_model(other, num_classes=3, **SMALL))
    with pytest.raises(ValueError, match="does not match"):
        init_backbone(det, create_model(MASKRCNN_BACKBONES[variant], num_classes=3, widths=(8, 16, 32, 32)))


def test_two_anchor_sides_per_level():
    torch.manual_seed(0)
    m = create_model("yin2024_maskrcnn", num_classes=3, widths=(8, 16, 32, 64), fpn_channels=16, head_dim=32,
                     mask_dim=16, image_size=64, anchor_sizes=((4, 8), (8, 16), (16, 32), (32, 64), (64, 128)),
                     rpn_fg_iou_thresh=0.5)
    gen = m.detector.rpn.anchor_generator
    assert gen.sizes[0] == (4, 8) and gen.num_anchors_per_location() == [6] * 5
    assert m.detector.rpn.proposal_matcher.high_threshold == 0.5
    m.eval()
    with torch.no_grad():
        assert m({"x": torch.rand(1, 3, 64, 64)})["logits"].shape == (1, 3)
