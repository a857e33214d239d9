"""DrCT1/DrCT2 models and their attention blocks (Wang et al., section V)."""
import pytest
import torch

from brainlib.layers.sequence_attention import (
    FeatureAttention, SliceAttention, gather_slices, select_key_slices, zoom_slices,
)
from brainlib.models import create_model, list_models
from brainlib.models.drct import DrCT1, DrCT2, SliceEncoder, drct_losses, slice_level_losses

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


# --------------------------------------------------------------------------- pipeline pieces
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from brainlib.papers import wang_drct2 as wang  # noqa: E402


def test_fixed_length_sampling_uses_left_out_slices_as_extra_sequences():
    seqs = wang.fixed_length_sequences(20, 6)
    assert len(seqs) == 3 and all(len(q) == 6 for q in seqs)
    assert seqs[0].tolist() == [0, 4, 8, 11, 15, 19]
    flat = np.concatenate(seqs)
    assert len(set(flat.tolist())) == len(flat)            # no slice used twice
    assert all((np.diff(q) > 0).all() for q in seqs)        # each in slice order
    assert len(wang.fixed_length_sequences(20, 6, extra=False)) == 1
    short = wang.fixed_length_sequences(3, 5)               # short scans repeat slices
    assert len(short) == 1 and short[0].tolist() == [0, 0, 1, 2, 2]
    with pytest.raises(ValueError):
        wang.fixed_length_sequences(0, 5)


def test_settings_map_notebook_overrides_and_list_paper_deviations():
    s, dev = wang.settings("full")
    assert dev == [] and s["seq_len_cq500"] == 32 and s["folds_rsna"] == 5
    s, dev = wang.settings("quick", folds=2, epochs=4, max_studies=10)
    assert s["folds_cq500"] == s["folds_rsna"] == 2 and s["max_studies_rsna"] == 10
    assert "epochs: 4 (paper: 100)" in dev
    assert not any(d.startswith(("hidden", "n_boot")) for d in dev)  # not paper settings
    with pytest.raises(ValueError, match="unknown"):
        wang.settings("quick", learning_rate=1)
    with pytest.raises(ValueError, match="zoom_size"):
        wang.settings("quick", image_size=64, zoom_size=32)
    assert wang.datasets_for("both") == ("cq500", "rsna")
    with pytest.raises(ValueError):
        wang.datasets_for("deeplesion")


