"""The equalised-learning-rate kit shared by ProGAN and StyleGAN2: N(0, 1/m²) storage and He-scaled use, the
bias convention, both placements of the leaky ReLU's gain, where a conv adds its bias, pixel norm, and the
minibatch standard deviation (groups, slices, both variance forms)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lit_genvision.nn.equalized import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    activate,
    minibatch_group_size,
)


def randomise_biases(module: torch.nn.Module) -> torch.nn.Module:
    """Biases start at 0; move them so a mis-scaled bias cannot pass."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g))
    return module


# --- equalised learning rate ---------------------------------------------------------------------


@pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
def test_equalized_weights_are_stored_standard_normal_over_the_lr_multiplier(lr_multiplier):
    torch.manual_seed(0)
    layers = (
        EqualizedLinear(512, 512, lr_multiplier=lr_multiplier),
        EqualizedConv2d(128, 128, 3, lr_multiplier=lr_multiplier),
    )
    for layer in layers:
        w = layer.weight.detach() * lr_multiplier
        assert abs(w.mean().item()) < 0.01
        assert abs(w.std().item() - 1.0) < 0.01


@pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
def test_equalized_linear_uses_the_he_scaled_weight(lr_multiplier):
    torch.manual_seed(0)
    layer = randomise_biases(EqualizedLinear(64, 32, lr_multiplier=lr_multiplier, gain=math.sqrt(2)))
    c = lr_multiplier * math.sqrt(2) / math.sqrt(64)
    x = torch.randn(5, 64)
    expected = F.linear(x, layer.weight * c, layer.bias * lr_multiplier)
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer.effective_weight(), layer.weight * c)
    # at initialisation the effective weight has He's variance gain²/fan_in, whatever the multiplier
    big = EqualizedLinear(1024, 1024, lr_multiplier=lr_multiplier, gain=math.sqrt(2))
    assert abs((big.weight * big.weight_gain).std().item() * math.sqrt(1024 / 2) - 1.0) < 0.01


@pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
def test_equalized_linear_bias_init_is_the_effective_bias(lr_multiplier):
    layer = EqualizedLinear(8, 4, lr_multiplier=lr_multiplier, bias_init=1.0)
    torch.testing.assert_close(layer(torch.zeros(2, 8)), torch.ones(2, 4))
    assert layer.bias.detach().mul(lr_multiplier).eq(1.0).all()  # stored b_init / m, used m·b


@pytest.mark.parametrize("kernel_size, gain", [(3, math.sqrt(2)), (1, 1.0)])
def test_equalized_conv_uses_the_he_scaled_weight(kernel_size, gain):
    torch.manual_seed(0)
    layer = randomise_biases(EqualizedConv2d(6, 5, kernel_size, gain=gain))
    c = gain / math.sqrt(6 * kernel_size**2)
    x = torch.randn(2, 6, 8, 8)
    expected = F.conv2d(x, layer.weight * c, layer.bias, padding=kernel_size // 2)
    assert torch.equal(layer(x), expected)  # nothing between conv and bias: the bias is added by the conv


def test_equalized_conv_with_pooling_and_activation_adds_the_bias_after_the_pool():
    torch.manual_seed(0)
    layer = randomise_biases(EqualizedConv2d(6, 5, 3, activation="lrelu", down=2))
    x = torch.randn(2, 6, 8, 8)
    assert layer.weight_gain == pytest.approx(1 / math.sqrt(6 * 9))
    h = F.avg_pool2d(F.conv2d(x, layer.weight * layer.weight_gain, padding=1), 2)
    expected = F.leaky_relu(h + layer.bias[None, :, None, None], 0.2) * math.sqrt(2)
    assert layer(x).shape == (2, 5, 4, 4)
    assert torch.equal(layer(x), expected)
    with pytest.raises(ValueError, match="odd"):
        EqualizedConv2d(3, 3, 2)


def test_both_placements_of_the_he_gain_are_the_same_function():
    """ProGAN: lrelu(x·(√2·c₁W)ᵀ); StyleGAN2: lrelu(x·(c₁W)ᵀ)·√2 — equal since lrelu is positively homogeneous."""
    torch.manual_seed(0)
    progan = randomise_biases(EqualizedLinear(32, 16, gain=math.sqrt(2)))
    stylegan = EqualizedLinear(32, 16, activation="lrelu")
    stylegan.load_state_dict(progan.state_dict())
    with torch.no_grad():
        stylegan.bias.div_(math.sqrt(2))  # the bias is scaled by the gain too in ProGAN's placement
    x = torch.randn(8, 32)
    torch.testing.assert_close(F.leaky_relu(progan(x), 0.2), stylegan(x))
    assert torch.equal(activate(x, "linear"), x)


def test_equalized_layers_hold_only_weight_and_bias():
    """The state-dict layout both families' checkpoints were saved with."""
    assert list(EqualizedLinear(3, 2).state_dict()) == ["weight", "bias"]
    assert list(EqualizedConv2d(3, 2, 1, bias=False, down=2).state_dict()) == ["weight"]


# --- pixel norm and minibatch standard deviation -------------------------------------------------


def test_pixel_norm_gives_unit_mean_square_over_channels():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, 5, 5, generator=g) * (0.1 + 10 * torch.rand(3, 1, 5, 5, generator=g))  # scale per pixel
    y = PixelNorm()(x)
    torch.testing.assert_close(y.square().mean(dim=1), torch.ones(3, 5, 5))
    torch.testing.assert_close(PixelNorm()(x[:, :, 0, 0]).square().mean(dim=1), torch.ones(3))  # latents (B, D)


