"""One pre-norm transformer block and a KV cache.

DiT, the ViT towers, the text tower, the token prior and the video DiT are stacks of
`TransformerBlock`. The block (Vaswani et al. 2017, pre-LN as in GPT-2 / ViT):

    x ← x + g₁ ⊙ SelfAttn(mod(LN(x), β₁, γ₁))              (1)
    x ← x + g₂ ⊙ CrossAttn(mod(LN(x), β₂, γ₂), context)    (2)  when built with ``context_dim``
    x ← x + g₃ ⊙ MLP(mod(LN(x), β₃, γ₃))                    (3)

with mod(h, β, γ) = h·(1 + γ) + β. Without a conditioning vector β = γ = 0 and g = 1 and the
LayerNorms carry their own affine parameters. With ``cond_dim`` the (β, γ, g) come from
adaLN-Zero (DiT, Peebles & Xie 2023, §3.2): a zero-initialised linear map of SiLU(c), so every
gate g is 0 at initialisation and the block is the identity.

Attention goes through `lit_genvision.nn.ops.attention` (its key-padding convention: True = keep).
Positions live in `lit_genvision.nn.patches`: fixed sin-cos tables are added to the tokens by the
network on top; rotary embeddings (RoPE, Su et al. 2021) reach the block as ``rope`` = (cos, sin) and
rotate q and k. `KVCache` keeps past keys and values so autoregressive decoding costs one token's
work per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from lit_genvision.nn import ops
from lit_genvision.nn.patches import RotaryEmbedding, apply_rotary
from lit_genvision.nn.renames import layer_renames, rename_on_load

# ----------------------------------------------------------------------------------------------
# KV cache
# ----------------------------------------------------------------------------------------------


class KVCache:
    """Past keys and values of one block's self-attention, for autoregressive decoding.

    Keys are stored after RoPE, so a cached key keeps the rotation of its own absolute position;
    a new token's position is ``length`` (pass `RotaryEmbedding.at(n, offset=cache.length)`).
    The key-padding mask (True = keep) grows with them; a step given no mask counts as all kept.
    """

    def __init__(self) -> None:
        self.k: Tensor | None = None  # (B, H, L, d)
        self.v: Tensor | None = None  # (B, H, L, d)
        self.mask: Tensor | None = None  # (B, L) True = keep, or None when nothing was padded

    @property
    def length(self) -> int:
        """L, the number of positions stored so far (the absolute position of the next token)."""
        return 0 if self.k is None else self.k.shape[-2]

    def reset(self) -> None:
        """Forget everything (a new sequence)."""
        self.k = self.v = self.mask = None

    def reorder(self, index: Tensor) -> None:
        """Keep the rows ``index`` (B',) of every stored tensor (beam search: each beam continues its parent)."""
        if self.k is not None:
            self.k, self.v = self.k[index], self.v[index]
        if self.mask is not None:
            self.mask = self.mask[index]

    def update(self, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Append k, v (B, H, N, d) and their mask (B, N); return all keys, values and mask so far."""
        past = self.length
        if mask is not None or self.mask is not None:
            b, n = k.shape[0], k.shape[-2]
            old = self.mask if self.mask is not None else torch.ones(b, past, dtype=torch.bool, device=k.device)
            new = mask.to(torch.bool) if mask is not None else torch.ones(b, n, dtype=torch.bool, device=k.device)
            self.mask = torch.cat([old, new], dim=1)  # (B, L + N)
        self.k = k if self.k is None else torch.cat([self.k, k], dim=-2)  # (B, H, L + N, d)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=-2)  # (B, H, L + N, d)
        return self.k, self.v, self.mask


# ----------------------------------------------------------------------------------------------
# The block
# ----------------------------------------------------------------------------------------------


class CrossAttention(nn.Module):
    """Multi-head cross-attention of tokens h (B, N, D) to context tokens τ(y) (B, M, context_dim) (latent
    diffusion, Rombach et al. 2022, §3.3), the one used by the transformer block and the U-Net:

        Q = W_Q h,  K = W_K τ(y),  V = W_V τ(y),  CrossAttn(h, y) = W_O · softmax(Q Kᵀ/√d + m) V

    per head of width d = D / heads, with m = −∞ at padded context tokens (``context_mask`` (B, M), True =
    keep). W_K and W_V are one linear map ``kv`` of width 2·D. The caller normalises h and adds the residual.

    Args:
        dim: token width D.
        context_dim: width of the context tokens.
        heads: attention heads; D must be divisible by them.
        qk_norm: LayerNorm on each head's queries and keys (ViT-22B; see `TransformerBlock`).
        kernels: ``auto | torch | triton``, handed to `ops.attention`.
    """

    def __init__(self, dim: int, context_dim: int, heads: int, qk_norm: bool = False, kernels: str = "auto") -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim ({dim}) must be divisible by heads ({heads}).")
        self.heads, self.head_dim, self.kernels = heads, dim // heads, kernels
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()

    def _heads(self, t: Tensor) -> Tensor:
        """(B, N, D) → (B, H, N, d)."""
        return t.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def forward(self, h: Tensor, context: Tensor, context_mask: Tensor | None = None) -> Tensor:
        """h (B, N, D), context (B, M, context_dim), context_mask (B, M) True = keep → (B, N, D)."""
        q = self.q_norm(self._heads(self.q(h)))  # (B, H, N, d)
        k, v = (self._heads(t) for t in self.kv(context).chunk(2, dim=-1))  # (B, H, M, d) each
        k = self.k_norm(k)  # (B, H, M, d)
        out = ops.attention(q, k, v, key_padding_mask=context_mask, backend=self.kernels)  # (B, H, N, d)
        return self.proj(out.transpose(1, 2).flatten(2))  # (B, N, D)


class SwiGLU(nn.Module):
    """The gated MLP of PaLM / Llama / LightningDiT (Shazeer 2020): W₂ · (SiLU(W_a h) ⊙ W_b h).

    ``hidden`` is the width of each of W_a, W_b; 2/3 of a GELU MLP's width gives the same parameter count.
    W_a and W_b are one linear map ``fc1`` of width 2·hidden.
    """

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, 2 * hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, h: Tensor, mix: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """h (B, N, D) → (B, N, D); ``mix`` (`LocalMixing` on the token grid) acts on W_a h and W_b h."""
        u = self.fc1(h)  # (B, N, 2·hidden)
        a, b = (u if mix is None else mix(u)).chunk(2, dim=-1)  # (B, N, hidden) each
        return self.fc2(self.drop(nn.functional.silu(a) * b))  # (B, N, D)


class MLP(nn.Sequential):
    """ViT / DiT's MLP W₂ · act(W₁ h): Linear, GELU (tanh form, DiT's; or the exact erf form), Dropout, Linear.

    A `nn.Sequential`, so its state-dict keys (``0.weight``, ``3.weight``) are the ones every checkpoint has.
    """

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0, approximate: str = "tanh") -> None:
        super().__init__(
            nn.Linear(dim, hidden), nn.GELU(approximate=approximate), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )

    def forward(self, h: Tensor, mix: Callable[[Tensor], Tensor] | None = None) -> Tensor:  # type: ignore[override]
        """h (B, N, D) → (B, N, D); ``mix`` (`LocalMixing` on the token grid) acts on W₁ h."""
        u = self[0](h)  # (B, N, hidden)
        if mix is not None:
            u = mix(u)
        return self[3](self[2](self[1](u)))  # (B, N, D)


class LocalMixing(nn.Module):
    """Local mixing in the MLP (SegFormer's Mix-FFN, Xie et al. 2021; LocalViT, Li et al. 2021):
    u ← u + DWConv_3(u), a depthwise 3×3 (2-D grid) or 3×3×3 (3-D grid) convolution of the MLP's hidden
    tokens laid out on their grid, zero-initialised so the block starts as the plain one.
    """

    def __init__(self, channels: int, dims: int = 2) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"local mixing works on a 2-D or 3-D token grid, got {dims} dimensions.")
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.conv = conv(channels, channels, 3, padding=1, groups=channels)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, u: Tensor, grid: Sequence[int]) -> Tensor:
        """u (B, N, C) with N = ∏ grid, tokens row-major over ``grid`` → (B, N, C)."""
        b, n, c = u.shape
        if len(grid) != self.conv.weight.ndim - 2 or n != math.prod(grid):
            raise ValueError(f"local mixing needs a token grid of {self.conv.weight.ndim - 2} sides multiplying "
                             f"to the {n} tokens, got {tuple(grid)}.")  # fmt: skip
        img = u.transpose(1, 2).reshape(b, c, *grid)  # (B, C, h, w) or (B, C, f, h, w)
        return u + self.conv(img).flatten(2).transpose(1, 2)  # (B, N, C)


NORMS = ("layer", "rms")
MLPS = ("gelu", "gelu_exact", "swiglu")


def make_norm(kind: str, dim: int, affine: bool = True) -> nn.Module:
    """LayerNorm (``layer``) or RMSNorm (``rms``, Zhang & Sennrich 2019: x / √(mean x² + ε)·w), ε = 1e-6."""
    if kind == "layer":
        return nn.LayerNorm(dim, elementwise_affine=affine, eps=1e-6)
    if kind == "rms":
        return nn.RMSNorm(dim, elementwise_affine=affine, eps=1e-6)
    raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {kind!r}.")


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """mod(x, β, γ) = x·(1 + γ) + β with x (B, N, D) and β, γ (B, D) (DiT's ``modulate``)."""
    return x * (1 + scale[:, None]) + shift[:, None]


class TransformerBlock(nn.Module):
    """Pre-norm block: self-attention, optional cross-attention, MLP; optional adaLN-Zero (eqs. 1–3).

    Args:
        dim: token width D.
        heads: attention heads; D must be divisible by them.
        mlp_ratio: MLP hidden width / D (4 in ViT, GPT-2 and DiT).
        dropout: dropout on each branch's output and inside the MLP (attention weights are not dropped:
            the fused kernel has no dropout).
        context_dim: width of a context (B, M, context_dim) to cross-attend to (text tokens); None: none.
        cond_dim: width of a conditioning vector c (B, cond_dim) driving adaLN-Zero; None: plain LayerNorm.
        causal: token i attends to tokens ≤ i only (autoregressive priors, the text tower).
        qk_norm: a norm (of kind ``norm``) on each head's queries and keys before the dot product (ViT-22B,
            Dehghani et al. 2023; SD3), which keeps attention logits bounded in long training.
        kernels: ``auto | torch | triton``, handed to `ops.attention`.
        norm: ``layer`` (LayerNorm, GPT-2 / ViT / DiT) or ``rms`` (RMSNorm, LightningDiT).
        mlp: ``gelu`` (Linear–GELU–Linear, GELU's tanh form as DiT), ``gelu_exact`` (the erf form: the same
            function within 1e-3, 2× faster on a CPU) or ``swiglu`` (`SwiGLU` at 2/3 the hidden width: the same
            parameter count, LightningDiT).
        local_mixing: 0 (off), or 2 / 3: `LocalMixing` of the MLP's hidden tokens on their 2-D / 3-D grid
            (pass ``grid`` to `forward`).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        context_dim: int | None = None,
        cond_dim: int | None = None,
        causal: bool = False,
        qk_norm: bool = False,
        kernels: str = "auto",
        norm: str = "layer",
        mlp: str = "gelu",
        local_mixing: int = 0,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer dim ({dim}) must be divisible by heads ({heads}).")
        ops.dispatch.check_backend(kernels)  # fail at build time, not at the first forward
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.causal, self.kernels = causal, kernels
        affine = cond_dim is None  # with adaLN the modulation supplies the affine part (DiT)

        if mlp not in MLPS:
            raise ValueError(f"mlp must be one of {', '.join(MLPS)}, got {mlp!r}.")
        self.norm1 = make_norm(norm, dim, affine)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.q_norm = make_norm(norm, self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = make_norm(norm, self.head_dim) if qk_norm else nn.Identity()

        self.has_cross = context_dim is not None
        if context_dim is not None:
            self.norm_cross = make_norm(norm, dim, affine)
            self.cross = CrossAttention(dim, context_dim, heads, qk_norm, kernels)
            old = ("cross_q", "cross_kv", "cross_proj", "cross_q_norm", "cross_k_norm")  # before `CrossAttention`
            rename_on_load(self, layer_renames({o: "cross." + o.removeprefix("cross_") for o in old}))

        hidden = int(dim * mlp_ratio)
        self.norm2 = make_norm(norm, dim, affine)
        self.mlp: nn.Module
        if mlp == "swiglu":
            self.mlp = SwiGLU(dim, int(2 * hidden / 3), dropout)
        else:
            self.mlp = MLP(dim, hidden, dropout, approximate="tanh" if mlp == "gelu" else "none")
        width = self.mlp.fc1.out_features if mlp == "swiglu" else hidden  # the hidden tokens the mixing sees
        self.mix = LocalMixing(width, local_mixing) if local_mixing else None
        self.drop = nn.Dropout(dropout)

        self.adaLN: nn.Sequential | None = None
        if cond_dim is not None:
            branches = 3 if self.has_cross else 2  # (shift, scale, gate) per branch
            self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 3 * branches * dim))
            nn.init.zeros_(self.adaLN[1].weight)  # adaLN-Zero: every gate is 0, the block is the identity
            nn.init.zeros_(self.adaLN[1].bias)

    def _heads(self, t: Tensor) -> Tensor:
        """(B, N, D) → (B, H, N, d)."""
        return t.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def _self_attention(
        self, h: Tensor, mask: Tensor | None, rope: tuple[Tensor, Tensor] | None, cache: KVCache | None
    ) -> Tensor:
        """Multi-head self-attention of normalised tokens h (B, N, D) → (B, N, D)."""
        q, k, v = (self._heads(t) for t in self.qkv(h).chunk(3, dim=-1))  # (B, H, N, d) each
        q, k = self.q_norm(q), self.k_norm(k)  # (B, H, N, d)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)  # (B, H, N, d) rotated by absolute position
        past = 0
        if cache is not None:
            past = cache.length
            k, v, mask = cache.update(k, v, mask)  # (B, H, L + N, d), mask (B, L + N)
        n = q.shape[-2]
        causal = self.causal and n > 1  # one new query may see every cached key
        if causal and past:  # ops' causal mask is aligned at the start: pad the queries to L + N rows
            q = torch.cat([q.new_zeros(*q.shape[:2], past, q.shape[-1]), q], dim=-2)  # (B, H, L + N, d)
        out = ops.attention(q, k, v, causal=causal, key_padding_mask=mask, backend=self.kernels)  # (B, H, ·, d)
        out = out[..., out.shape[-2] - n :, :]  # (B, H, N, d) the new queries' rows
        return self.proj(out.transpose(1, 2).flatten(2))  # (B, N, D)

    def forward(
        self,
        x: Tensor,
        *,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        mask: Tensor | None = None,
        cond: Tensor | None = None,
        rope: tuple[Tensor, Tensor] | None = None,
        cache: KVCache | None = None,
        grid: Sequence[int] | None = None,
    ) -> Tensor:
        """x (B, N, D) → (B, N, D).

        Args:
            context: (B, M, context_dim) tokens to cross-attend to; ignored by a block without cross-attention.
            context_mask: (B, M) True = keep for the context.
            mask: (B, N) True = keep: key padding of x (with a cache, of the N new tokens only).
            cond: (B, cond_dim) conditioning vector for adaLN-Zero (required when built with ``cond_dim``).
            rope: (cos, sin) of x's absolute positions, (N, head_dim) or (B, N, head_dim), from
                `RotaryEmbedding`; with a cache, positions start at ``cache.length``.
            cache: this block's `KVCache`; x holds only the new tokens.
            grid: the token grid (h, w) or (f, h, w), row-major; required by a block with local mixing.
        """
        b, n, d = x.shape
        if self.adaLN is not None:
            if cond is None:
                raise ValueError("this TransformerBlock was built with cond_dim; pass cond=(B, cond_dim).")
            mods = self.adaLN(cond).chunk(9 if self.has_cross else 6, dim=-1)  # each (B, D)
        else:
            zero, one = x.new_zeros(b, d), x.new_ones(b, d)
            mods = (zero, zero, one) * (3 if self.has_cross else 2)  # β = γ = 0, g = 1: plain pre-LN
        shift1, scale1, gate1 = mods[0:3]  # (B, D) each
        shift2, scale2, gate2 = mods[-3:]  # (B, D) each; the MLP's

        h = modulate(self.norm1(x), shift1, scale1)  # (B, N, D)
        x = x + gate1[:, None] * self.drop(self._self_attention(h, mask, rope, cache))  # (B, N, D)   (1)
        if self.has_cross and context is not None:
            shift_c, scale_c, gate_c = mods[3:6]  # (B, D) each
            h = modulate(self.norm_cross(x), shift_c, scale_c)  # (B, N, D)
            x = x + gate_c[:, None] * self.drop(self.cross(h, context, context_mask))  # (B, N, D) (2)
        h = modulate(self.norm2(x), shift2, scale2)  # (B, N, D)
        mix = None
        if self.mix is not None:
            if grid is None:
                raise ValueError("this TransformerBlock mixes tokens locally; pass grid=(h, w) of its tokens.")
            mix = partial(self.mix, grid=grid)
        return x + gate2[:, None] * self.drop(self.mlp(h, mix))  # (B, N, D)   (3)


class Transformer(nn.Module):
    """``depth`` `TransformerBlock` s followed by a LayerNorm; RoPE (if ``rope``) shared by the blocks.

    Tokens in, tokens out: embedding, positions of other kinds and the output head belong to the
    network built on top (DiT, ViT, the token prior, ...).
    """

    def __init__(
        self,
        depth: int,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        context_dim: int | None = None,
        cond_dim: int | None = None,
        causal: bool = False,
        qk_norm: bool = False,
        rope: bool = False,
        kernels: str = "auto",
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, heads, mlp_ratio, dropout, context_dim, cond_dim, causal, qk_norm, kernels)
            for _ in range(depth)
        )
        self.rotary = RotaryEmbedding(dim // heads) if rope else None
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def new_cache(self) -> list[KVCache]:
        """One empty `KVCache` per block, for `forward(..., cache=...)`."""
        return [KVCache() for _ in self.blocks]

    def forward(
        self,
        x: Tensor,
        *,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        mask: Tensor | None = None,
        cond: Tensor | None = None,
        cache: list[KVCache] | None = None,
    ) -> Tensor:
        """x (B, N, D) → (B, N, D); the keyword arguments are `TransformerBlock.forward`'s, ``cache``
        one `KVCache` per block (`new_cache`)."""
        if cache is not None and len(cache) != len(self.blocks):
            raise ValueError(f"cache has {len(cache)} entries for {len(self.blocks)} blocks; use new_cache().")
        rope = None
        if self.rotary is not None:
            offset = cache[0].length if cache is not None else 0  # absolute positions continue the cache
            rope = self.rotary.at(x.shape[1], offset, device=x.device)  # (N, d) cos, sin
        for i, block in enumerate(self.blocks):
            x = block(
                x, context=context, context_mask=context_mask, mask=mask, cond=cond, rope=rope,
                cache=cache[i] if cache is not None else None,
            )  # (B, N, D)  # fmt: skip
        return self.norm(x)  # (B, N, D)


__all__ = [
    "MLPS",
    "NORMS",
    "CrossAttention",
    "KVCache",
    "LocalMixing",
    "MLP",
    "SwiGLU",
    "Transformer",
    "TransformerBlock",
    "make_norm",
    "modulate",
]
