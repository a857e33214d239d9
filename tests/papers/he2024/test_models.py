"""He et al. 2024 model variants (brainlib.models.he2024) and pipeline helpers."""
import numpy as np
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


# --- pipeline helpers (brainlib.papers.he2024) ---------------------------------------------
import pandas as pd  # noqa: E402

from brainlib.papers import he2024 as pipeline  # noqa: E402
from brainlib.profiles import resolve_profile  # noqa: E402


def test_profiles_full_is_the_paper_and_others_record_deviations():
    full, dev = resolve_profile(pipeline.PROFILES, "full")
    assert dev == []
    assert (full["epochs"], full["batch_size"], full["lr"], full["lr_step"], full["lr_gamma"],
            full["optimizer"], full["test_fraction"]) == (20, 8, 1e-3, 5, 0.1, "adam", 0.01)
    for profile in ("quick", "smoke"):
        s, dev = resolve_profile(pipeline.PROFILES, profile, {"epochs": 2})
        assert s["epochs"] == 2 and any(d.startswith("epochs: 2") for d in dev)
        assert any(d.startswith("image_size") for d in dev)
        assert s["image_size"] % 16 == 0


def test_table2_is_exact_with_the_sign_of_b():
    t = pipeline.table2_window_init().set_index("parameter")
    assert list(t.columns) == ["Brain window", "Subdural window", "Soft tissue window"]
    # The printed values are eq. 3.1 held in float32 (the module's parameter type), rounded to
    # the printed decimals; the brain b is printed without its minus sign.
    W, b = t.loc["W (module)"].astype(float).to_numpy(), t.loc["b (module)"].astype(float).to_numpy()
    assert np.round(W, 8).tolist() == [0.13843335, 0.05537334, 0.02914386]
    assert np.round(b, 7).tolist() == [-5.5373344, -4.4298673, -1.1657546]
    exact = t.loc["W"].astype(float).to_numpy()
    np.testing.assert_allclose(exact, W, rtol=1e-7)
    assert exact[0] == 2 / 80 * np.log(254.0)


def test_bce_ignores_unknown_labels():
    out = torch.tensor([[2.0, -1.0]])
    y = torch.tensor([[1.0, float("nan")]])
    want = torch.nn.functional.binary_cross_entropy_with_logits(out[:, :1], y[:, :1])
    torch.testing.assert_close(pipeline._bce(out, {"y": y}), want)


def test_map_bootstrap_reweights_slices():
    ids = [f"s{i}" for i in range(6)]
    gt = pd.DataFrame([(i, "subdural", 0, 0, 4, 4) for i in ids],
                      columns=["image_id", "class", "x0", "y0", "x1", "y1"])
    good = gt.assign(score=np.linspace(0.9, 0.4, 6))
    bad = gt.assign(x0=10, y0=10, x1=12, y1=12, score=0.5)
    ref = pd.DataFrame({"class": list(pipeline.RSNA_SUBTYPES),
                        "ap": [np.nan, np.nan, np.nan, np.nan, 1.0]})
    boot = pipeline.map_bootstrap({"good": good, "bad": bad}, gt, ids, ref, 30, 0)
    assert np.all(boot["good"] == 1.0) and np.all(boot["bad"] == 0.0)


def test_predictions_frame_has_the_report_columns():
    from brainlib.report import validate_predictions

    r = pipeline.VariantResult("he2024_full", torch.nn.Identity(), pd.DataFrame(), 1,
                               ["a", "b"], np.eye(2, 6), np.full((2, 6), 0.3), 0.0)
    df = pipeline.predictions_frame({"he2024_full": r})
    validate_predictions(df)
    assert {"case_id", "model", "label_any", "score_subdural"} <= set(df.columns)
    assert df["label_any"].tolist() == [1.0, 0.0]


def test_scale_boxes_keeps_every_lesion():
    native = pd.DataFrame([("a", "subdural", 10, 20, 11, 21, 128, 128),
                           ("b", "epidural", 0, 0, 128, 64, 128, 128)],
                          columns=["image_id", "class", "x0", "y0", "x1", "y1", "rows", "columns"])
    out = pipeline.scale_boxes(native, 64)
    assert out.iloc[0][["x0", "y0", "x1", "y1"]].tolist() == [5, 10, 6, 11]  # 1 px stays 1 px
    assert out.iloc[1][["x0", "y0", "x1", "y1"]].tolist() == [0, 0, 64, 32]
