"""Networks of Pandiyaraju et al. 2024: registered, output shapes, attention map, init note."""
from __future__ import annotations

import pytest
import torch

from brainlib.models import create_model, list_models

pytest.importorskip("segmentation_models_pytorch")


def test_registered() -> None:
    assert {"pandiyaraju2024_linknet_scse", "pandiyaraju2024_dcnnimaf"} <= set(list_models("pandiyaraju2024"))


def test_linknet_scse_lite_shapes_and_attention() -> None:
    torch.manual_seed(0)
    m = create_model("pandiyaraju2024_linknet_scse", encoder="inceptionresnetv2_lite", width=0.125,
                     repeats=(1, 1, 1)).eval()
    with torch.no_grad():
        out = m(torch.rand(2, 3, 64, 64))
    assert out["logits"].shape == (2, 1, 64, 64)
    att = out["attention"]
    assert att.shape == (2, 1, 64, 64) and float(att.min()) >= 0 and float(att.max()) <= 1
    assert len(m.scse) == 5 and not m.init.pretrained and "random initialisation" in m.init.note
    with pytest.raises(ValueError, match="divisible by 32"):
        m(torch.rand(1, 3, 50, 50))


def test_lite_encoder_keeps_published_layout_at_width_one() -> None:
    from brainlib.models.pandiyaraju2024 import InceptionResNetV2Lite

    enc = InceptionResNetV2Lite(1.0, (1, 1, 1))
    assert enc.out_channels == [3, 64, 192, 320, 1088, 1536]  # smp's inceptionresnetv2


def test_dcnnimaf_and_local_weights(tmp_path) -> None:
    m = create_model("pandiyaraju2024_dcnnimaf", widths=(8, 8, 16, 16), dim=16).eval()
    out = m(torch.rand(3, 3, 32, 32))
    assert out["logits"].shape == (3, 3)
    w = out["scale_weights"]
    assert w.shape == (3, 3) and torch.allclose(w.sum(1), torch.ones(3))
    path = tmp_path / "w.pt"
    torch.save(m.state_dict(), path)
    again = create_model("pandiyaraju2024_dcnnimaf", widths=(8, 8, 16, 16), dim=16, weights=str(path))
    assert again.init.pretrained and str(path) in again.init.note
