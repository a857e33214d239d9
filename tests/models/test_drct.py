"""DrCT1/DrCT2 models and their attention blocks (Wang et al., section V)."""
import pytest
import torch

from brainlib.layers.sequence_attention import (
    FeatureAttention, SliceAttention, gather_slices, select_key_slices, zoom_slices,
)
from brainlib.models import create_model, list_models
from brainlib.models.drct import DrCT1, DrCT2, drct_losses, scan_max_losses, \
    slice_level_losses
from brainlib.models.slice_encoder import SliceEncoder

torch.set_num_threads(1)
D = 16


def test_feature_attention_is_softmax_over_features_merged_elementwise():
    z = torch.randn(2, 3, D)
    x, w = FeatureAttention()(z)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3))
    assert torch.allclose(x, z * torch.softmax(z, -1) * D)
    x0, _ = FeatureAttention(rescale=False)(z)
    assert torch.allclose(x0, z * w)


def test_slice_attention_weights_sum_to_one_and_mask_padding():
    att = SliceAttention(D)
    y = torch.randn(2, 5, D)
    weighted, pooled, w = att(y)
    assert torch.allclose(w.sum(1), torch.ones(2))
    assert torch.allclose(pooled, (y * w.unsqueeze(-1)).sum(1))
    mask = torch.tensor([[True] * 3 + [False] * 2] * 2)
    _, _, wm = att(y, mask)
    assert (wm[:, 3:] == 0).all() and torch.allclose(wm.sum(1), torch.ones(2))


def test_select_key_slices_top_k_in_slice_order_and_random_is_seeded():
    att = torch.tensor([[0.1, 0.5, 0.05, 0.3, 0.05], [0.2, 0.2, 0.2, 0.2, 0.2]])
    idx = select_key_slices(att, 2)
    assert idx.tolist() == [[1, 3], [0, 1]]        # ties -> lower index
    r1 = select_key_slices(att, 3, random=True, generator=torch.Generator().manual_seed(1))
    r2 = select_key_slices(att, 3, random=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(r1, r2) and (r1.diff(dim=1) > 0).all()
    with pytest.raises(ValueError, match="m_key"):
        select_key_slices(att, 6)
    x = torch.arange(2 * 5 * 3).view(2, 5, 3)
    assert torch.equal(gather_slices(x, idx)[0], x[0, [1, 3]])


def test_zoom_is_bilinear_to_requested_size():
    img = torch.rand(2, 4, 3, 8, 8)
    z = zoom_slices(img, 18)
    assert z.shape == (2, 4, 3, 18, 18)
    ref = torch.nn.functional.interpolate(img[0], size=(18, 18), mode="bilinear")
    assert torch.allclose(z[0], ref)


def test_encoder_frozen_seeded_and_sized():
    enc = SliceEncoder(width=0.0625, seed=3)
    assert enc.out_dim == 32 and not any(p.requires_grad for p in enc.parameters())
    x = torch.rand(2, 3, 32, 32)
    f = enc(x)
    assert f.shape == (2, 32) and f.abs().sum() > 0
    assert torch.equal(f, SliceEncoder(width=0.0625, seed=3)(x))
    assert not torch.equal(f, SliceEncoder(width=0.0625, seed=4)(x))
    enc.train()
    assert not enc.training
    assert "random initialisation" in enc.init.note and not enc.init.pretrained


def test_models_registered_and_output_shapes():
    assert {"drct1", "drct2", "drct2_random", "drct_slice_baseline"} <= set(list_models("wang_drct2"))
    m1 = create_model("drct1", num_classes=4, feature_dim=D, hidden=8, fc=(8, 8))
    out = m1(torch.randn(3, 6, D))
    assert out["logits"].shape == (3, 4) and out["slice_attention"].shape == (3, 6)
    assert out["feature_attention"].shape == (3, 6, D)
    m2 = create_model("drct2", num_classes=4, feature_dim=D, hidden=8, fc=(8, 8), m_key=3)
    out2 = m2(torch.randn(3, 6, 2, D))
    assert out2["logits"].shape == (3, 4) and out2["key_index"].shape == (3, 3)
    assert torch.equal(out2["logits"], out2["fusion"])
    # the APS slices are the top-3 of the primary slice attention
    top = torch.sort(torch.topk(out2["slice_attention"], 3).indices, 1).values
    assert torch.equal(out2["key_index"], top)
    with pytest.raises(ValueError, match=r"\(B, M, 2, D\)"):
        m2(torch.randn(3, 6, D))
    base = create_model("drct_slice_baseline", num_classes=4, feature_dim=D, fc=(8, 8)).eval()
    ob = base(torch.randn(2, 6, D))
    assert torch.equal(ob["logits"], ob["slice_logits"].max(1).values)


def test_image_path_equals_cached_feature_path():
    """Encoding every slice at both sizes once (the cache) gives the same DrCT2 output as
    zooming and encoding the proposed slices on the fly."""
    torch.manual_seed(0)
    enc = SliceEncoder(width=0.0625, seed=0)
    model = DrCT2(3, feature_dim=enc.out_dim, hidden=8, fc=(8, 8), m_key=2, zoom_size=48,
                  encoder=enc).eval()
    imgs = torch.rand(2, 5, 3, 32, 32)
    flat = imgs.flatten(0, 1)
    feats = torch.stack([enc(flat), enc(zoom_slices(flat, 48))], 1).view(2, 5, 2, -1)
    with torch.no_grad():
        a = model(feats)
    b = model.forward_images(imgs)
    assert torch.equal(a["key_index"], b["key_index"])
    assert torch.allclose(a["logits"], b["logits"], atol=1e-5)


def test_losses_and_param_groups_reach_every_module():
    model = DrCT2(3, feature_dim=D, hidden=8, fc=(8, 8), m_key=2)
    spec = model.lr_groups()
    assert [lr for _, lr in spec] == [5e-4, 3e-4, 5e-4]
    groups = [{"name": type(m).__name__, "params": list(m.parameters())} for m, _ in spec]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len([p for p in model.parameters()])
    batch = {"x": torch.randn(4, 6, 2, D), "y": torch.tensor([[1, 0, 1], [0, 0, 0], [1, 1, 0],
                                                            [0, 1, float("nan")]])}
    losses = drct_losses("drct2")
    assert [n for n, _, _ in losses] == ["primary_mse", "aps_mse", "fusion_bce"]
    assert [n for n, _, _ in drct_losses("drct2", "bce")][:2] == ["primary_bce", "aps_bce"]
    assert [n for n, _, _ in drct_losses("drct1")] == ["primary_mse"]
    out = model(batch["x"])
    total = sum(w * fn(out, batch) for _, fn, w in losses)
    assert torch.isfinite(total)
    total.backward()
    for g in groups:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in g["params"]), g["name"]
    with pytest.raises(ValueError):
        drct_losses("drct2", "hinge")
    sb = create_model("drct_slice_baseline", num_classes=3, feature_dim=D, fc=(8, 8))
    yb = {"y_slice": torch.randint(0, 2, (4, 6, 3)).float()}
    assert torch.isfinite(slice_level_losses()[0][1](sb(batch["x"]), yb))
    # scan-label loss of the max-over-slices baseline reads the max logit, NaN labels masked
    out = sb(batch["x"])
    (name, fn, _), = scan_max_losses()
    y = batch["y"]
    known = ~torch.isnan(y)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        out["slice_logits"].max(1).values[known], y[known])
    assert name == "scan_max_bce" and torch.allclose(fn(out, batch), expected)


