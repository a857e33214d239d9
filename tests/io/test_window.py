"""CT windows and He et al. (2024) sigmoid window (eq. 3.1, Table 2)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from brainlib.io import (
    BONE,
    BRAIN,
    SOFT_TISSUE,
    SUBDURAL,
    WINDOWS,
    Window,
    as_window,
    sigmoid_window,
    sigmoid_window_params,
    stack_windows,
    window,
    window_from_sigmoid_params,
)


def test_presets_are_level_then_width():
    assert BRAIN == Window(level=40, width=80) and BRAIN.level == 40 and BRAIN.width == 80
    assert SUBDURAL == (80, 200)
    assert SOFT_TISSUE == (40, 380)
    assert BONE == (600, 2800)
    assert WINDOWS == {"brain": BRAIN, "subdural": SUBDURAL, "soft_tissue": SOFT_TISSUE, "bone": BONE}
    assert (BRAIN.low, BRAIN.high) == (0, 80)


def test_window_numpy_edges_and_clipping():
    hu = np.array([-1000, 0, 20, 40, 60, 80, 3000], dtype=np.int16)
    out = window(hu, 40, 80)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0, 0, 0.25, 0.5, 0.75, 1, 1])


def test_window_torch_matches_numpy_and_is_differentiable():
    hu = torch.linspace(-200, 300, 101, requires_grad=True)
    out = window(hu, *SUBDURAL)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.detach().numpy(), window(hu.detach().numpy(), *SUBDURAL), atol=1e-6)
    out.sum().backward()
    inside = (hu.detach() > SUBDURAL.low) & (hu.detach() < SUBDURAL.high)
    np.testing.assert_allclose(hu.grad[inside].numpy(), 1 / 200, rtol=1e-5)
    assert float(hu.grad[~inside].abs().max()) == 0.0


def test_window_rejects_bad_width():
    with pytest.raises(ValueError):
        window(np.zeros(3), 40, 0)
    with pytest.raises(KeyError, match="presets"):
        as_window("lung")


def test_stack_windows_channels_first_numpy_and_torch():
    hu = np.random.default_rng(0).normal(40, 300, (2, 5, 7)).astype(np.float32)
    out = stack_windows(hu, ["brain", SUBDURAL, (600, 2800)])
    assert out.shape == (2, 3, 5, 7)
    np.testing.assert_allclose(out[:, 1], window(hu, 80, 200))
    t = stack_windows(torch.from_numpy(hu[0]), [BRAIN, BONE])
    assert t.shape == (2, 5, 7)
    np.testing.assert_allclose(t[1].numpy(), window(hu[0], *BONE), atol=1e-6)


def test_sigmoid_params_reproduce_he2024_table2():
    # Table 2 of He et al. 2024 (brain, subdural, soft-tissue windows; U=255, eps=1), as
    # printed: float32 weights, W to 8 decimals, b to 7. The paper prints the brain b
    # without its minus sign; eq. 3.1 makes every b negative for a positive level.
    table2 = {
        "brain": ("0.13843335", "5.5373344"),
        "subdural": ("0.05537334", "-4.4298673"),
        "soft_tissue": ("0.02914386", "-1.1657546"),
    }
    for name, (w_paper, b_paper) in table2.items():
        W, b = sigmoid_window_params(*WINDOWS[name])
        assert f"{np.float32(W):.8f}" == w_paper, name
        assert f"{np.float32(b):.7f}" == (b_paper if b_paper.startswith("-") else "-" + b_paper), name
        assert abs(W - float(w_paper)) < 1e-8 and abs(abs(b) - abs(float(b_paper))) < 2e-7


@pytest.mark.parametrize("win", list(WINDOWS.values()) + [Window(-600, 1500), Window(35.5, 7.25)])
@pytest.mark.parametrize("upper,eps", [(255.0, 1.0), (1.0, 0.01)])
def test_sigmoid_params_round_trip(win, upper, eps):
    W, b = sigmoid_window_params(win.level, win.width, upper, eps)
    level, width = window_from_sigmoid_params(W, b, upper, eps)
    assert level == pytest.approx(win.level, rel=1e-12, abs=1e-9)
    assert width == pytest.approx(win.width, rel=1e-12)


def test_sigmoid_window_hits_eps_at_window_edges():
    x = np.array([BRAIN.low, BRAIN.level, BRAIN.high])
    np.testing.assert_allclose(sigmoid_window(x, *BRAIN), [1.0, 127.5, 254.0], rtol=1e-5)
    t = sigmoid_window(torch.tensor(x), *BRAIN)
    np.testing.assert_allclose(t.numpy(), [1.0, 127.5, 254.0], rtol=1e-5)
    with pytest.raises(ValueError):
        window_from_sigmoid_params(0.0, 1.0)
