"""The diffusion U-Net of the lecture: residual blocks, DownBlock / UpBlock with skip connections,
self-attention at chosen resolutions, and a sinusoidal timestep embedding injected into every
residual block (Ho et al. 2020; the Keras DDIM example's layout).

The network knows no noise schedule: it maps (x_t, t, cond) to a tensor of x_t's shape, and the
method decides what that tensor means (ε, v or x_0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor, nn

from lit_genvision.nn import ops
from lit_genvision.nn.embeddings import TimestepEmbedding


class ResidualBlock(nn.Module):
    """GN → SiLU → conv → GN modulated by the timestep (x·(1+scale)+shift) → SiLU → conv, plus a
    skip that is a 1×1 conv when the channel count changes."""

    def __init__(
        self, in_ch: int, out_ch: int, emb_dim: int, groups: int = 32, dropout: float = 0.0, kernels: str = "auto"
    ) -> None:
        super().__init__()
        self.norm1 = ops.GroupNorm(ops.num_groups_for(in_ch, groups), in_ch, backend=kernels)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb_proj = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * out_ch))
        self.norm2 = ops.GroupNorm(ops.num_groups_for(out_ch, groups), out_ch, backend=kernels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(self.norm1(x, silu=True))  # (B, out, H, W)
        scale, shift = self.emb_proj(emb).chunk(2, dim=1)  # (B, out) each
        h = self.norm2(h, scale=scale, shift=shift, silu=True)
        h = self.conv2(self.dropout(h))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the H·W positions, and cross-attention to ``context``
    (B, M, context_dim) when the block is built with ``context_dim`` — the latent-diffusion form
    Q = W_Q φ(z_t), K = W_K τ(y), V = W_V τ(y)."""

    def __init__(
        self, channels: int, heads: int = 4, groups: int = 32, context_dim: int | None = None, kernels: str = "auto"
    ) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention channels ({channels}) must be divisible by heads ({heads}).")
        self.heads, self.kernels = heads, kernels
        self.norm = ops.GroupNorm(ops.num_groups_for(channels, groups), channels, backend=kernels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.cross = None
        if context_dim is not None:
            self.cross_norm = nn.LayerNorm(channels)
            self.cross_q = nn.Linear(channels, channels)
            self.cross_kv = nn.Linear(context_dim, 2 * channels)
            self.cross = nn.Linear(channels, channels)
            nn.init.zeros_(self.cross.weight)
            nn.init.zeros_(self.cross.bias)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        q, k, v = (rearrange(a, "b n (h d) -> b h n d", h=self.heads) for a in (q, k, v))
        out = ops.attention(q, k, v, backend=self.kernels)  # (B, heads, N, d)
        return rearrange(out, "b h n d -> b n (h d)")

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        b, c, hgt, wid = x.shape
        tokens = rearrange(self.norm(x), "b c h w -> b (h w) c")
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        out = rearrange(x, "b c h w -> b (h w) c") + self.proj(self._attend(q, k, v))
        if self.cross is not None and context is not None:
            ck, cv = self.cross_kv(context).chunk(2, dim=-1)  # (B, M, C) each
            out = out + self.cross(self._attend(self.cross_q(self.cross_norm(out)), ck, cv))
        return rearrange(out, "b (h w) c -> b c h w", h=hgt, w=wid)


class _Stage(nn.Module):
    """Residual blocks, each optionally followed by attention, at one resolution."""

    def __init__(
        self,
        in_chs: Sequence[int],
        out_ch: int,
        emb_dim: int,
        attention: bool,
        heads: int,
        groups: int,
        dropout: float,
        context_dim: int | None,
        kernels: str,
    ) -> None:
        super().__init__()
        self.res = nn.ModuleList(ResidualBlock(c, out_ch, emb_dim, groups, dropout, kernels) for c in in_chs)
        self.attn = nn.ModuleList(
            AttentionBlock(out_ch, heads, groups, context_dim, kernels) if attention else nn.Identity() for _ in in_chs
        )

    def block(self, i: int, x: Tensor, emb: Tensor, context: Tensor | None) -> Tensor:
        x = self.res[i](x, emb)
        return self.attn[i](x, context) if isinstance(self.attn[i], AttentionBlock) else x


class DownBlock(_Stage):
    """``depth`` residual blocks whose outputs are kept as skips, then a stride-2 conv halves H, W."""

    def __init__(self, in_ch: int, out_ch: int, depth: int, **kw) -> None:
        super().__init__([in_ch] + [out_ch] * (depth - 1), out_ch, **kw)
        self.down = nn.Conv2d(out_ch, out_ch, 3, stride=2, padding=1)

    def forward(self, x: Tensor, emb: Tensor, skips: list[Tensor], context: Tensor | None = None) -> Tensor:
        for i in range(len(self.res)):
            x = self.block(i, x, emb, context)
            skips.append(x)
        return self.down(x)


class UpBlock(_Stage):
    """Nearest upsampling + conv doubles H, W, then ``depth`` residual blocks, each taking the
    matching DownBlock skip concatenated on the channel axis."""

    def __init__(self, in_ch: int, out_ch: int, depth: int, **kw) -> None:
        super().__init__([in_ch + out_ch] + [2 * out_ch] * (depth - 1), out_ch, **kw)
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, in_ch, 3, padding=1))

    def forward(self, x: Tensor, emb: Tensor, skips: list[Tensor], context: Tensor | None = None) -> Tensor:
        x = self.up(x)
        for i in range(len(self.res)):
            x = self.block(i, torch.cat([x, skips.pop()], dim=1), emb, context)
        return x


