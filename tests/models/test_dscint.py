"""Dscint's outline as the abstract states it, and every lin2021 model on the two-view input."""
from __future__ import annotations

import pytest
import torch

from brainlib.models import create_model, list_models
from brainlib.models.dscint import DSCINT_CONFIG, count_structure, min_input_size


def test_dscint_has_the_abstracts_outline():
    model = create_model("lin2021_dscint")
    assert count_structure(model) == DSCINT_CONFIG["structure"]
    x = torch.randn(2, 2, 128, 64)
    assert model(x).shape == (2, 4)
    p = model.predict_proba(x)
    assert torch.allclose(p.sum(1), torch.ones(2))
    assert model.attention_map(x).shape[:2] == (2, 1)


@pytest.mark.parametrize("name", [n for n in list_models("lin2021") if n != "lin2021_inception_v4"])
def test_models_run_on_two_views(name):
    model = create_model(name, width=0.125 if name != "lin2021_dscint" else 0.25)
    side = max(64, min_input_size(name))
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
