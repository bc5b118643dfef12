"""The equalised-learning-rate kit of ProGAN and StyleGAN (Karras et al. 2018, "Progressive Growing of GANs",
arXiv 1710.10196; Karras et al. 2020, StyleGAN2, arXiv 1912.04958; NVlabs/stylegan2-ada-pytorch
``training/networks.py``):

    equalised learning rate (ProGAN §4.1)  ŵ = c·W,  b̂ = m·b,  c = m · gain / √fan_in
                                           W stored N(0, 1/m²), b stored b_init / m
    pixel norm (ProGAN §4.2)               b_{x,y} = a_{x,y} / √(mean_c a²_{x,y} + 1e-8)
    minibatch std (ProGAN §3)              one extra channel per F slice: the std over a group of G samples
                                           of each feature at each pixel, averaged to one number per group

m is the learning-rate multiplier: it divides the stored tensors and multiplies them back at run time, so the
initial map is He's (ŵ ~ N(0, gain²/fan_in)) while Adam, which normalises each step by the gradient's scale,
moves the layer m times slower (StyleGAN's mapping network: m = 0.01; everything else m = 1). ``bias_init`` is
the effective bias at initialisation (stylegan2-ada stores it undivided, which differs only where both
``bias_init`` ≠ 0 and m ≠ 1, a pair no network here uses).

The two papers place the leaky ReLU's He gain differently and both placements are kept: ProGAN folds it into
c (``gain=√2``, a linear layer followed by ``nn.LeakyReLU(0.2)``), StyleGAN2 keeps c = m/√fan_in and scales
the activation, lrelu(x)·√2 (``activation="lrelu"``, stylegan2-ada's ``bias_act``). The same function,
rounded differently.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Slope of every leaky ReLU in ProGAN and StyleGAN (ProGAN §A.1).
LEAKY_SLOPE = 0.2
#: He gain of a leaky ReLU, √2, as stylegan2-ada's ``bias_act`` applies it after ``lrelu``.
LRELU_GAIN = math.sqrt(2.0)

Activation = Literal["linear", "lrelu"]


def activate(x: Tensor, activation: Activation) -> Tensor:
    """``linear``: x; ``lrelu``: leaky_relu(x, 0.2)·√2, unit second moment kept (stylegan2-ada's ``bias_act``)."""
    return F.leaky_relu(x, LEAKY_SLOPE) * LRELU_GAIN if activation == "lrelu" else x


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x / √(mean(x²) + ε) along ``dim`` (ProGAN's pixel norm; StyleGAN's normalisation of z and e_y)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class PixelNorm(nn.Module):
    """b_{x,y} = a_{x,y} / √(mean_c a²_{x,y} + ε), each pixel's feature vector scaled to unit mean square
    (ProGAN §4.2, ε = 1e-8). Acts on dim 1, so it serves latents (B, D) and maps (B, C, H, W)."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return normalize_2nd_moment(x, 1, self.eps)


class EqualizedLinear(nn.Module):
    """y = act(x · (c·W)ᵀ + m·b), c = m · gain / √in_features: the equalised-learning-rate linear map.

    Args:
        in_features: input width (the fan-in).
        out_features: output width.
        bias: learn a bias.
        gain: He's gain folded into c: √2 before a separate leaky ReLU (ProGAN), 1 for a linear output or
            with ``activation="lrelu"`` (StyleGAN2).
        lr_multiplier: m, the learning-rate multiplier of weight and bias.
        bias_init: the effective bias m·b at initialisation (StyleGAN2's affine layers start at 1).
        activation: ``linear`` or ``lrelu`` (leaky ReLU·√2 after the bias).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        gain: float = 1.0,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
        activation: Activation = "linear",
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier * gain / math.sqrt(in_features)  # c
        self.bias_gain = lr_multiplier  # m

    def effective_weight(self) -> Tensor:
        """c·W, the weight the layer applies: N(0, gain²/fan_in) at initialisation (He)."""
        return self.weight * self.weight_gain

    def forward(self, x: Tensor) -> Tensor:
        """x (…, in_features) → (…, out_features)."""
        bias = self.bias * self.bias_gain if self.bias is not None else None
        return activate(F.linear(x, self.effective_weight(), bias), self.activation)

    def extra_repr(self) -> str:
        act = f", activation={self.activation}" if self.activation != "linear" else ""
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}, c={self.weight_gain:.4g}{act}"


class EqualizedConv2d(nn.Module):
    """y = act(pool_d(conv(x, c·W)) + m·b), c = m · gain / √(in_channels·k²): the equalised convolution,
    'same' padding, stride 1, ``down`` > 1 a d×d average pool after the conv (StyleGAN2's discriminator).

    A layer with neither activation nor pooling adds its bias inside the one ``F.conv2d`` call (ProGAN's
    layers); otherwise the bias follows the pooling, as stylegan2-ada's ``bias_act``. The two orders round
    differently, and each family's checkpoints were trained with its own.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: k (odd).
        bias: learn a bias.
        gain: as `EqualizedLinear`'s (√2 before ProGAN's separate leaky ReLU, 1 for toRGB or ``lrelu``).
        lr_multiplier: m.
        activation: ``linear`` or ``lrelu`` (leaky ReLU·√2 after the bias).
        down: d, the average-pooling factor after the conv (1: none).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        *,
        gain: float = 1.0,
        lr_multiplier: float = 1.0,
        activation: Activation = "linear",
        down: int = 1,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}.")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.activation, self.down = activation, down
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.randn(shape) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = lr_multiplier * gain / math.sqrt(in_channels * kernel_size**2)  # c
        self.bias_gain = lr_multiplier  # m

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C_in, H, W) → (B, C_out, H/d, W/d)."""
        weight, pad = self.weight * self.weight_gain, self.kernel_size // 2
        bias = self.bias * self.bias_gain if self.bias is not None else None
        if self.down == 1 and self.activation == "linear":
            return F.conv2d(x, weight, bias, padding=pad)  # (B, C_out, H, W)
        x = F.conv2d(x, weight, padding=pad)  # (B, C_out, H, W)
        if self.down > 1:
            x = F.avg_pool2d(x, self.down)  # (B, C_out, H/d, W/d)
        if bias is not None:
            x = x + bias[None, :, None, None]
        return activate(x, self.activation)

    def extra_repr(self) -> str:
        k, c, act = self.kernel_size, self.weight_gain, self.activation
        down = f", down={self.down}" if self.down > 1 else ""
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={k}, bias={self.bias is not None}, c={c:.4g}"
            f"{down}" + (f", activation={act}" if act != "linear" else "")
        )


