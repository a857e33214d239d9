"""He et al. 2024 model variants (brainlib.models.he2024), as the he2024 pipeline uses them."""
import pytest
import torch

from brainlib.data.classes import RSNA_CLASSES
from brainlib.io import BRAIN
from brainlib.models import create_model, list_models
from brainlib.models.he2024 import CAM_CLASSIFIER, CAM_TARGET, HE2024_VARIANTS, He2024Net

torch.set_num_threads(1)
SMALL = dict(width=0.0625)


def _hu(b=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, size, size, generator=g) * 200 - 50


def test_all_variants_registered_under_the_paper():
    names = list_models("he2024")
    assert set(HE2024_VARIANTS) <= set(names)
    assert {"he2024_full", "he2024_no_window", "he2024_no_fusion"} <= set(names)
    assert len([n for n in names if n.startswith("he2024_t4_")]) == 6


@pytest.mark.parametrize("name", sorted(HE2024_VARIANTS))
def test_variant_forward_shapes(name):
    torch.manual_seed(0)
    m = create_model(name, **SMALL)
    out = m(_hu())
    assert out.shape == (2, len(RSNA_CLASSES))
    assert torch.isfinite(out).all()
    assert m.classes == tuple(RSNA_CLASSES)
    assert "random initialisation" in m.init.note


def test_variants_differ_where_the_paper_says():
    full = create_model("he2024_full", **SMALL)
    assert full.window_module is not None and full.window_module.trainable and full.fusion
    assert create_model("he2024_no_window", **SMALL).window_module is None
    assert not create_model("he2024_no_fusion", **SMALL).fusion
    fixed = create_model("he2024_t4_brain_fixed", **SMALL)
    assert not fixed.window_module.trainable
    assert fixed.window_module.learned_windows()[0].level == pytest.approx(BRAIN.level, rel=1e-5)
    assert create_model("he2024_t4_random_learn", **SMALL).window_module.initial_windows is None
    assert create_model("he2024_t4_hu", **SMALL).input_mode == "hu"


def test_fusion_feature_map_sizes():
    torch.manual_seed(0)
    m = He2024Net(width=0.0625, fusion=True)
    z = m.fused_features(_hu(size=64))
    c5 = m.classifier.in_features // 3
    assert z.shape == (2, 3 * c5, 4, 4)  # 1/16 of the input
    n = He2024Net(width=0.0625, fusion=False)
    assert n.fused_features(_hu(size=64)).shape == (2, c5, 4, 4)


def test_frozen_window_module_does_not_move_in_training_but_learnable_does():
    torch.manual_seed(0)
    x, y = _hu(4), torch.ones(4, 6)
    for name, moves in (("he2024_t4_three_fixed", False), ("he2024_full", True)):
        m = create_model(name, **SMALL)
        before = m.window_module.params()
        opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-2)
        for _ in range(2):
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(m(x), y).backward()
            opt.step()
        assert (m.window_module.params() != before) is moves


def test_same_seed_same_output():
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(create_model("he2024_full", **SMALL)(_hu()))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_cam_layers_exist_and_bad_inputs_raise():
    m = create_model("he2024_full", **SMALL)
    names = dict(m.named_modules())
    assert CAM_TARGET in names and CAM_CLASSIFIER in names
    with pytest.raises(ValueError, match="multiple of 16"):
        m(torch.zeros(1, 1, 40, 40))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        m(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError):
        He2024Net(input_mode="nope")


def test_batch_norm_variant_takes_the_same_stages():
    torch.manual_seed(0)
    plain = He2024Net(width=0.0625)
    bn = He2024Net(width=0.0625, batch_norm=True)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in bn.features)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.features)
    # C3, C4, C5 are taken just before pool3/4/5 in both layouts
    for net in (plain, bn):
        for p in (net._p3, net._p4, net._p5):
            assert isinstance(net.features[p], torch.nn.MaxPool2d)
    assert bn.fused_features(_hu(size=64)).shape == plain.fused_features(_hu(size=64)).shape


def test_random_window_init_is_not_saturated_on_hu():
    torch.manual_seed(0)
    m = create_model("he2024_t4_random_learn", **SMALL)
    hu = torch.linspace(-1000, 1000, 201).view(1, 1, 1, 201)
    out = m.window_module(hu) / m.window_module.upper
    assert out.min() > 0.05 and out.max() < 0.95  # an unsaturated ramp on every channel
    w = m.window_module.conv.weight.abs()
    assert (w <= 1e-3).all() and (w > 0).all()
