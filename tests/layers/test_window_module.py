"""Window-setting optimisation module (He et al. 2024 eq. 3.1, Table 2)."""
import numpy as np
import pytest
import torch

from brainlib.io import BRAIN, SOFT_TISSUE, SUBDURAL, Window, sigmoid_window_params
from brainlib.layers.window_module import WindowModule

torch.set_num_threads(1)
THREE = (BRAIN, SUBDURAL, SOFT_TISSUE)


def test_initialisation_is_table2_exactly():
    m = WindowModule(THREE)
    w, b = m.params()
    expected = [sigmoid_window_params(*win) for win in THREE]
    # float32 parameters: equal to the float64 formula to float32 precision
    np.testing.assert_allclose(w, [e[0] for e in expected], rtol=1e-6)
    np.testing.assert_allclose(b, [e[1] for e in expected], rtol=1e-6)
    # the paper's Table 2 (brain b printed without its sign)
    np.testing.assert_allclose(w, [0.13843335, 0.05537334, 0.02914386], rtol=1e-6)
    np.testing.assert_allclose(b, [-5.5373344, -4.4298673, -1.1657546], rtol=1e-6)


def test_output_is_eps_and_u_minus_eps_at_window_edges():
    m = WindowModule([BRAIN])
    hu = torch.tensor([BRAIN.low, BRAIN.level, BRAIN.high], dtype=torch.float32).view(1, 1, 1, 3)
    out = m(hu).flatten()
    torch.testing.assert_close(out, torch.tensor([1.0, 127.5, 254.0]), atol=1e-3, rtol=0)


def test_learned_windows_round_trip_and_follow_training():
    m = WindowModule(THREE)
    for got, want in zip(m.learned_windows(), THREE):
        assert isinstance(got, Window)
        assert got.level == pytest.approx(want.level, rel=1e-5)
        assert got.width == pytest.approx(want.width, rel=1e-5)
    with torch.no_grad():
        m.conv.weight[0] *= 2.0  # W and b doubled: same level, half the width
        m.conv.bias[0] *= 2.0
    lv, wd = m.learned_windows()[0]
    assert lv == pytest.approx(BRAIN.level, rel=1e-5)
    assert wd == pytest.approx(BRAIN.width / 2, rel=1e-5)


def test_trainable_and_frozen():
    hu = torch.linspace(-100, 200, 64).view(1, 1, 8, 8)
    m = WindowModule(THREE, trainable=True)
    m(hu).sum().backward()
    assert m.conv.weight.grad is not None and m.trainable
    f = WindowModule(THREE, trainable=False)
    assert not f.trainable
    assert all(not p.requires_grad for p in f.parameters())
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    before = m.params()
    opt.step()
    assert m.params() != before


def test_random_init_and_shapes():
    torch.manual_seed(0)
    m = WindowModule(None, channels=3)
    assert m.initial_windows is None and m.channels == 3
    out = m(torch.zeros(2, 1, 4, 4)).detach()
    assert out.shape == (2, 3, 4, 4) and float(out.min()) > 0 and float(out.max()) < 255


def test_bad_inputs():
    with pytest.raises(ValueError):
        WindowModule(None)
    with pytest.raises(ValueError):
        WindowModule([])
    with pytest.raises(ValueError):
        WindowModule(THREE, channels=2)
    with pytest.raises(ValueError, match="expects HU"):
        WindowModule([BRAIN])(torch.zeros(1, 3, 4, 4))
