"""DiT: the diffusion transformer (Peebles & Xie 2023, "Scalable Diffusion Models with Transformers").

A drop-in replacement for the U-Net: ``forward(x, t, cond)`` with the same conditioning keys and the
same attributes (``in_channels``, ``image_size``, ``num_classes``, ``cond_dim``, ``out_channels``), so
a config swaps ``class_path: lit_genvision.nn.UNet`` for ``lit_genvision.nn.dit.DiT`` and nothing else.

    tokens  z₀ = W_e · patchify_p(x) + pe                     (B, N, D), N = (S/p)², pe fixed sin-cos (§3.1)
    cond    c  = MLP(sincos(t)) [+ E_y[y]] [+ W_v·v]          (B, D); y = K is the null class of CFG (§3.2)
    blocks  z_l = Block_l(z_{l−1}, c [, context])             adaLN-Zero, l = 1 … depth (§3.2)
    decoder ε̂  = unpatchify(W_o · mod(LN(z_L), β(c), γ(c)))   (B, C_out, S, S) (§3.1 "Transformer decoder")

Options for small budgets, all off by default so ``DiT.named`` is the paper's network (issue 29
measured them on the digits, ``benchmarks/README.md``, "Transformer backbone on digits"):

    long_skips   U-ViT (Bao et al. 2023): block i's output, i < k = ⌊(depth − 1)/2⌋, is concatenated to
                 the input of block depth − 1 − i and projected back, z ← W_s·[z, z_i] (W_s: 2D → D)
    pos_embed    ``rope``: 2-D axial RoPE rotates q and k in every block instead of adding sin-cos tables
    qk_norm      a norm on each head's q and k (SD3, LightningDiT)
    norm, mlp    ``rms`` RMSNorm; ``swiglu`` gated MLP at equal parameters (LightningDiT, arXiv 2501.01423)
    final_conv   a 3×3 convolution on the unpatchified output (U-ViT), mixing across patch borders
    conv_mlp     local mixing in every MLP: a depthwise 3×3 convolution of its hidden tokens on the token
                 grid, u ← u + DWConv(u) (SegFormer's Mix-FFN), zero-initialised
    cond_init    ``unit``: the label table drawn from N(0, 1) and the timestep MLP Xavier-uniform like every other
                 linear map (PyTorch's defaults, as the U-Net's), instead of DiT's N(0, 0.02²) for both: with
                 adaLN-Zero the modulations' gradients scale with SiLU(c), so a tiny c learns t and y slowly
    conv_stem    a convolutional stem (Xiao et al. 2021, "Early convolutions help transformers see better")
                 in place of the linear patch embedding: Conv3×3(C → D/2), SiLU, Conv_p×p stride p (D/2 → D)

adaLN-Zero: each block's (β, γ, g) = W·SiLU(c) with W = 0 at initialisation, so every block is the
identity; the output projection W_o and the final (β, γ) are zero too (DiT's ``initialize_weights``),
so the untrained network predicts exactly 0. ``learn_sigma`` is not offered: the platform's diffusion
predicts ε, v or x₀ only, so ``out_channels`` defaults to ``in_channels``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_genvision.nn.embeddings import VECTOR_EMBEDDING_RENAMES, TimestepEmbedding, VectorEmbedding
from lit_genvision.nn.patches import AxialRotaryEmbedding, patchify, sincos_2d, split_dims, unpatchify
from lit_genvision.nn.renames import rename_on_load
from lit_genvision.nn.transformer import TransformerBlock, make_norm, modulate

POS_EMBEDS = ("sincos", "rope")
COND_INITS = ("dit", "unit")

#: The paper's Table 1: name → (hidden D, depth, heads). DiT-XL/2 is ``DiT.named("XL", patch_size=2)``.
DIT_SIZES: dict[str, tuple[int, int, int]] = {
    "S": (384, 12, 6),
    "B": (768, 12, 12),
    "L": (1024, 24, 16),
    "XL": (1152, 28, 16),
}


class FinalLayer(nn.Module):
    """DiT's decoder: out = W_o · mod(LN(z), β(c), γ(c)), with (β, γ) = W_m·SiLU(c); W_m, W_o zero-initialised."""

    def __init__(self, hidden: int, out_features: int, norm: str = "layer") -> None:
        super().__init__()
        self.norm = make_norm(norm, hidden, affine=False)  # the affine part comes from c
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.linear = nn.Linear(hidden, out_features)
        for layer in (self.adaLN[1], self.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        """z (B, N, D), c (B, D) → (B, N, out_features)."""
        shift, scale = self.adaLN(c).chunk(2, dim=-1)  # (B, D) each
        return self.linear(modulate(self.norm(z), shift, scale))  # (B, N, out_features)


class ConvStem(nn.Module):
    """A convolutional stem for the patch embedding (Xiao et al. 2021): x (B, C, S, S) → tokens (B, N, D),
    Conv3×3(C → D/2), SiLU, Conv_p×p stride p (D/2 → D), tokens row-major as `patchify`'s."""

    def __init__(self, in_channels: int, hidden: int, patch_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, hidden // 2, 3, padding=1)
        self.patch = nn.Conv2d(hidden // 2, hidden, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C, S, S) → (B, (S/p)², D)."""
        return self.patch(nn.functional.silu(self.conv(x))).flatten(2).transpose(1, 2)  # (B, N, D)


class DiT(nn.Module):
    """Diffusion transformer ε/v/x₀ network: x (B, C, S, S), t (B,) → (B, C_out, S, S).

    Args:
        in_channels: input channels C (4 for Stable Diffusion's latents).
        image_size: input side S; divisible by ``patch_size``.
        patch_size: patch side p; N = (S/p)² tokens (DiT-XL/2: p = 2).
        hidden: token width D (divisible by ``heads`` and by 4 for the 2-D sin-cos positions).
        depth: number of DiT blocks.
        heads: attention heads.
        mlp_ratio: the blocks' MLP hidden width / D.
        num_classes: if set, ``cond["label"]`` (B,) is embedded and added to c; label ``num_classes`` (K)
            is the learned null class of classifier-free guidance, used where no label is given.
        context_dim: if set, every block cross-attends to ``cond["context"]`` (B, M, context_dim), with
            ``cond["context_mask"]`` (B, M) True = keep.
        cond_dim: if set, ``cond["vector"]`` (B, cond_dim) (a pooled text embedding, say) adds W_v·v
            to c, or a learned null embedding e_∅ where absent or flagged by ``cond["vector_null"]`` (the
            U-Net's option of the same name, so a config swaps one network for the other).
        out_channels: output channels (defaults to ``in_channels``).
        dropout: dropout inside the blocks.
        kernels: ``auto | torch | triton``, handed to the blocks' attention.
        long_skips: U-ViT's long skip connections (see the module docstring); ``skip_pairs`` names them.
        pos_embed: ``sincos`` (fixed 2-D tables added to the tokens, the paper) or ``rope`` (2-D axial
            RoPE in the attention; the head width is split between rows and columns).
        qk_norm: normalise each head's queries and keys.
        norm: ``layer`` or ``rms`` for the blocks' and the decoder's norms.
        mlp: ``gelu`` (tanh form, the paper's), ``gelu_exact`` or ``swiglu``.
        final_conv: a zero-bias 3×3 convolution C_out → C_out on the unpatchified output.
        conv_mlp: local mixing in the blocks' MLPs (see the module docstring).
        conv_stem: a convolutional stem in place of the linear patch embedding.
        cond_init: ``dit`` (N(0, 0.02²) timestep MLP and label table, the paper's) or ``unit`` (see above).
    """

    pos: Tensor
    rope_cos: Tensor
    rope_sin: Tensor

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 16,
        patch_size: int = 2,
        hidden: int = 384,
        depth: int = 12,
        heads: int = 6,
        mlp_ratio: float = 4.0,
        num_classes: int | None = None,
        context_dim: int | None = None,
        cond_dim: int | None = None,
        out_channels: int | None = None,
        dropout: float = 0.0,
        kernels: str = "auto",
        long_skips: bool = False,
        pos_embed: str = "sincos",
        qk_norm: bool = False,
        norm: str = "layer",
        mlp: str = "gelu",
        final_conv: bool = False,
        conv_mlp: bool = False,
        conv_stem: bool = False,
        cond_init: str = "dit",
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be divisible by patch_size {patch_size}.")
        if cond_init not in COND_INITS:
            raise ValueError(f"cond_init must be one of {', '.join(COND_INITS)}, got {cond_init!r}.")
        if pos_embed not in POS_EMBEDS:
            raise ValueError(f"pos_embed must be one of {', '.join(POS_EMBEDS)}, got {pos_embed!r}.")
        self.in_channels, self.image_size, self.patch_size = in_channels, image_size, patch_size
        self.out_channels = out_channels or in_channels
        self.num_classes, self.context_dim, self.cond_dim = num_classes, context_dim, cond_dim
        grid = image_size // patch_size

        self.grid = (grid, grid)
        self.patch_embed: nn.Module = (
            ConvStem(in_channels, hidden, patch_size)
            if conv_stem
            else nn.Linear(patch_size * patch_size * in_channels, hidden)  # = DiT's p×p stride-p conv
        )
        pos = sincos_2d(grid, grid, hidden)[None] if pos_embed == "sincos" else torch.zeros(1, 1, hidden)
        self.register_buffer("pos", pos, persistent=False)  # (1, N, D) fixed, or 0 under RoPE
        if pos_embed == "rope":  # the tables of the fixed token grid, built once
            rotary = AxialRotaryEmbedding(hidden // heads, split_dims(hidden // heads, 2))
            cos, sin = rotary.grid((grid, grid))  # (N, d) each
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.pos_embed = pos_embed
        self.time_embed = TimestepEmbedding(256, hidden)  # DiT's 256 frequencies → MLP
        self.label_embed = nn.Embedding(num_classes + 1, hidden) if num_classes else None  # row K: null
        if cond_dim:
            self.vector_embed = VectorEmbedding(cond_dim, hidden)
            rename_on_load(self, VECTOR_EMBEDDING_RENAMES)
        block = dict(
            context_dim=context_dim, cond_dim=hidden, kernels=kernels, qk_norm=qk_norm, norm=norm, mlp=mlp,
            local_mixing=2 if conv_mlp else 0,
        )  # fmt: skip
        self.blocks = nn.ModuleList(TransformerBlock(hidden, heads, mlp_ratio, dropout, **block) for _ in range(depth))
        pairs = (depth - 1) // 2 if long_skips else 0
        self.skips = nn.ModuleList(nn.Linear(2 * hidden, hidden) for _ in range(pairs)) if pairs else None
        self.final = FinalLayer(hidden, patch_size * patch_size * self.out_channels, norm)
        self.final_conv = nn.Conv2d(self.out_channels, self.out_channels, 3, padding=1) if final_conv else None
        self._init_weights(cond_init)

    def _init_weights(self, cond_init: str) -> None:
        """DiT's ``initialize_weights``: Xavier-uniform linear maps with zero biases, N(0, 0.02²) for the
        timestep MLP and the label table (``cond_init="dit"``; ``unit`` keeps Xavier for the MLP and N(0, 1)
        for the table); then adaLN-Zero and the zero decoder (the blocks' own init)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        if cond_init == "dit":
            for layer in (self.time_embed.mlp[0], self.time_embed.mlp[2]):
                nn.init.normal_(layer.weight, std=0.02)
        if self.label_embed is not None:
            nn.init.normal_(self.label_embed.weight, std=0.02 if cond_init == "dit" else 1.0)
        for layer in [b.adaLN[1] for b in self.blocks] + [self.final.adaLN[1], self.final.linear]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        if self.final_conv is not None:  # keeps the untrained network's output at exactly 0
            nn.init.zeros_(self.final_conv.bias)

    @property
    def skip_pairs(self) -> list[tuple[int, int]]:
        """(i, j): block i's output joins block j's input, j = depth − 1 − i (U-ViT); empty without long skips."""
        depth = len(self.blocks)
        return [(i, depth - 1 - i) for i in range(len(self.skips or ()))]

    @classmethod
    def named(cls, size: str, **kwargs) -> DiT:
        """The paper's DiT-S/B/L/XL (``DIT_SIZES``); ``size`` may carry the patch, as in ``"XL/2"``."""
        name, _, patch = size.removeprefix("DiT-").partition("/")
        if name not in DIT_SIZES:
            raise ValueError(f"unknown DiT size {size!r}; choose one of {', '.join(DIT_SIZES)}.")
        hidden, depth, heads = DIT_SIZES[name]
        if patch:
            kwargs["patch_size"] = int(patch)
        return cls(hidden=hidden, depth=depth, heads=heads, **kwargs)

    def condition(self, t: Tensor, cond: dict[str, Tensor] | None, batch: int) -> Tensor:
        """c = MLP(sincos(t)) [+ E_y[y]] [+ W_v·v]: (B, D). A missing label is the null class K."""
        cond = cond or {}
        c = self.time_embed(t.expand(batch) if t.ndim == 0 else t)  # (B, D)
        if self.label_embed is not None:
            labels = cond.get("label")
            if labels is None:  # no label given: the null label, i.e. the unconditional model
                labels = torch.full((batch,), self.num_classes, device=c.device, dtype=torch.long)
            c = c + self.label_embed(labels)  # (B, D)
        if self.cond_dim:
            c = c + self.vector_embed(cond, batch)  # (B, D)
        return c

    def forward(self, x: Tensor, t: Tensor, cond: dict[str, Tensor] | None = None) -> Tensor:
        """x (B, C, S, S), t (B,), cond {label, vector, vector_null, context, context_mask} → (B, C_out, S, S)."""
        c = self.condition(t, cond, x.shape[0])  # (B, D)
        context = (cond or {}).get("context") if self.context_dim else None  # (B, M, context_dim)
        mask = (cond or {}).get("context_mask") if context is not None else None  # (B, M) True = keep
        if isinstance(self.patch_embed, ConvStem):
            z = self.patch_embed(x)  # (B, N, D)
        else:
            z = self.patch_embed(patchify(x, self.patch_size))  # (B, N, D)
        rope = None
        if self.pos_embed == "rope":
            rope = (self.rope_cos, self.rope_sin)  # (N, d) each
        else:
            z = z + self.pos.to(z.dtype)  # (B, N, D)
        depth, pairs = len(self.blocks), len(self.skips or ())
        saved: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            if i >= depth - pairs:  # an output block: z ← W_s·[z, z_{depth−1−i}]
                z = self.skips[i - (depth - pairs)](torch.cat([z, saved.pop()], dim=-1))  # (B, N, D)
            z = block(z, context=context, context_mask=mask, cond=c, rope=rope, grid=self.grid)  # (B, N, D)
            if i < pairs:
                saved.append(z)
        out = unpatchify(self.final(z, c), self.patch_size, self.out_channels)  # (B, C_out, S, S)
        return out if self.final_conv is None else self.final_conv(out)


__all__ = ["COND_INITS", "DIT_SIZES", "POS_EMBEDS", "ConvStem", "DiT", "FinalLayer"]
