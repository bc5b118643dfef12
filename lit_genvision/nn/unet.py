"""The diffusion U-Net of the lecture: residual blocks, DownBlock / UpBlock with skip connections,
self-attention at chosen resolutions, and a sinusoidal timestep embedding injected into every
residual block (Ho et al. 2020; the Keras DDIM example's layout).

``layout="ddpm"`` builds instead the network of Ho et al. 2020 (Appendix B; the official
``diffusion_tf/models/unet.py``), block for block as diffusers' ``UNet2DModel`` holds it: every level
has ``depth`` residual blocks on the way down and ``depth + 1`` on the way up, the up path takes a skip
from the input conv, every down block and every downsampling conv, the middle is res → attention → res,
the timestep embedding is added before the second GroupNorm, GroupNorm ε is 1e-6, and downsampling pads
like TensorFlow's "SAME". At CIFAR-10 settings this is the paper's 35.7M-parameter U-Net.

The network knows no noise schedule: it maps (x_t, t, cond) to a tensor of x_t's shape, and the
method decides what that tensor means (ε, v or x_0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from lit_genvision.nn import ops
from lit_genvision.nn.embeddings import VECTOR_EMBEDDING_RENAMES, TimestepEmbedding, VectorEmbedding
from lit_genvision.nn.renames import layer_renames, rename_on_load
from lit_genvision.nn.transformer import CrossAttention

#: Cross-attention context: tokens (B, M, context_dim), or (tokens, padding mask (B, M), True = keep).
Context = Tensor | tuple[Tensor, Tensor | None]


class ResidualBlock(nn.Module):
    """GN → SiLU → conv → GN modulated by the timestep (x·(1+scale)+shift) → SiLU → conv, plus a
    skip that is a 1×1 conv when the channel count changes.

    With ``additive_emb`` the timestep enters as in DDPM (Ho et al. 2020): h + W·SiLU(emb) before the
    second GroupNorm, instead of the scale/shift modulation. With ``emb_dim=None`` the block takes no
    embedding (no ``emb_proj``; the second GroupNorm is plain): the VQGAN encoder/decoder's block."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        emb_dim: int | None,
        groups: int = 32,
        dropout: float = 0.0,
        kernels: str = "auto",
        eps: float = 1e-5,
        additive_emb: bool = False,
    ) -> None:
        super().__init__()
        self.additive_emb = additive_emb
        self.norm1 = ops.GroupNorm(ops.num_groups_for(in_ch, groups), in_ch, eps=eps, backend=kernels)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb_proj = (
            None
            if emb_dim is None
            else nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, out_ch if additive_emb else 2 * out_ch))
        )
        self.norm2 = ops.GroupNorm(ops.num_groups_for(out_ch, groups), out_ch, eps=eps, backend=kernels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        h = self.conv1(self.norm1(x, silu=True))  # (B, out, H, W)
        if self.emb_proj is None:
            h = self.norm2(h, silu=True)
        elif emb is None:
            raise ValueError("this ResidualBlock was built with emb_dim; pass emb=(B, emb_dim).")
        elif self.additive_emb:
            h = self.norm2(h + self.emb_proj(emb)[:, :, None, None], silu=True)
        else:
            scale, shift = self.emb_proj(emb).chunk(2, dim=1)  # (B, out) each
            h = self.norm2(h, scale=scale, shift=shift, silu=True)
        h = self.conv2(self.dropout(h))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the H·W positions, and cross-attention to ``context``
    (B, M, context_dim) when the block is built with ``context_dim``: `CrossAttention` (``cross``, output
    projection zero-initialised) on LayerNorm(h), the latent-diffusion form Q = W_Q φ(z_t), K = W_K τ(y),
    V = W_V τ(y)."""

    def __init__(
        self,
        channels: int,
        heads: int = 4,
        groups: int = 32,
        context_dim: int | None = None,
        kernels: str = "auto",
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention channels ({channels}) must be divisible by heads ({heads}).")
        self.heads, self.kernels = heads, kernels
        self.norm = ops.GroupNorm(ops.num_groups_for(channels, groups), channels, eps=eps, backend=kernels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.cross: CrossAttention | None = None
        if context_dim is not None:
            self.cross_norm = nn.LayerNorm(channels)
            self.cross = CrossAttention(channels, context_dim, heads, kernels=kernels)
            nn.init.zeros_(self.cross.proj.weight)
            nn.init.zeros_(self.cross.proj.bias)
            # before `CrossAttention`: cross_q, cross_kv and the output projection ``cross`` were the block's own
            rename_on_load(self, layer_renames({"cross_q": "cross.q", "cross_kv": "cross.kv", "cross": "cross.proj"}))

    def _attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        q, k, v = (rearrange(a, "b n (h d) -> b h n d", h=self.heads) for a in (q, k, v))
        out = ops.attention(q, k, v, backend=self.kernels)  # (B, heads, N, d)
        return rearrange(out, "b h n d -> b n (h d)")

    def forward(self, x: Tensor, context: Context | None = None) -> Tensor:
        """``context``: tokens (B, M, context_dim), or (tokens, padding mask (B, M), True = a real token)."""
        b, c, hgt, wid = x.shape
        tokens = rearrange(self.norm(x), "b c h w -> b (h w) c")
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        out = rearrange(x, "b c h w -> b (h w) c") + self.proj(self._attend(q, k, v))
        if self.cross is not None and context is not None:
            context, context_mask = context if isinstance(context, tuple) else (context, None)
            out = out + self.cross(self.cross_norm(out), context, context_mask)  # (B, H·W, C)
        return rearrange(out, "b (h w) c -> b c h w", h=hgt, w=wid)


class ResidualStage(nn.Module):
    """``len(in_chs)`` `ResidualBlock` s to ``out_ch`` channels, each optionally followed by an `AttentionBlock`,
    at one resolution: the unit of the U-Net's levels and middle and of the VQGAN encoder and decoder, which
    add their own resampling.

    Args:
        in_chs: input channels of each residual block (the first takes the stage's input, the rest ``out_ch``
            or ``out_ch`` plus a skip).
        out_ch: output channels of every block.
        emb_dim: timestep-embedding width (None: blocks without one, as VQGAN's).
        attention: one flag for all blocks, or one per block.
        heads, groups, dropout, context_dim, kernels, eps, additive_emb: as `ResidualBlock` and `AttentionBlock`.
    """

    def __init__(
        self,
        in_chs: Sequence[int],
        out_ch: int,
        emb_dim: int | None,
        attention: bool | Sequence[bool],
        heads: int,
        groups: int,
        dropout: float,
        context_dim: int | None,
        kernels: str,
        eps: float = 1e-5,
        additive_emb: bool = False,
    ) -> None:
        super().__init__()
        flags = [attention] * len(in_chs) if isinstance(attention, bool) else list(attention)
        self.res = nn.ModuleList(
            ResidualBlock(c, out_ch, emb_dim, groups, dropout, kernels, eps, additive_emb) for c in in_chs
        )
        self.attn = nn.ModuleList(
            AttentionBlock(out_ch, heads, groups, context_dim, kernels, eps) if a else nn.Identity() for a in flags
        )

    def block(self, i: int, x: Tensor, emb: Tensor | None, context: Context | None) -> Tensor:
        """Residual block ``i`` [→ its attention]: x (B, in_chs[i], H, W) → (B, out_ch, H, W)."""
        x = self.res[i](x, emb)
        return self.attn[i](x, context) if isinstance(self.attn[i], AttentionBlock) else x


class DownBlock(ResidualStage):
    """``depth`` residual blocks whose outputs are kept as skips, then a stride-2 conv halves H, W."""

    def __init__(self, in_ch: int, out_ch: int, depth: int, **kw) -> None:
        super().__init__([in_ch] + [out_ch] * (depth - 1), out_ch, **kw)
        self.down = nn.Conv2d(out_ch, out_ch, 3, stride=2, padding=1)

    def forward(self, x: Tensor, emb: Tensor, skips: list[Tensor], context: Context | None = None) -> Tensor:
        for i in range(len(self.res)):
            x = self.block(i, x, emb, context)
            skips.append(x)
        return self.down(x)


class UpBlock(ResidualStage):
    """Nearest upsampling + conv doubles H, W, then ``depth`` residual blocks, each taking the
    matching DownBlock skip concatenated on the channel axis."""

    def __init__(self, in_ch: int, out_ch: int, depth: int, **kw) -> None:
        super().__init__([in_ch + out_ch] + [2 * out_ch] * (depth - 1), out_ch, **kw)
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, in_ch, 3, padding=1))

    def forward(self, x: Tensor, emb: Tensor, skips: list[Tensor], context: Context | None = None) -> Tensor:
        x = self.up(x)
        for i in range(len(self.res)):
            x = self.block(i, torch.cat([x, skips.pop()], dim=1), emb, context)
        return x


class DDPMDownLevel(ResidualStage):
    """One level of DDPM's down path (Ho et al. 2020): ``depth`` residual blocks whose outputs are all
    kept as skips, then, except at the lowest level, a stride-2 3×3 conv whose output is a skip too.
    ``same_padding`` pads one zero row/column at the bottom/right as TensorFlow's "SAME" does (the
    official code); otherwise the conv pads one on every side (guided-diffusion)."""

    def __init__(self, in_ch: int, out_ch: int, depth: int, downsample: bool, same_padding: bool, **kw) -> None:
        super().__init__([in_ch] + [out_ch] * (depth - 1), out_ch, **kw)
        self.pad = (0, 1, 0, 1) if same_padding else (1, 1, 1, 1)
        self.down = nn.Conv2d(out_ch, out_ch, 3, stride=2) if downsample else None

    def forward(self, x: Tensor, emb: Tensor, skips: list[Tensor], context: Context | None = None) -> Tensor:
        for i in range(len(self.res)):
            x = self.block(i, x, emb, context)
            skips.append(x)
        if self.down is not None:
            x = self.down(F.pad(x, self.pad))  # resolution halves
            skips.append(x)
        return x


class DDPMUpLevel(ResidualStage):
    """One level of DDPM's up path (Ho et al. 2020): ``depth + 1`` residual blocks, each taking the
    next skip concatenated on the channel axis (``skip_chs``: their widths, in pop order), then, except
    at the top level, nearest upsampling + 3×3 conv."""

    def __init__(self, in_ch: int, out_ch: int, skip_chs: Sequence[int], upsample: bool, **kw) -> None:
        super().__init__(
            [c + s for c, s in zip([in_ch] + [out_ch] * (len(skip_chs) - 1), skip_chs, strict=True)], out_ch, **kw
        )
        up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.up = up if upsample else None

    def forward(self, x: Tensor, emb: Tensor, skips: list[Tensor], context: Context | None = None) -> Tensor:
        for i in range(len(self.res)):
            x = self.block(i, torch.cat([x, skips.pop()], dim=1), emb, context)
        return x if self.up is None else self.up(x)


def timestep_features(t: Tensor, dim: int, flip_sin_to_cos: bool, freq_shift: int, max_period: float = 1e4) -> Tensor:
    """Sinusoidal timestep features as DDPM's ``get_timestep_embedding`` (Ho et al. 2020) and diffusers write
    them: ω_i = max_period^(−i / (dim/2 − freq_shift)), features [sin(t·ω), cos(t·ω)] (``flip_sin_to_cos``:
    [cos, sin], with ``freq_shift=0`` this is guided-diffusion's). t: (B,) → (B, dim)."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / (half - freq_shift)
    args = t[:, None].float() * torch.exp(exponent)[None]  # (B, half)
    sin, cos = torch.sin(args), torch.cos(args)
    emb = torch.cat([cos, sin] if flip_sin_to_cos else [sin, cos], dim=-1)
    return F.pad(emb, (0, dim % 2))


class _LayoutTimestepEmbedding(TimestepEmbedding):
    """`TimestepEmbedding` (same parameters) on a layout's own sinusoidal features."""

    def __init__(self, base_dim: int, emb_dim: int, flip_sin_to_cos: bool, freq_shift: int) -> None:
        super().__init__(base_dim, emb_dim)
        self.flip_sin_to_cos, self.freq_shift = flip_sin_to_cos, freq_shift

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_features(t, self.base_dim, self.flip_sin_to_cos, self.freq_shift))


# What each paper layout fixes beyond the block structure: the sinusoidal features (diffusers' flip_sin_to_cos,
# freq_shift), GroupNorm ε, and whether downsampling pads like TensorFlow's "SAME".
LAYOUTS: dict[str, dict[str, float | bool]] = {
    "ddpm": {"flip_sin_to_cos": False, "freq_shift": 1, "norm_eps": 1e-6, "same_padding": True},
}


def _ddpm_init(net: nn.Module) -> None:
    """The official DDPM initialisation: every conv and linear weight Xavier-uniform (TF's variance scaling,
    fan_avg, uniform), biases zero; the last conv of each residual block, the attention output projection
    and the output conv zero (``init_scale=0``)."""
    zero = [net.conv_out]
    for m in net.modules():
        if isinstance(m, ResidualBlock):
            zero.append(m.conv2)
        elif isinstance(m, AttentionBlock):
            zero += [m.proj] + ([m.cross.proj] if m.cross is not None else [])
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    for m in zero:
        nn.init.zeros_(m.weight)
        nn.init.zeros_(m.bias)


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
        cond_dim: if set, ``cond["vector"]`` (B, cond_dim) conditions the network: emb ← emb + W·v
            (a linear projection added to the timestep embedding), and where the vector is absent
            or flagged dropped by ``cond["vector_null"]`` (B,) a learned null embedding e_∅ is added
            instead (classifier-free guidance's unconditional branch): `VectorEmbedding`, as the DiT's.
        kernels: ``auto | torch | triton`` — which implementation of GroupNorm/attention runs.
        layout: ``lecture`` (the default, above) or ``ddpm``: Ho et al. 2020's network, as diffusers'
            ``UNet2DModel`` builds it. Every level (the last too) has ``depth`` blocks down and
            ``depth + 1`` up, the middle is res → attention → res at the last level's width, and the
            official initialisation is used; with ``channels=128, channel_mults=[1, 2, 2, 2],
            attention_at=[16], heads=1`` at 32×32 it is the paper's CIFAR-10 network (35,746,307
            parameters). ``experiments/export.py`` writes it as a diffusers folder.
        norm_eps: GroupNorm ε; ``None`` takes the layout's (1e-5 lecture, 1e-6 DDPM).
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
        cond_dim: int | None = None,
        kernels: str = "auto",
        layout: Literal["lecture", "ddpm"] = "lecture",
        norm_eps: float | None = None,
    ) -> None:
        super().__init__()
        if layout not in ("lecture", *LAYOUTS):
            raise ValueError(f"layout must be one of lecture, {', '.join(LAYOUTS)}; got {layout!r}.")
        levels = len(channel_mults)
        if levels < 2:
            raise ValueError("channel_mults needs at least two levels (one DownBlock and the middle).")
        if image_size % 2 ** (levels - 1):
            raise ValueError(f"image_size {image_size} must be divisible by 2^{levels - 1} for {levels} levels.")
        self.in_channels, self.image_size, self.layout = in_channels, image_size, layout
        self.out_channels, self.context_dim = out_channels or in_channels, context_dim
        widths = [channels * m for m in channel_mults]
        emb_dim = 4 * channels
        spec = LAYOUTS.get(layout, {"norm_eps": 1e-5})
        self.norm_eps = float(spec["norm_eps"] if norm_eps is None else norm_eps)
        kw = dict(
            emb_dim=emb_dim, heads=heads, groups=norm_groups, dropout=dropout, context_dim=context_dim, kernels=kernels
        )
        kw.update(eps=self.norm_eps)
        if layout == "lecture":
            self.time_embed = TimestepEmbedding(channels, emb_dim)
        else:
            kw.update(additive_emb=True)
            self.time_embed = _LayoutTimestepEmbedding(
                channels, emb_dim, bool(spec["flip_sin_to_cos"]), int(spec["freq_shift"])
            )
        self.num_classes = num_classes
        self.label_embed = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        self.cond_dim = cond_dim
        if cond_dim:  # only then: the default network keeps today's parameters and names
            self.vector_embed = VectorEmbedding(cond_dim, emb_dim)
            rename_on_load(self, VECTOR_EMBEDDING_RENAMES)
        self.conv_in = nn.Conv2d(in_channels, widths[0], 3, padding=1)

        res = [image_size // 2**i for i in range(levels)]
        self.down = nn.ModuleList()
        if layout != "lecture":
            self._build_paper_layout(widths, res, depth, attention_at, bool(spec["same_padding"]), kw)
            self.norm_out = ops.GroupNorm(
                ops.num_groups_for(widths[0], norm_groups), widths[0], eps=self.norm_eps, backend=kernels
            )
            self.conv_out = nn.Conv2d(widths[0], out_channels or in_channels, 3, padding=1)
            _ddpm_init(self)
            return
        prev = widths[0]
        for i in range(levels - 1):
            self.down.append(DownBlock(prev, widths[i], depth, attention=res[i] in attention_at, **kw))
            prev = widths[i]
        self.mid = ResidualStage([prev] + [widths[-1]] * depth, widths[-1], attention=True, **kw)
        self.up = nn.ModuleList()
        prev = widths[-1]
        for i in reversed(range(levels - 1)):
            self.up.append(UpBlock(prev, widths[i], depth, attention=res[i] in attention_at, **kw))
            prev = widths[i]
        self.norm_out = ops.GroupNorm(ops.num_groups_for(prev, norm_groups), prev, eps=self.norm_eps, backend=kernels)
        self.conv_out = nn.Conv2d(prev, out_channels or in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _build_paper_layout(
        self,
        widths: list[int],
        res: list[int],
        depth: int,
        attention_at: Sequence[int],
        same_padding: bool,
        kw: dict,
    ) -> None:
        """DDPM's levels (``diffusion_tf/models/unet.py``; diffusers' DownBlock2D/AttnDownBlock2D,
        UNetMidBlock2D, UpBlock2D/AttnUpBlock2D): the skips are the input conv's output, every down
        block's and every downsampling conv's, popped in reverse by the ``depth + 1`` up blocks."""
        levels = len(widths)
        skip_chs, prev = [widths[0]], widths[0]
        for i in range(levels):
            down = i < levels - 1
            self.down.append(
                DDPMDownLevel(prev, widths[i], depth, down, same_padding, attention=res[i] in attention_at, **kw)
            )
            prev = widths[i]
            skip_chs += [widths[i]] * (depth + down)
        self.mid = ResidualStage([prev, prev], prev, attention=[True, False], **kw)  # res → attention → res
        self.up = nn.ModuleList()
        for i in reversed(range(levels)):
            pops = [skip_chs.pop() for _ in range(depth + 1)]
            self.up.append(DDPMUpLevel(prev, widths[i], pops, i > 0, attention=res[i] in attention_at, **kw))
            prev = widths[i]

    def forward(self, x: Tensor, t: Tensor, cond: dict[str, Tensor] | None = None) -> Tensor:
        context = (cond or {}).get("context")
        if context is not None and (cond or {}).get("context_mask") is not None:
            context = (context, cond["context_mask"])  # padded text tokens are not attended to
        emb = self.time_embed(t)  # (B, emb_dim)
        if self.label_embed is not None:
            labels = (cond or {}).get("label")
            if labels is None:  # no label given: the null label, i.e. the unconditional model
                labels = torch.full((x.shape[0],), self.num_classes, device=x.device, dtype=torch.long)
            emb = emb + self.label_embed(labels)
        if self.cond_dim:
            emb = emb + self.vector_embed(cond or {}, x.shape[0])
        h = self.conv_in(x)  # (B, w0, H, W)
        skips: list[Tensor] = [] if self.layout == "lecture" else [h]  # DDPM's up path also takes conv_in's output
        for block in self.down:
            h = block(h, emb, skips, context)  # resolution halves
        for i in range(len(self.mid.res)):
            h = self.mid.block(i, h, emb, context)  # lowest resolution
        for block in self.up:
            h = block(h, emb, skips, context)  # resolution doubles, skips consumed
        return self.conv_out(self.norm_out(h, silu=True))
