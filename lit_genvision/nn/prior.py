"""DALL-E 2's diffusion prior network (unCLIP, Ramesh et al. 2022, arXiv 2204.06125, §2.2): a decoder-only
Transformer that denoises a CLIP image embedding given the caption.

The paper's prior reads one sequence — the encoded text, the CLIP text embedding, an embedding of the
diffusion timestep, the noised CLIP image embedding and a final learned query — and the Transformer's
output at the query predicts the *unnoised* image embedding (the x₀ objective, L = E‖z_i − f(z_i^(t), t, y)‖²):

    tokens   [W_t·(√D·z_t), MLP(sincos t), W_c·τ(y)_1 … W_c·τ(y)_M, W_x·z_i^(t), q]       (M + 4, width)
    output   ẑ_i = W_o · LN(Transformer(tokens))[−1]                                        (D,)

with a causal mask (token i attends to tokens ≤ i) and the caption's padding mask. The always-present
tokens come first so that no row of the causal mask is all padding. z_t is CLIP's unit-norm text embedding,
scaled by √D to the per-entry scale of the image embeddings the prior denoises (DALLE2-pytorch's
``image_embed_scale``); z_i^(t) arrives already in the model's space (``CLIPImageSpace``).

As a backbone of ``ConditionedNet`` it reads the ``Text`` condition (``pooled``): ``cond["context"]`` (B, M,
context_dim) with ``cond["context_mask"]`` and ``cond["vector"]`` (B, D), the text embedding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lit_genvision.nn.embeddings import TimestepEmbedding
from lit_genvision.nn.transformer import Transformer


class PriorTransformer(nn.Module):
    """f(z_i^(t), t, y) → ẑ_i: the unCLIP prior over [text embedding, timestep, text tokens, noised image
    embedding, query].

    Args:
        embed_dim: D, the CLIP joint space's width (the denoised vector's and the text embedding's).
        width: the Transformer's token width.
        depth: its blocks.
        heads: attention heads.
        context_dim: the width of the text tokens (``ConditionedNet``'s ``Text`` projects to it).
        mlp_ratio: MLP hidden width / width.
        causal: the paper's causal mask; False attends both ways.
        kernels: ``auto | torch | triton`` attention, handed to the blocks.
    """

    def __init__(
        self,
        embed_dim: int,
        width: int = 128,
        depth: int = 4,
        heads: int = 4,
        context_dim: int = 64,
        mlp_ratio: float = 4.0,
        causal: bool = True,
        kernels: str = "auto",
    ) -> None:
        super().__init__()
        # The denoiser interface ConditionedNet and DenoisingModel read: a (B, D) vector has D channels and
        # no spatial side; the pooled text is its ``vector`` (cond_dim) and its tokens its context.
        self.embed_dim = self.in_channels = self.out_channels = self.cond_dim = embed_dim
        self.image_size = None
        self.context_dim = context_dim
        self.text_embed = nn.Linear(embed_dim, width)
        self.time_embed = TimestepEmbedding(256, width)
        self.text_tokens = nn.Linear(context_dim, width)
        self.noised_embed = nn.Linear(embed_dim, width)
        self.query = nn.Parameter(torch.randn(width) * 0.02)
        self.max_tokens = 64  # learned positions for up to 64 text tokens + the four others
        self.pos = nn.Parameter(torch.randn(self.max_tokens + 4, width) * 0.02)
        self.transformer = Transformer(depth, width, heads, mlp_ratio, causal=causal, kernels=kernels)
        self.out = nn.Linear(width, embed_dim)

    def forward(self, x: Tensor, t: Tensor, cond: dict[str, Tensor] | None = None) -> Tensor:
        """x (B, D) the noised embedding, t (B,), cond {vector (B, D), context (B, M, c), context_mask (B, M)}
        → ẑ (B, D)."""
        cond = cond or {}
        b = x.shape[0]
        text = cond.get("vector")
        context = cond.get("context")
        if text is None or context is None:
            raise ValueError("the prior reads the caption: pass cond with the Text condition's vector and context.")
        mask = cond.get("context_mask")
        m = context.shape[1]
        if m > self.max_tokens:
            raise ValueError(f"the prior takes captions of up to {self.max_tokens} tokens, got {m}; shorten them.")
        t = t.expand(b) if t.ndim == 0 else t
        head = torch.stack([self.text_embed(text * math.sqrt(self.embed_dim)), self.time_embed(t)], dim=1)
        tail = torch.stack([self.noised_embed(x), self.query.expand(b, -1)], dim=1)  # (B, 2, width)
        tokens = torch.cat([head, self.text_tokens(context), tail], dim=1)  # (B, M + 4, width)
        pos = torch.cat([self.pos[: 2 + m], self.pos[self.max_tokens + 2 :]], dim=0)  # (M + 4, width)
        keep = None
        if mask is not None:
            ones = torch.ones(b, 2, dtype=torch.bool, device=x.device)
            keep = torch.cat([ones, mask.to(torch.bool), ones], dim=1)  # (B, M + 4)
        h = self.transformer(tokens + pos, mask=keep)  # (B, M + 4, width)
        return self.out(h[:, -1])  # (B, D)


__all__ = ["PriorTransformer"]