@pytest.mark.parametrize("variance", ["centred", "torch"])
@pytest.mark.parametrize("batch, group_size, groups", [(8, 4, 2), (4, 4, 1), (6, 4, 2), (3, 4, 1), (5, 4, 5)])
def test_minibatch_stddev_appends_one_channel_equal_to_the_group_std(batch, group_size, groups, variance):
    """groups = B / G with G the largest divisor of B not above min(group_size, B): 6 → G 3, 5 → G 1."""
    assert minibatch_group_size(group_size, batch) == batch // groups
    x = torch.randn(batch, 5, 4, 4, generator=torch.Generator().manual_seed(0))
    y = MinibatchStdDev(group_size, variance=variance)(x)
    assert y.shape == (batch, 6, 4, 4)
    assert torch.equal(y[:, :5], x)
    extra = y[:, 5]  # (B, H, W)
    for j in range(groups):
        members = list(range(j, batch, groups))  # strided groups, as in the official code
        expected = torch.std(x[members], dim=0, unbiased=False).mean()  # another route: std, then mean (C, H, W)
        for i in members:
            assert torch.all(extra[i] == extra[i][0, 0])  # constant over the spatial map
            torch.testing.assert_close(extra[i][0, 0], expected, atol=2e-4, rtol=1e-5)  # √(0 + 1e-8) for G = 1
    if 1 < groups < batch:  # samples of different groups (0 and 1) see different numbers
        assert extra[0, 0, 0] != extra[1, 0, 0]


def test_minibatch_stddev_slices_the_channels_into_num_channels():
    x = torch.randn(8, 6, 4, 4, generator=torch.Generator().manual_seed(1))
    y = MinibatchStdDev(group_size=4, num_channels=2)(x)
    assert y.shape == (8, 8, 4, 4)
    groups = x.reshape(4, 2, 2, 3, 4, 4)  # samples {i, i + 2, i + 4, i + 6} form group i; channels in 2 slices
    expected = groups.std(dim=0, unbiased=False).mean(dim=(2, 3, 4))  # (2 groups, 2 slices)
    torch.testing.assert_close(y[:, 6:, 0, 0], expected.repeat(4, 1), atol=1e-5, rtol=1e-5)


def test_minibatch_stddev_variance_forms_agree_up_to_rounding():
    x = torch.randn(12, 16, 4, 4, generator=torch.Generator().manual_seed(2)) * 3 + 1
    centred, single_pass = MinibatchStdDev(4)(x), MinibatchStdDev(4, variance="torch")(x)
    torch.testing.assert_close(centred, single_pass, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="variance"):
        MinibatchStdDev(4, variance="welford")
    with pytest.raises(ValueError, match="group_size"):
        MinibatchStdDev(0)
