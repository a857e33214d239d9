"""TCCBAM (Yin et al. 2024, eqs. 4-6)."""
import torch

from brainlib.layers.tccbam import TCCBAM


def test_shapes_and_eq4():
    torch.manual_seed(0)
    m = TCCBAM(32, reduction=8).eval()
    f = torch.randn(2, 32, 9, 7)
    mc, ms = m.channel_weights(f), m.spatial_weights(f)
    assert mc.shape == (2, 32, 1, 1) and ms.shape == (2, 1, 9, 7)
    assert torch.all((mc > 0) & (mc < 1)) and torch.all((ms > 0) & (ms < 1))
    torch.testing.assert_close(m(f), f * mc + f * ms)
    m.residual = True
    torch.testing.assert_close(m(f), f * mc + f * ms + f)


def test_channel_mlp_is_shared_and_spatial_sees_three_maps():
    m = TCCBAM(16)
    assert m.spatial.in_channels == 3 and m.spatial.kernel_size == (7, 7)
    assert m.channel_deform.out_channels == 16 and m.spatial_deform.out_channels == 1
    n_mlp = sum(1 for mod in m.modules() if isinstance(mod, torch.nn.Sequential))
    assert n_mlp == 1


def test_gradients_flow():
    m = TCCBAM(8, reduction=2)
    f = torch.randn(1, 8, 5, 5, requires_grad=True)
    m(f).sum().backward()
    assert f.grad is not None and m.spatial.weight.grad.abs().sum() > 0
