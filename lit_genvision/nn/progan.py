"""ProGAN's networks: a generator and a critic grown from 4×4 to the target resolution (Karras et al. 2018,
"Progressive Growing of GANs for Improved Quality, Stability, and Variation", arXiv 1710.10196; the official
code is tkarras/progressive_growing_of_gans, ``networks.py``).

Stage s works at resolution R_s = 4·2^s, s = 0 … num_stages − 1. While stage s > 0 is faded in, α rises
from 0 to 1 (the schedule lives in the training method, not here) and the networks blend the old path
with the new block (§2, Figure 2):

    G(z; s, α) = (1 − α) · up(toRGB_{s−1}(h_{s−1})) + α · toRGB_s(block_s(h_{s−1}))      (B, C, R_s, R_s)
    D(x; s, α) = D_{<s}((1 − α) · fromRGB_{s−1}(pool(x)) + α · block_s(fromRGB_s(x)))   (B,)

with h_{s−1} the generator's features at R_{s−1}, up the nearest 2× upsampling and pool the 2×2 average.

The paper's other three ingredients come from `lit_genvision.nn.equalized`, shared with StyleGAN:

    equalised learning rate (§4.1)     ŵ = c · w,  w ~ N(0, 1) stored,  c = gain / √fan_in (He's constant,
                                       gain √2 before a LeakyReLU, as the official code)
    pixel-wise normalisation (§4.2)    b_{x,y} = a_{x,y} / √(mean_c a²_{x,y} + 1e-8)
    minibatch standard deviation (§3)  one extra channel: the std over a group of each feature at each
                                       pixel, averaged to one number per group

Neither network ends in tanh: the generator's toRGB is linear (as in the official code) and the critic
returns an unbounded WGAN score.
"""

from __future__ import annotations

import math
import operator

import torch.nn.functional as F
from torch import Tensor, nn

from lit_genvision.nn.equalized import LEAKY_SLOPE, EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm

#: He's gain of a layer followed by a leaky ReLU, folded into the equalised weight as the official code does.
HE_GAIN = math.sqrt(2)


