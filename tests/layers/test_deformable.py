"""DCNv2 convolution (Yin et al. 2024, eq. 3): zero offset and mask 1 equal a plain conv."""
import pytest
import torch
import torch.nn as nn

from brainlib.layers.deformable import DeformConv2d


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 1), (1, 0)])
def test_fresh_deformable_equals_plain_conv(stride, padding):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, stride=stride, padding=padding)
    dcn = DeformConv2d.from_conv(conv)
    x = torch.randn(2, 3, 11, 9)
    offset, mask = dcn.offsets_and_mask(x)
    assert torch.all(offset == 0) and torch.allclose(mask, torch.ones_like(mask))
    assert dcn(x).shape == conv(x).shape
    torch.testing.assert_close(dcn(x), conv(x), atol=1e-5, rtol=1e-5)


def test_half_mask_scales_the_plain_conv_without_bias():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
    dcn = DeformConv2d.from_conv(conv, mask_init="half")
    x = torch.randn(1, 2, 6, 6)
    torch.testing.assert_close(dcn(x), 0.5 * conv(x), atol=1e-5, rtol=1e-5)


def test_offsets_move_the_sampling_and_get_gradients():
    torch.manual_seed(0)
    dcn = DeformConv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        dcn.offset.bias.fill_(1.0)  # shift every tap by one pixel (dy = dx = 1)
    x = torch.randn(1, 1, 8, 8, requires_grad=True)
    y = dcn(x)
    plain = nn.functional.conv2d(x, dcn.weight, padding=1)
    assert not torch.allclose(y, plain)
    y.sum().backward()
    assert dcn.offset.weight.grad is not None and dcn.modulation.weight.grad.abs().sum() > 0


def test_rejects_bad_mask_init():
    with pytest.raises(ValueError):
        DeformConv2d(1, 1, mask_init="zero")