def minibatch_group_size(group_size: int, batch: int) -> int:
    """G: the largest divisor of ``batch`` not above min(group_size, batch) (G = 1 always divides), so any
    batch works where the official code needs B divisible by G."""
    return next(g for g in range(min(group_size, batch), 0, -1) if batch % g == 0)


class MinibatchStdDev(nn.Module):
    """x (B, C, H, W) → (B, C + F, H, W): the minibatch standard deviation channels (ProGAN §3; StyleGAN2).

    The batch is split into B/G groups of G samples, strided as in the official code (sample i belongs to group
    i mod B/G). Within a group the standard deviation √(var + ε) (biased) of every feature at every pixel is
    averaged over each of F slices of the channels and over the pixels, and appended as F constant channels to
    each of the group's samples: the critic sees the variation in a batch and so penalises a generator that
    collapses. A prime B falls back to G = 1, whose std is √ε.

    Args:
        group_size: G (4 in both papers), lowered by `minibatch_group_size` where it does not divide B.
        num_channels: F, the number of channel slices and of appended channels (1 in ProGAN; C divisible by F).
        eps: ε under the square root.
        variance: ``centred``: mean_G((y − ȳ)²), the official code's; ``torch``: ``torch.var(unbiased=False)``
            (a single-pass algorithm), what ProGAN's critic here was trained with. Equal up to rounding.
    """

    def __init__(
        self,
        group_size: int = 4,
        num_channels: int = 1,
        eps: float = 1e-8,
        variance: Literal["centred", "torch"] = "centred",
    ) -> None:
        super().__init__()
        if group_size < 1:
            raise ValueError(f"group_size must be at least 1, got {group_size}.")
        if variance not in ("centred", "torch"):
            raise ValueError(f"variance must be 'centred' or 'torch', got {variance!r}.")
        self.group_size, self.num_channels, self.eps, self.variance = group_size, num_channels, eps, variance

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g, f = minibatch_group_size(self.group_size, n), self.num_channels
        y = x.reshape(g, n // g, f, c // f, h, w)  # (G, N/G, F, C/F, H, W): sample i = (i // (N/G), i mod N/G)
        if self.variance == "torch":
            var = y.var(dim=0, unbiased=False)  # (N/G, F, C/F, H, W)
        else:
            var = (y - y.mean(dim=0)).square().mean(dim=0)  # (N/G, F, C/F, H, W)
        y = (var + self.eps).sqrt().mean(dim=(2, 3, 4))  # (N/G, F) one number per group and slice
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # (N, F, H, W)
        return torch.cat([x, y], dim=1)  # (N, C + F, H, W)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}, variance={self.variance}"


__all__ = [
    "LEAKY_SLOPE",
    "LRELU_GAIN",
    "Activation",
    "EqualizedConv2d",
    "EqualizedLinear",
    "MinibatchStdDev",
    "PixelNorm",
    "activate",
    "minibatch_group_size",
    "normalize_2nd_moment",
]
