"""Timestep embeddings and the embedding of a conditioning vector."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Transformer-style sinusoidal embedding of (possibly fractional) timesteps.

    emb(t)_i = [cos(t·ω_i), sin(t·ω_i)] with ω_i = max_period^(−i / (dim/2)), i = 0 … dim/2 − 1
    (Vaswani et al. 2017; DDPM, Ho et al. 2020). t: (B,) → (B, dim).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedding(nn.Module):
    """Sinusoidal features followed by a two-layer MLP: t (B,) → (B, emb_dim)."""

    def __init__(self, base_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.base_dim = base_dim
        self.mlp = nn.Sequential(nn.Linear(base_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(sinusoidal_embedding(t, self.base_dim))


class VectorEmbedding(nn.Module):
    """The embedding of a per-sample conditioning vector v (B, cond_dim) with a learned null (classifier-free
    guidance's unconditional branch, Ho & Salimans 2022), added by the U-Net and the DiT to the timestep
    embedding:

        e = W·v + b,   or e_∅ where ``cond["vector"]`` is absent or ``cond["vector_null"]`` (B,) flags v dropped

    ``proj`` is the linear map (W, b), ``null`` the learned e_∅ (zero at initialisation).

    Args:
        cond_dim: width of v.
        emb_dim: width of the embedding.
    """

    def __init__(self, cond_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, emb_dim)
        self.null = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, cond: dict[str, Tensor], batch: int) -> Tensor:
        """cond {vector (B, cond_dim), vector_null (B,)}, both optional → (B, emb_dim)."""
        vector = cond.get("vector")
        if vector is None:  # no vector given: the null embedding, i.e. the unconditional model
            return self.null.expand(batch, -1)  # (B, emb_dim)
        emb = self.proj(vector.to(self.null.dtype))  # (B, emb_dim)
        dropped = cond.get("vector_null")
        if dropped is not None:
            emb = torch.where(dropped.to(torch.bool).view(-1, 1), self.null.to(emb.dtype), emb)
        return emb


#: For an owner that holds its `VectorEmbedding` as ``vector_embed``: the names the owner's own layers had before
#: (``vector_embed`` a linear map, ``vector_null`` a parameter) → today's, for `nn.renames.rename_on_load`.
VECTOR_EMBEDDING_RENAMES = {
    "vector_embed.weight": "vector_embed.proj.weight",
    "vector_embed.bias": "vector_embed.proj.bias",
    "vector_null": "vector_embed.null",
}