def test_drct1_learns_to_attend_to_the_lesion_slice():
    """A scan is positive when one slice carries a signal feature; after a short training
    the slice attention of positive scans concentrates on that slice."""
    g = torch.Generator().manual_seed(0)
    n, m = 128, 8
    z = torch.rand(n, m, D, generator=g)
    y = (torch.rand(n, generator=g) < 0.5).float()
    where = torch.randint(0, m, (n,), generator=g)
    z[y.bool(), where[y.bool()], 0] += 3.0
    torch.manual_seed(0)
    model = DrCT1(1, feature_dim=D, hidden=16, fc=(16, 16), dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(150):
        out = model(z)
        loss = drct_losses("drct1")[0][1](out, {"y": y[:, None]})
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(z)
    acc = ((out["logits"][:, 0] > 0).float() == y).float().mean()
    hit = (out["slice_attention"].argmax(1) == where)[y.bool()].float().mean()
    assert acc > 0.9 and hit > 0.8


def test_slice_encoder_is_a_leaf():
    """models/slice_encoder imports neither models/drct nor any training code (no cycle)."""
    import subprocess
    import sys

    code = ("import sys, brainlib.models.slice_encoder; "
            "bad = [m for m in sys.modules if m.startswith(('brainlib.models.drct', "
            "'brainlib.papers', 'brainlib.engine'))]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
    import brainlib.models.drct as drct
    import brainlib.models.slice_encoder as leaf

    assert drct.SliceEncoder is leaf.SliceEncoder



def test_eq3_reads_raw_z_unless_standardisation_is_asked_and_eq4_output_layer_exists():
    from brainlib.layers.sequence_attention import DependencyOutput

    torch.manual_seed(0)
    z = torch.rand(2, 5, D) * 3 + 1
    m = DrCT1(3, feature_dim=D, hidden=8, fc=(8, 8)).eval()
    assert isinstance(m.output, DependencyOutput) and isinstance(m.output.g, torch.nn.Tanh)
    _, w_raw = m.feature_attention(z)
    out = m(z)
    assert torch.allclose(out["feature_attention"], w_raw)       # eq. 3 on z itself
    m.set_feature_stats(torch.full((D,), 2.0), torch.full((D,), 0.5))
    assert torch.equal(m(z)["logits"], out["logits"])           # stats unused by default
    ms = DrCT1(3, feature_dim=D, hidden=8, fc=(8, 8), standardize=True).eval()
    ms.load_state_dict(m.state_dict())
    _, w_std = ms.feature_attention((z - 2.0) / 0.5)
    assert torch.allclose(ms(z)["feature_attention"], w_std)
    m2 = DrCT2(3, feature_dim=D, hidden=8, fc=(8, 8), m_key=2, output_activation="relu",
               aps_pooling="sum").eval()
    assert isinstance(m2.aps.output.g, torch.nn.ReLU) and m2.aps.pooling == "sum"
    with pytest.raises(ValueError, match="activation"):
        DrCT1(3, feature_dim=D, output_activation="swish")
