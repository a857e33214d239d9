"""The CPU DCNv2 path (grid_sample) equals torchvision's deform_conv2d in values and gradients."""
import pytest
import torch
from torchvision.ops import deform_conv2d

from brainlib.layers.deformable import DeformConv2d, sampled_deform_conv2d


@pytest.mark.parametrize("b,c,co,h,w,stride,padding,dilation", [
    (2, 3, 4, 9, 7, 1, 1, 1), (2, 4, 5, 10, 10, 2, 1, 1), (1, 2, 3, 1, 1, 1, 1, 1),
    (1, 2, 2, 3, 2, 2, 1, 1), (2, 3, 2, 8, 8, 1, 2, 2)])
def test_sampled_equals_torchvision(b, c, co, h, w, stride, padding, dilation):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, c, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    ho = (h + 2 * padding - dilation * 2 - 1) // stride + 1
    wo = (w + 2 * padding - dilation * 2 - 1) // stride + 1
    off = (3 * torch.randn(b, 18, ho, wo, generator=g, dtype=torch.float64)).requires_grad_()  # many outside
    m = torch.rand(b, 9, ho, wo, generator=g, dtype=torch.float64, requires_grad=True)
    wt = torch.randn(co, c, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(co, generator=g, dtype=torch.float64, requires_grad=True)
    geo = dict(stride=(stride, stride), padding=(padding, padding), dilation=(dilation, dilation))
    ref = deform_conv2d(x, off, wt, bias, mask=m, **geo)
    got = sampled_deform_conv2d(x, off, wt, bias, geo["stride"], geo["padding"], geo["dilation"], m)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref)
    up = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    for a, r in zip(torch.autograd.grad(got, (x, off, m, wt, bias), up),
                    torch.autograd.grad(ref, (x, off, m, wt, bias), up)):
        torch.testing.assert_close(a, r)


def test_module_uses_it_on_cpu_and_a_fresh_one_is_the_plain_conv():
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(DeformConv2d.from_conv(conv)(x), conv(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="one group"):
        sampled_deform_conv2d(x, torch.zeros(2, 9, 6, 6), conv.weight, None, (1, 1), (1, 1), (1, 1),
                              torch.ones(2, 9, 6, 6))
