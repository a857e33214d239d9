"""Dscint's outline as the abstract states it, and every lin2021 model on the two-view input."""
from __future__ import annotations

import pytest
import torch

from brainlib.models import create_model, list_models
from brainlib.models.dscint import (BASELINES, DSCINT_CONFIG, INCEPTION_MIN_SIDE, count_structure,
                                   feature_size, min_input_size)


def test_dscint_has_the_abstracts_outline():
    model = create_model("lin2021_dscint", width=0.25, input_size=(128, 64))
    assert count_structure(model) == DSCINT_CONFIG["structure"]
    x = torch.randn(2, 2, 128, 64)
    assert model(x).shape == (2, 4)
    p = model.predict_proba(x)
    assert torch.allclose(p.sum(1), torch.ones(2))
    assert model.attention_map(x).shape[:2] == (2, 1)


def test_dscint_heads_and_input_size():
    assert feature_size((128, 64)) == (8, 4) and feature_size((256, 128)) == (16, 8)
    flat = create_model("lin2021_dscint", width=0.25, input_size=(128, 64))
    fc = [m for m in flat.classifier if isinstance(m, torch.nn.Linear)][0]
    assert fc.in_features == 64 * 8 * 4  # the flattened 8 x 4 map of 64 channels
    with pytest.raises(ValueError, match="built for input"):
        flat(torch.randn(1, 2, 96, 48))
    for head in ("avg", "max"):  # global pooling: any size, same outline
        model = create_model("lin2021_dscint", width=0.25, head=head)
        assert model(torch.randn(1, 2, 96, 48)).shape == (1, 4)
        assert count_structure(model) == DSCINT_CONFIG["structure"]
    with pytest.raises(ValueError, match="head"):
        create_model("lin2021_dscint", head="sum")


def test_dscint_convolutions_start_he_normal():
    torch.manual_seed(0)
    conv = [m for m in create_model("lin2021_dscint").features if isinstance(m, torch.nn.Conv2d)][-1]
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.05)
    assert not conv.bias.any()
    default = [m for m in create_model("lin2021_dscint", init="default").features
               if isinstance(m, torch.nn.Conv2d)][-1]
    assert default.weight.std().item() < 0.6 * conv.weight.std().item()


_HEAVY = {"lin2021_vgg16", "lin2021_densenet121"}  # 5-10 s each on a loaded 2-core machine


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _HEAVY else n
                                  for n in list_models("lin2021") if n != "lin2021_inception_v4"])
def test_models_run_on_two_views(name):
    side = max(64, min_input_size(name))
    kw = {"width": 0.25, "input_size": (2 * side, side)} if name == "lin2021_dscint" else {"width": 0.125}
    model = create_model(name, **kw)
    assert model(torch.randn(2, 2, 2 * side, side)).shape == (2, 4)
    assert "random initialisation" in model.init_note


def test_inception_v4_width_scales_timms_own_network():
    """Below width 1 Inception-v4 is rebuilt from timm's blocks: at width 1 that rebuild has
    exactly the tensors (names, shapes) of timm's `inception_v4`; at 0.25 every tensor shrinks
    by the width (a quarter of the channels), the depth stays; a width that cannot scale every
    channel count exactly is refused."""
    import timm

    from brainlib.models.dscint_inception import ScaledInceptionV4

    ours = ScaledInceptionV4(4, 2, 1.0).state_dict()
    theirs = timm.create_model("inception_v4", pretrained=False, num_classes=4, in_chans=2).state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    slim = create_model("lin2021_inception_v4", width=0.25)
    small = slim.state_dict()
    assert list(small) == list(theirs)  # same layers, same names
    w = "features.21.branch2_2.conv.weight"  # Inception-C, 448 -> 512 channels at width 1
    assert small[w].shape[:2] == (128, 112) and theirs[w].shape[:2] == (512, 448)
    assert slim.num_features == 384 and slim(torch.randn(2, 2, 128, 64)).shape == (2, 4)
    assert "width 0.25" in slim.init_note and "upsampled" in slim.input_note
    with pytest.raises(ValueError, match="whole number"):
        create_model("lin2021_inception_v4", width=0.3)


def test_local_weights_load_matching_tensors(tmp_path):
    src = create_model("lin2021_resnet18", width=0.125)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    model = create_model("lin2021_resnet18", width=0.125, weights=str(tmp_path / "w.pt"))
    assert "tensors from" in model.init_note
    assert torch.equal(model.layer1[0].conv1.weight, src.layer1[0].conv1.weight)


def _full_step(name: str, side: int) -> torch.nn.Module:
    """The full-profile build of `name` (width 1) trains one step on a tiny two-view batch."""
    torch.manual_seed(0)
    model = create_model(name).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    out = model(torch.randn(2, 2, 2 * side, side))
    assert out.shape == (2, 4)
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 3])).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    first = next(p for p in model.parameters() if p.dim() == 4)
    assert first.shape[1] == 2 and first.grad.abs().sum() > 0  # the two-view first convolution learns
    before = first.detach().clone()
    opt.step()
    assert not torch.equal(before, first.detach())
    assert "random initialisation" in model.init_note
    return model


# wall seconds measured at load ~10 on the 2-core machine: ResNet-18 1.5, DenseNet-121 2.1,
# Inception-v4 8.4, AlexNet 9.2 and VGG-16 23 (their 4096-unit FC layers: 57 M / 134 M weights)
_FULL_SLOW = {"lin2021_alexnet", "lin2021_vgg16", "lin2021_inception_v4"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _FULL_SLOW else n
                                  for n in BASELINES])
def test_full_profile_baselines_train_a_step_on_a_tiny_input(name):
    """Every baseline as the full profile builds it (width 1, full depth): forward, loss, backward
    and an optimiser step on the smallest input it accepts (Inception-v4: 32 px, upsampled)."""
    _full_step(name, min_input_size(name))


def test_inception_v4_upsamples_small_inputs_only():
    from brainlib.models.dscint import _upsample_to_min_side

    hook = _upsample_to_min_side(INCEPTION_MIN_SIDE)
    (x,) = hook(None, (torch.zeros(1, 2, 128, 64),))
    assert x.shape[-2:] == (150, 75)
    assert hook(None, (torch.zeros(1, 2, 256, 128),)) is None  # the full profile's size: untouched
    assert min_input_size("lin2021_inception_v4") == 32