def progan_channels(
    max_resolution: int, channels: dict[int, int] | None = None, fmap_base: int = 8192, fmap_max: int = 512
) -> list[int]:
    """Feature maps per stage, ``[C_0, …, C_{S−1}]`` for resolutions 4, 8, …, ``max_resolution``: from
    ``channels`` (resolution → width, every resolution given), else the official rule
    C_s = min(fmap_base / 2^(s+1), fmap_max), which gives the paper's 512 up to 32×32, then 256, 128, …"""
    stages = _num_stages(max_resolution)
    resolutions = [4 * 2**s for s in range(stages)]
    if channels is None:
        return [min(fmap_base // 2 ** (s + 1), fmap_max) for s in range(stages)]
    missing = [r for r in resolutions if r not in channels]
    if missing:
        raise ValueError(f"channels must give a width for every resolution {resolutions}, missing {missing}.")
    return [int(channels[r]) for r in resolutions]


def _num_stages(max_resolution: int) -> int:
    stages = int(math.log2(max_resolution // 4)) + 1 if max_resolution >= 4 else 0
    if max_resolution < 4 or 4 * 2 ** (stages - 1) != max_resolution:
        raise ValueError(f"max_resolution must be 4·2^k (4, 8, 16, 32, …), got {max_resolution}.")
    return stages


def _check_stage(stage: int, alpha: float, num_stages: int) -> tuple[int, float]:
    """(stage, α) validated: an integer 0 ≤ stage < num_stages and 0 ≤ α ≤ 1 (α is ignored at stage 0)."""
    try:
        stage = operator.index(stage)
    except TypeError:
        raise ValueError(f"stage must be an integer in [0, {num_stages - 1}], got {stage!r}.") from None
    if not 0 <= stage < num_stages:
        raise ValueError(f"stage must be an integer in [0, {num_stages - 1}], got {stage}.")
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:  # also rejects NaN
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}.")
    return stage, alpha


def _conv_act(c_in: int, c_out: int, kernel_size: int, pixel_norm: bool) -> list[nn.Module]:
    """Equalised conv → LeakyReLU(0.2) [→ PixelNorm]: the unit both networks are built of."""
    return [
        EqualizedConv2d(c_in, c_out, kernel_size, gain=HE_GAIN),
        nn.LeakyReLU(LEAKY_SLOPE),
        *([PixelNorm()] if pixel_norm else []),
    ]


class GeneratorStem(nn.Module):
    """The generator's 4×4 block: z (B, D) → PixelNorm → dense to (C_0, 4, 4) → LReLU → PixelNorm →
    conv 3×3 → LReLU → PixelNorm, features (B, C_0, 4, 4) (paper Table 2, first rows)."""

    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.norm_latent = PixelNorm()
        # The paper's "conv 4×4" on a 1×1 latent, written as a dense map with the official code's gain √2/4:
        # He's constant for that conv's fan-in 16·D, kept from the original Theano implementation.
        self.dense = EqualizedLinear(latent_dim, channels * 16, gain=HE_GAIN / 4)
        self.act = nn.Sequential(nn.LeakyReLU(LEAKY_SLOPE), PixelNorm())
        self.conv = nn.Sequential(*_conv_act(channels, channels, 3, pixel_norm=True))

    def forward(self, z: Tensor) -> Tensor:
        h = self.dense(self.norm_latent(z)).reshape(-1, self.channels, 4, 4)  # (B, C_0, 4, 4)
        return self.conv(self.act(h))  # (B, C_0, 4, 4)


class GeneratorBlock(nn.Module):
    """One growth stage of the generator: (B, C_in, R, R) → nearest 2× upsampling → 2 × (conv 3×3 →
    LReLU → PixelNorm) → (B, C_out, 2R, 2R)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            *_conv_act(in_channels, out_channels, 3, pixel_norm=True),
            *_conv_act(out_channels, out_channels, 3, pixel_norm=True),
        )

    def forward(self, h: Tensor) -> Tensor:
        return self.convs(F.interpolate(h, scale_factor=2, mode="nearest"))


class ProGANGenerator(nn.Module):
    """z (B, latent_dim) → image (B, C, R_s, R_s) at stage s, R_s = 4·2^s, with block s faded in by α.

    ``blocks[0]`` is the 4×4 :class:`GeneratorStem`, ``blocks[s]`` the :class:`GeneratorBlock` that
    doubles the resolution to R_s, and ``to_rgb[s]`` the 1×1 equalised conv (gain 1, linear) that reads
    an image out of stage s's features. Blocks beyond the current stage are not run, so they get no
    gradient. The output is not squashed: training keeps it in about [-1, 1].

    Args:
        latent_dim: D, the width of z (512 in the paper).
        max_resolution: the final resolution, 4·2^k.
        out_channels: image channels (1 or 3).
        channels: width per resolution, e.g. ``{4: 128, 8: 128, 16: 64, 32: 32}``; otherwise the rule
            C_s = min(fmap_base / 2^(s+1), fmap_max).
        fmap_base: the rule's numerator (8192 in the paper).
        fmap_max: the rule's cap (512 in the paper).
    """

    def __init__(
        self,
        latent_dim: int = 512,
        max_resolution: int = 32,
        out_channels: int = 3,
        channels: dict[int, int] | None = None,
        fmap_base: int = 8192,
        fmap_max: int = 512,
    ) -> None:
        super().__init__()
        widths = progan_channels(max_resolution, channels, fmap_base, fmap_max)
        self.latent_dim, self.max_resolution, self.out_channels = latent_dim, max_resolution, out_channels
        self.image_size, self.in_channels = max_resolution, out_channels  # the attributes other generators have
        self.channels = widths
        self.blocks = nn.ModuleList(
            [GeneratorStem(latent_dim, widths[0])]
            + [GeneratorBlock(widths[s - 1], widths[s]) for s in range(1, len(widths))]
        )
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, out_channels, 1, gain=1.0) for c in widths)

    @property
    def num_stages(self) -> int:
        """Stages 0 … num_stages − 1, at resolutions 4 … max_resolution."""
        return len(self.blocks)

    def resolution(self, stage: int) -> int:
        """R_s = 4·2^s, the side of the images at ``stage``."""
        stage, _ = _check_stage(stage, 1.0, self.num_stages)
        return 4 * 2**stage

    def forward(self, z: Tensor, stage: int, alpha: float = 1.0) -> Tensor:
        """z (B, D) → (B, C, R_s, R_s); α = 1 is the stable phase (use stage ``num_stages − 1`` to sample)."""
        stage, alpha = _check_stage(stage, alpha, self.num_stages)
        h = self.blocks[0](z)  # (B, C_0, 4, 4)
        for block in self.blocks[1:stage]:
            h = block(h)  # (B, C_{s−1}, R_{s−1}, R_{s−1})
        if stage == 0:
            return self.to_rgb[0](h)  # (B, C, 4, 4)
        new = self.to_rgb[stage](self.blocks[stage](h))  # (B, C, R_s, R_s)
        if alpha == 1.0:  # stable phase: the old path would be multiplied by 0
            return new
        old = F.interpolate(self.to_rgb[stage - 1](h), scale_factor=2, mode="nearest")  # (B, C, R_s, R_s)
        return (1.0 - alpha) * old + alpha * new


class DiscriminatorBlock(nn.Module):
    """One growth stage of the critic: (B, C_in, R, R) → 2 × (conv 3×3 → LReLU) → 2×2 average pooling →
    (B, C_out, R/2, R/2); the first conv keeps C_in, the second maps to C_out (the official code)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            *_conv_act(in_channels, in_channels, 3, pixel_norm=False),
            *_conv_act(in_channels, out_channels, 3, pixel_norm=False),
        )

    def forward(self, h: Tensor) -> Tensor:
        return F.avg_pool2d(self.convs(h), 2)


class DiscriminatorHead(nn.Module):
    """The critic's 4×4 block: (B, C_0, 4, 4) → MinibatchStdDev → conv 3×3 → LReLU → dense to C_0 → LReLU →
    dense to 1 (gain 1, linear), the WGAN score (B,) (paper Table 2, last rows)."""

    def __init__(self, channels: int, group_size: int = 4) -> None:
        super().__init__()
        self.mbstd = MinibatchStdDev(group_size, variance="torch")  # the form this critic was trained with
        self.conv = nn.Sequential(*_conv_act(channels + 1, channels, 3, pixel_norm=False))
        self.dense = nn.Sequential(EqualizedLinear(channels * 16, channels, gain=HE_GAIN), nn.LeakyReLU(LEAKY_SLOPE))
        self.out = EqualizedLinear(channels, 1, gain=1.0)

    def forward(self, h: Tensor) -> Tensor:
        h = self.conv(self.mbstd(h))  # (B, C_0, 4, 4)
        return self.out(self.dense(h.flatten(1))).squeeze(1)  # (B,)


class ProGANDiscriminator(nn.Module):
    """image (B, C, R_s, R_s) at stage s → WGAN critic score (B,), with block s faded in by α.

    ``from_rgb[s]`` is the 1×1 equalised conv + LReLU that turns an R_s image into stage s's features,
    ``blocks[s]`` (s > 0) the :class:`DiscriminatorBlock` that halves R_s to R_{s−1}, and ``head`` the 4×4
    :class:`DiscriminatorHead` with the minibatch standard deviation. The widths mirror the generator's.

    Args:
        max_resolution: the final resolution, 4·2^k.
        in_channels: image channels (1 or 3).
        channels: width per resolution, as for :class:`ProGANGenerator`.
        fmap_base: the rule's numerator (8192 in the paper).
        fmap_max: the rule's cap (512 in the paper).
        mbstd_group_size: G of :class:`MinibatchStdDev` (4 in the paper).
    """

    def __init__(
        self,
        max_resolution: int = 32,
        in_channels: int = 3,
        channels: dict[int, int] | None = None,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        mbstd_group_size: int = 4,
    ) -> None:
        super().__init__()
        widths = progan_channels(max_resolution, channels, fmap_base, fmap_max)
        self.max_resolution, self.in_channels, self.image_size = max_resolution, in_channels, max_resolution
        self.channels = widths
        self.from_rgb = nn.ModuleList(
            nn.Sequential(EqualizedConv2d(in_channels, c, 1, gain=HE_GAIN), nn.LeakyReLU(LEAKY_SLOPE)) for c in widths
        )
        # blocks[0] is empty so that blocks[s] is stage s's block; the 4×4 stage ends in the head
        self.blocks = nn.ModuleList(
            [nn.Identity()] + [DiscriminatorBlock(widths[s], widths[s - 1]) for s in range(1, len(widths))]
        )
        self.head = DiscriminatorHead(widths[0], mbstd_group_size)

    @property
    def num_stages(self) -> int:
        """Stages 0 … num_stages − 1, at resolutions 4 … max_resolution."""
        return len(self.from_rgb)

    def resolution(self, stage: int) -> int:
        """R_s = 4·2^s, the side of the images the critic takes at ``stage``."""
        stage, _ = _check_stage(stage, 1.0, self.num_stages)
        return 4 * 2**stage

    def forward(self, x: Tensor, stage: int, alpha: float = 1.0) -> Tensor:
        """x (B, C, R_s, R_s) → (B,); α = 1 is the stable phase."""
        stage, alpha = _check_stage(stage, alpha, self.num_stages)
        size = 4 * 2**stage
        if x.shape[-2:] != (size, size):
            raise ValueError(f"stage {stage} takes {size}×{size} images, got {tuple(x.shape[-2:])}.")
        h = self.from_rgb[stage](x)  # (B, C_s, R_s, R_s)
        if stage > 0:
            h = self.blocks[stage](h)  # (B, C_{s−1}, R_{s−1}, R_{s−1})
            if alpha < 1.0:
                old = self.from_rgb[stage - 1](F.avg_pool2d(x, 2))  # (B, C_{s−1}, R_{s−1}, R_{s−1})
                h = (1.0 - alpha) * old + alpha * h
        for s in range(stage - 1, 0, -1):
            h = self.blocks[s](h)  # (B, C_{s−1}, R_{s−1}, R_{s−1})
        return self.head(h)  # (B,)
