"""Channel / spatial attention blocks (He et al. 2024 eqs. 3.2-3.5, CBAM)."""
import pytest
import torch

from brainlib.layers.attention import CBAM, ChannelAttention, SpatialAttention

torch.set_num_threads(1)


def test_channel_attention_shapes_and_range():
    torch.manual_seed(0)
    att = ChannelAttention(32, reduction=8)
    x = torch.randn(2, 32, 5, 6)
    s = att.weights(x)
    assert s.shape == (2, 32, 1, 1)
    assert torch.all((s > 0) & (s < 1))
    assert att.forward(x).shape == x.shape
    assert att.mlp[0].out_channels == 4  # C / r bottleneck


def test_channel_attention_uses_avg_and_max_through_one_shared_mlp():
    torch.manual_seed(0)
    att = ChannelAttention(8, reduction=2)
    x = torch.randn(1, 8, 4, 4)
    avg = x.mean(dim=(2, 3), keepdim=True)
    mx = x.amax(dim=(2, 3), keepdim=True)
    expected = torch.sigmoid(att.mlp(avg) + att.mlp(mx))
    torch.testing.assert_close(att.weights(x), expected)
    se = ChannelAttention(8, reduction=2, use_max=False)
    se.load_state_dict(att.state_dict())
    torch.testing.assert_close(se.weights(x), torch.sigmoid(att.mlp(avg)))


def test_channel_attention_rescales_each_channel_only():
    torch.manual_seed(0)
    att = ChannelAttention(4, reduction=2)
    x = torch.rand(1, 4, 3, 3) + 0.1
    ratio = att(x) / x
    # one factor per channel, constant over space
    assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio), atol=1e-6)


def test_spatial_attention_matches_equation():
    torch.manual_seed(0)
    att = SpatialAttention(7)
    assert att.conv.kernel_size == (7, 7) and att.conv.in_channels == 2
    x = torch.randn(2, 5, 9, 9)
    desc = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
    m = torch.sigmoid(att.conv(desc))
    assert att.weights(x).shape == (2, 1, 9, 9)
    torch.testing.assert_close(att(x), x * m)


def test_cbam_is_channel_then_spatial_and_backpropagates():
    torch.manual_seed(0)
    cbam = CBAM(16, reduction=4)
    x = torch.randn(2, 16, 6, 6, requires_grad=True)
    y = cbam(x)
    torch.testing.assert_close(y, cbam.spatial(cbam.channel(x)))
    y.sum().backward()
    assert x.grad is not None and cbam.spatial.conv.weight.grad is not None


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        ChannelAttention(0)
    with pytest.raises(ValueError):
        SpatialAttention(4)
