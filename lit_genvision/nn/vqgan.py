"""The VQGAN convolutional encoder and decoder (Esser et al. 2021, "Taming Transformers for
High-Resolution Image Synthesis", arXiv 2012.09841; taming-transformers' ``Encoder`` / ``Decoder``
in ``taming/modules/diffusionmodules/model.py``).

Encoder, for L = ``len(channel_mults)`` levels of width w_i = ``channels``·m_i:

    conv_in 3×3 → for each level i: ``depth`` residual blocks to w_i (each followed by self-attention
    when the level's resolution is in ``attention_at``), then, except at the last level, a stride-2
    3×3 conv that pads one row/column at the bottom/right → middle: res → attention → res
    → GroupNorm → SiLU → conv_out 3×3 to ``z_channels``

so an S×S image becomes a (z_channels, S/2^(L−1), S/2^(L−1)) grid. The decoder mirrors it: conv_in
from ``z_channels``, the middle, then from the last level back to the first ``depth + 1`` residual
blocks per level (taming's count) with nearest ×2 upsampling + 3×3 conv between levels, and
GroupNorm → SiLU → conv_out to the image channels, with no final activation (the output is read as
an image in [-1, 1]).

The residual and attention blocks are the U-Net's (`lit_genvision.nn.unet`), built without a
timestep embedding; as there, each block's last conv and each attention output projection start at
zero, so every block starts as the identity (taming keeps PyTorch's default initialisation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from lit_genvision.nn import ops
from lit_genvision.nn.unet import ResidualStage


def _level_sizes(image_size: int, levels: int) -> list[int]:
    """The feature-map side at each level: S, S/2, …, S/2^(L−1)."""
    if levels < 1:
        raise ValueError("channel_mults needs at least one level.")
    if image_size % 2 ** (levels - 1):
        raise ValueError(f"image_size {image_size} must be divisible by 2^{levels - 1} for {levels} levels.")
    return [image_size // 2**i for i in range(levels)]


class _EncoderLevel(ResidualStage):
    """Residual blocks (+ attention) at one resolution, then optionally a stride-2 3×3 conv that pads
    (0, 1, 0, 1) as taming's ``Downsample`` does: H, W halve."""

    def __init__(self, in_chs: Sequence[int], out_ch: int, downsample: bool, **kw) -> None:
        super().__init__(in_chs, out_ch, **kw)
        self.down = nn.Conv2d(out_ch, out_ch, 3, stride=2) if downsample else None

    def forward(self, x: Tensor) -> Tensor:
        for i in range(len(self.res)):
            x = self.block(i, x, None, None)  # (B, out, H, W)
        if self.down is not None:
            x = self.down(F.pad(x, (0, 1, 0, 1)))  # (B, out, H/2, W/2)
        return x


class _DecoderLevel(ResidualStage):
    """Residual blocks (+ attention) at one resolution, then optionally nearest ×2 upsampling + 3×3
    conv (taming's ``Upsample``): H, W double."""

    def __init__(self, in_chs: Sequence[int], out_ch: int, upsample: bool, **kw) -> None:
        super().__init__(in_chs, out_ch, **kw)
        up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.up = up if upsample else None

    def forward(self, x: Tensor) -> Tensor:
        for i in range(len(self.res)):
            x = self.block(i, x, None, None)  # (B, out, H, W)
        return x if self.up is None else self.up(x)  # (B, out, 2H, 2W) when upsampling


def _stage_kw(heads: int, norm_groups: int, dropout: float, kernels: str, norm_eps: float) -> dict:
    """The `ResidualStage` arguments shared by every level: no timestep embedding, no cross-attention."""
    return dict(
        emb_dim=None, heads=heads, groups=norm_groups, dropout=dropout, context_dim=None, kernels=kernels, eps=norm_eps
    )