class UNet(nn.Module):
    """U-Net ε/v/x₀ network: (B, C, H, W), t (B,) → (B, C_out, H, W).

    Args:
        in_channels: image channels.
        out_channels: output channels (defaults to ``in_channels``).
        image_size: input height/width; fixes which levels run at the ``attention_at`` resolutions.
        channels: width of the first level.
        channel_mults: width multiplier per level; every level but the last halves the resolution,
            the last is the middle of the U at the lowest resolution.
        depth: residual blocks per level.
        attention_at: feature-map sizes (e.g. ``[8]``) at which self-attention follows each block.
        heads: attention heads.
        norm_groups: preferred GroupNorm group count (reduced to a divisor of the width).
        dropout: dropout inside residual blocks.
        context_dim: if set, attention blocks also cross-attend to ``cond["context"]`` (B, M, context_dim).
        num_classes: if set, ``cond["label"]`` (B,) is embedded and added to the timestep embedding;
            label ``num_classes`` is the null label of classifier-free guidance.
        kernels: ``auto | torch | triton`` — which implementation of GroupNorm/attention runs.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int | None = None,
        image_size: int = 16,
        channels: int = 32,
        channel_mults: Sequence[int] = (1, 2, 2),
        depth: int = 2,
        attention_at: Sequence[int] = (8,),
        heads: int = 4,
        norm_groups: int = 32,
        dropout: float = 0.0,
        context_dim: int | None = None,
        num_classes: int | None = None,
        kernels: str = "auto",
    ) -> None:
        super().__init__()
        levels = len(channel_mults)
        if levels < 2:
            raise ValueError("channel_mults needs at least two levels (one DownBlock and the middle).")
        if image_size % 2 ** (levels - 1):
            raise ValueError(f"image_size {image_size} must be divisible by 2^{levels - 1} for {levels} levels.")
        self.in_channels, self.image_size = in_channels, image_size
        widths = [channels * m for m in channel_mults]
        emb_dim = 4 * channels
        kw = dict(
            emb_dim=emb_dim, heads=heads, groups=norm_groups, dropout=dropout, context_dim=context_dim, kernels=kernels
        )
        self.time_embed = TimestepEmbedding(channels, emb_dim)
        self.num_classes = num_classes
        self.label_embed = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        self.conv_in = nn.Conv2d(in_channels, widths[0], 3, padding=1)

        res = [image_size // 2**i for i in range(levels)]
        self.down = nn.ModuleList()
        prev = widths[0]
        for i in range(levels - 1):
            self.down.append(DownBlock(prev, widths[i], depth, attention=res[i] in attention_at, **kw))
            prev = widths[i]
        self.mid = _Stage([prev] + [widths[-1]] * depth, widths[-1], attention=True, **kw)
        self.up = nn.ModuleList()
        prev = widths[-1]
        for i in reversed(range(levels - 1)):
            self.up.append(UpBlock(prev, widths[i], depth, attention=res[i] in attention_at, **kw))
            prev = widths[i]
        self.norm_out = ops.GroupNorm(ops.num_groups_for(prev, norm_groups), prev, backend=kernels)
        self.conv_out = nn.Conv2d(prev, out_channels or in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: Tensor, t: Tensor, cond: dict[str, Tensor] | None = None) -> Tensor:
        context = (cond or {}).get("context")
        emb = self.time_embed(t)  # (B, emb_dim)
        if self.label_embed is not None:
            labels = (cond or {}).get("label")
            if labels is None:  # no label given: the null label, i.e. the unconditional model
                labels = torch.full((x.shape[0],), self.num_classes, device=x.device, dtype=torch.long)
            emb = emb + self.label_embed(labels)
        h = self.conv_in(x)  # (B, w0, H, W)
        skips: list[Tensor] = []
        for block in self.down:
            h = block(h, emb, skips, context)  # resolution halves
        for i in range(len(self.mid.res)):
            h = self.mid.block(i, h, emb, context)  # lowest resolution
        for block in self.up:
            h = block(h, emb, skips, context)  # resolution doubles, skips consumed
        return self.conv_out(self.norm_out(h, silu=True))
