"""Dscint's outline as the abstract states it, and every lin2021 model on the two-view input."""
from __future__ import annotations

import pytest
import torch

from brainlib.models import create_model, list_models
from brainlib.models.dscint import DSCINT_CONFIG, count_structure, feature_size, min_input_size


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


def test_inception_v4_has_no_width_knob():
    with pytest.raises(ValueError, match="width"):
        create_model("lin2021_inception_v4", width=0.5)


def test_local_weights_load_matching_tensors(tmp_path):
    src = create_model("lin2021_resnet18", width=0.125)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    model = create_model("lin2021_resnet18", width=0.125, weights=str(tmp_path / "w.pt"))
    assert "tensors from" in model.init_note
    assert torch.equal(model.layer1[0].conv1.weight, src.layer1[0].conv1.weight)


@pytest.mark.slow
def test_inception_v4_runs_on_two_views_and_trains_a_step():
    """Inception-v4 (timm) is only trained at full: check its forward, loss and backward here."""
    name = "lin2021_inception_v4"
    side = max(75, min_input_size(name))
    model = create_model(name)
    x = torch.randn(2, 2, 2 * side, side)
    out = model(x)
    assert out.shape == (2, 4)
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 3])).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert "random initialisation" in model.init_note