class VQGANEncoder(nn.Module):
    """VQGAN encoder (Esser et al. 2021): image (B, C, S, S) → z (B, z_channels, h, h), h = S / 2^(L−1).

    Args:
        in_channels: image channels C.
        image_size: input side S; fixes which levels run at the ``attention_at`` resolutions.
        channels: width of the first level.
        channel_mults: width multiplier per level; every level but the last halves the resolution.
        depth: residual blocks per level (taming's ``num_res_blocks``).
        attention_at: feature-map sides (e.g. ``[16]``) at which self-attention follows each block;
            the middle always has one.
        z_channels: output channels (taming's ``z_channels``; ``double_z`` is a VAE's, not used here).
        heads: attention heads (taming: 1).
        norm_groups: preferred GroupNorm group count (reduced to a divisor of the width; taming: 32).
        dropout: dropout inside residual blocks.
        kernels: ``auto | torch | triton`` — which implementation of GroupNorm/attention runs.
        norm_eps: GroupNorm ε (taming: 1e-6).
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 16,
        channels: int = 32,
        channel_mults: Sequence[int] = (1, 2),
        depth: int = 1,
        attention_at: Sequence[int] = (),
        z_channels: int = 16,
        heads: int = 1,
        norm_groups: int = 32,
        dropout: float = 0.0,
        kernels: str = "auto",
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        sizes = _level_sizes(image_size, len(channel_mults))
        self.in_channels, self.image_size, self.z_channels = in_channels, image_size, z_channels
        self.latent_size = sizes[-1]
        widths = [channels * m for m in channel_mults]
        kw = _stage_kw(heads, norm_groups, dropout, kernels, norm_eps)
        self.conv_in = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.down = nn.ModuleList()
        prev = channels
        for i, (w, size) in enumerate(zip(widths, sizes, strict=True)):
            downsample = i < len(widths) - 1
            in_chs = [prev] + [w] * (depth - 1)
            self.down.append(_EncoderLevel(in_chs, w, downsample, attention=size in attention_at, **kw))
            prev = w
        self.mid = ResidualStage([prev, prev], prev, attention=[True, False], **kw)  # res → attention → res
        self.norm_out = ops.GroupNorm(ops.num_groups_for(prev, norm_groups), prev, eps=norm_eps, backend=kernels)
        self.conv_out = nn.Conv2d(prev, z_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)  # (B, w0, S, S)
        for level in self.down:
            h = level(h)  # resolution halves, except at the last level
        for i in range(len(self.mid.res)):
            h = self.mid.block(i, h, None, None)  # (B, w_{L−1}, h, h)
        return self.conv_out(self.norm_out(h, silu=True))  # (B, z_channels, h, h)


class VQGANDecoder(nn.Module):
    """VQGAN decoder (Esser et al. 2021): z (B, z_channels, h, h) → image (B, C, S, S), no final
    activation. Arguments as `VQGANEncoder`'s (``out_channels``: the image channels); each level has
    ``depth + 1`` residual blocks, as in taming's ``Decoder``."""

    def __init__(
        self,
        out_channels: int = 1,
        image_size: int = 16,
        channels: int = 32,
        channel_mults: Sequence[int] = (1, 2),
        depth: int = 1,
        attention_at: Sequence[int] = (),
        z_channels: int = 16,
        heads: int = 1,
        norm_groups: int = 32,
        dropout: float = 0.0,
        kernels: str = "auto",
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        sizes = _level_sizes(image_size, len(channel_mults))
        self.out_channels, self.image_size, self.z_channels = out_channels, image_size, z_channels
        self.latent_size = sizes[-1]
        widths = [channels * m for m in channel_mults]
        kw = _stage_kw(heads, norm_groups, dropout, kernels, norm_eps)
        prev = widths[-1]
        self.conv_in = nn.Conv2d(z_channels, prev, 3, padding=1)
        self.mid = ResidualStage([prev, prev], prev, attention=[True, False], **kw)  # res → attention → res
        self.up = nn.ModuleList()  # in execution order: the last (lowest-resolution) level first
        for i in reversed(range(len(widths))):
            w = widths[i]
            self.up.append(_DecoderLevel([prev] + [w] * depth, w, i > 0, attention=sizes[i] in attention_at, **kw))
            prev = w
        self.norm_out = ops.GroupNorm(ops.num_groups_for(prev, norm_groups), prev, eps=norm_eps, backend=kernels)
        self.conv_out = nn.Conv2d(prev, out_channels, 3, padding=1)  # registered last: the "last layer" of VQGAN

    def forward(self, z: Tensor) -> Tensor:
        h = self.conv_in(z)  # (B, w_{L−1}, h, h)
        for i in range(len(self.mid.res)):
            h = self.mid.block(i, h, None, None)  # (B, w_{L−1}, h, h)
        for level in self.up:
            h = level(h)  # resolution doubles, except at the first level
        return self.conv_out(self.norm_out(h, silu=True))  # (B, C, S, S)


__all__ = ["VQGANDecoder", "VQGANEncoder"]