def test_macro_prf_skips_classes_without_positives():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]], float)
    s = np.array([[.9, .2, .1], [.1, .8, .9], [.4, .7, .2], [.2, .1, .1]])
    m = wang.macro_prf(y, s)
    assert m["n_classes"] == 2
    assert m["recall"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["precision"] == pytest.approx(1.0)
    assert m["f1"] == pytest.approx((2 / 3 + 1.0) / 2)
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(1)
    y = (rng.random((40, 5)) < 0.3).astype(float)
    y[:, 4] = 0
    s = rng.random((40, 5))
    p, r, f, _ = precision_recall_fscore_support(y[:, :4].astype(int), (s[:, :4] >= 0.5).astype(int),
                                                 average="macro", zero_division=0)
    m = wang.macro_prf(y, s)
    assert (m["precision"], m["recall"], m["f1"], m["n_classes"]) == pytest.approx((p, r, f, 4))


def _toy_scandata(n_scans=16, m=6, d=8, seed=0):
    """Scans whose lesion slices carry a bright feature; 3 labels, one per lesion kind."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(m, 2 * m + 3, n_scans)
    feats, labels, slice_labels = [], [], []
    for z in lengths:
        f = rng.random((z, 2, d)).astype(np.float32)
        sl = np.zeros((z, 3), np.float32)
        for c in range(1, 3):
            if rng.random() < 0.5:
                start = rng.integers(0, z - 3)
                sl[start:start + 4, c] = 1
                f[start:start + 4, :, c] += 3.0
        sl[:, 0] = sl[:, 1:].max(1)
        feats.append(f)
        labels.append(sl.max(0))
        slice_labels.append(sl)
    return wang.ScanData(
        name="rsna", classes=("any", "a", "b"), dataset=None, features=np.concatenate(feats),
        offsets=np.concatenate([[0], np.cumsum(lengths)]), labels=np.array(labels),
        case_ids=[f"scan{i}" for i in range(n_scans)],
        groups=np.array([f"patient{i // 2}" for i in range(n_scans)]),
        slice_labels=slice_labels, seq_len=m, encoder_note="toy", cache_path=None,
        cached=True, seconds=0.0)


def test_cross_validate_toy_data_end_to_end():
    data = _toy_scandata()
    s, _ = wang.settings("smoke", epochs=2)
    s.update(hidden=8, fc=(8, 8), m_key=3, n_boot=20)
    variants = [v for v in wang.variants_for("rsna", s)]
    assert [v.name for v in variants] == ["drct1", "drct2", "drct2_bce", "slice_baseline"]
    cv = wang.cross_validate(data, s, seed=0, device="cpu", variants=variants)
    # every scan tested exactly once, patients never split across folds
    assert (cv.fold_of >= 0).all()
    per_patient = pd.Series(cv.fold_of).groupby(data.groups).nunique()
    assert (per_patient == 1).all()
    assert set(cv.scores) == {v.name for v in variants}
    assert np.isfinite(cv.scores["drct2"]).all() and np.isfinite(cv.attention["drct2"]).all()
    assert np.allclose(cv.attention["drct1"].sum(1), 1, atol=1e-5)
    # the per-module learning rates reached the optimiser
    h = cv.histories[("drct2", 0)]
    assert {"lr_group0:DrCT1", "lr_group1:APSNetwork", "lr_group2:Sequential"} <= set(h.columns)
    assert h["lr_group1:APSNetwork"].iloc[0] == pytest.approx(3e-4)
    assert {"precision", "recall"} <= set(h.columns)  # Fig. 5 curve
    # predictions recompute table 3
    pred = wang.predictions_frame(cv, ["drct1", "drct2"])
    t3 = wang.table3([cv])
    for model, label in (("drct1", "DrCT1"), ("drct2", "DrCT2")):
        p = pred[pred.model == model]
        y = p[[f"label_{c}" for c in data.classes]].to_numpy()
        sc = p[[f"score_{c}" for c in data.classes]].to_numpy()
        assert round(wang.macro_prf(y, sc)["f1"], 4) == t3.set_index("model").loc[label, "f1"]
    t5, t6 = wang.table5(cv), wang.table6(cv)
    assert list(t5["task"]) == ["Easy task", "Difficult task", "Comprehensive task"]
    assert t5["scans"].iloc[2] == int((data.labels[:, 0] == 1).sum())
    assert set(wang.table7(cv)["model"]) >= {"DrCT1", "DrCT2"}
    tt = wang.ttest_folds([cv])
    assert list(tt["metric"]) == ["precision", "recall", "f1"] and (tt["folds"] == 2).all()
    # measured values map onto registered claim ids (compare validates ids and units)
    from brainlib.claims import compare

    measured = wang.measured_claims([cv], [], seconds_per_scan=0.01)
    assert not measured["claim_id"].duplicated().any()
    table = compare("wang_drct2", measured, "toy").set_index("claim_id")
    assert table.loc["table5/comprehensive/drct2/accuracy", "status"] in ("consistent", "differs")
    assert table.loc["text/training/lr_aps", "status"] == "consistent"  # the paper's 3e-4
    # same seed -> same numbers
    cv2 = wang.cross_validate(data, s, seed=0, device="cpu", variants=variants[:2])
    assert np.array_equal(cv2.scores["drct2"], cv.scores["drct2"])


def test_record_provenance_states_random_encoder_as_deviation():
    class FakeRun:
        def __init__(self):
            self.notes, self.deviations, self.skipped = [], [], []

        def add_note(self, t):
            self.notes.append(t)

        def add_deviation(self, t):
            self.deviations.append(t)

        def add_skipped(self, s):
            self.skipped.extend(s)

    data = _toy_scandata(n_scans=4)
    data.encoder_note = "VGG-16 from random initialisation (no local ImageNet weights file given)"
    run = FakeRun()
    wang.record_provenance(run, {"rsna": data})
    assert any("random" in d for d in run.deviations)
    assert any("random initialisation" in n for n in run.notes)


def test_encoder_choice_and_random_ignores_env_weights(monkeypatch):
    monkeypatch.delenv("BRAINLIB_VGG16_WEIGHTS", raising=False)
    s, _ = wang.settings("smoke")
    assert s["encoder"] == "auto"
    assert wang.resolve_encoder(s, phantoms=True) == "random"     # measured better on phantoms
    assert wang.resolve_encoder(s, phantoms=False) == "random"    # never silently on real data
    assert wang.resolve_encoder({**s, "encoder": "phantom_pretrained"}, False) == "phantom_pretrained"
    with pytest.raises(FileNotFoundError, match="BRAINLIB_VGG16_WEIGHTS"):
        wang.resolve_encoder({**s, "encoder": "imagenet"}, phantoms=True)
    with pytest.raises(ValueError, match="encoder"):
        wang.settings("smoke", encoder="resnet")
    monkeypatch.setenv("BRAINLIB_VGG16_WEIGHTS", "/nonexistent/vgg16.pth")
    assert wang.resolve_encoder(s, phantoms=True) == "imagenet"
    assert wang.resolve_encoder({**s, "encoder": "random"}, phantoms=True) == "random"
    enc, pre = wang.make_encoder("random", s, seed=0)      # does not touch the env file
    assert pre is None and "random initialisation" in enc.init.note
    spec = wang.pretrain_spec(s, seed=2)
    assert spec.phantom_seed == s["phantom_seed"] + 10_000 and spec.seed == 2
    assert spec.image_size == s["image_size"] and spec.width == s["width"]


def test_feature_cache_key_changes_with_encoder_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path))
    s, _ = wang.settings("smoke", max_studies=2)
    ds = wang._open_dataset("rsna", None, {**s, "phantom_studies_rsna": 2})
    a = SliceEncoder(s["width"], False, seed=0)
    b = SliceEncoder(s["width"], False, seed=1)
    path = tmp_path / "w.pt"
    state = {k: v + 0.01 for k, v in a.features.state_dict().items()}
    torch.save(state, path)
    c = SliceEncoder.from_pretrained(path, s["width"], a.init.note)  # same note, new weights
    keys = {wang._feature_key("rsna", ds, s, 0, e) for e in (a, b, c)}
    assert len(keys) == 3
    assert wang._feature_key("rsna", ds, s, 0, a) == wang._feature_key(
        "rsna", ds, s, 0, SliceEncoder(s["width"], False, seed=0))
