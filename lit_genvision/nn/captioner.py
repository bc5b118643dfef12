"""A ClipCap-style caption decoder (Mokady et al. 2021, "ClipCap: CLIP Prefix for Image Captioning",
arXiv 2111.09734): an MLP maps the CLIP image embedding E_I to ``prefix_length`` tokens, and a small
causal transformer reads [prefix; w_0 … w_{t−1}] and predicts w_t, so

    p(w | I) = Π_t softmax(W_o h_t),   h = Transformer([MLP(E_I); Emb(w_<t)])

with rotary positions over the whole sequence (prefix included). Training is teacher-forced
cross-entropy on the caption tokens; the network is an ``AutoregressiveNet`` whose prefix is MLP(E_I), decoded
by ``methods.autoregressive`` (greedy, beam search) with a KV cache.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_genvision.nn.transformer import KVCache, Transformer


class CaptionDecoder(nn.Module):
    """E_I (B, embed_dim) and token ids (B, T) → next-token logits (B, T, vocab).

    Args:
        vocab_size: tokens of the caption tokenizer.
        embed_dim: width of the image embedding E_I.
        prefix_length: tokens the image embedding becomes.
        dim: transformer width.
        depth: transformer blocks.
        heads: attention heads.
        dropout: dropout inside the blocks.
        kernels: ``auto | torch | triton``, handed to attention.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        prefix_length: int = 4,
        dim: int = 128,
        depth: int = 3,
        heads: int = 4,
        dropout: float = 0.0,
        kernels: str = "auto",
    ) -> None:
        super().__init__()
        self.vocab_size, self.embed_dim, self.prefix_length, self.dim = vocab_size, embed_dim, prefix_length, dim
        hidden = dim * prefix_length // 2
        self.prefix = nn.Sequential(
            nn.Linear(embed_dim, hidden), nn.Tanh(), nn.Linear(hidden, dim * prefix_length)
        )  # ClipCap's MLP mapping network
        self.embed = nn.Embedding(vocab_size, dim)
        self.transformer = Transformer(depth, dim, heads, dropout=dropout, causal=True, rope=True, kernels=kernels)
        self.head = nn.Linear(dim, vocab_size, bias=False)

    def prefix_tokens(self, image_embedding: Tensor) -> Tensor:
        """ClipCap's prefix: MLP(E_I) as ``prefix_length`` tokens (B, P, dim)."""
        return self.prefix(image_embedding).view(len(image_embedding), self.prefix_length, self.dim)

    def embed_tokens(self, tokens: Tensor, first: int) -> Tensor:
        """Embeddings (B, n, dim) of caption tokens (positions are rotary: ``first`` is not needed)."""
        return self.embed(tokens)

    def step(self, x: Tensor, cache: list[KVCache]) -> Tensor:
        """Logits (B, vocab) of the next token after ``x`` (B, n, dim), extending the KV ``cache``."""
        return self.head(self.transformer(x, cache=cache)[:, -1])

    def new_cache(self) -> list[KVCache]:
        return self.transformer.new_cache()

    def forward(self, image_embedding: Tensor, ids: Tensor, mask: Tensor | None = None) -> Tensor:
        """Logits (B, T, vocab) where position t predicts token t + 1 of ``ids`` (B, T); ``mask``
        (B, T) is True at real tokens (padding is not attended to)."""
        b = len(ids)
        x = torch.cat([self.prefix_tokens(image_embedding), self.embed(ids)], dim=1)  # (B, P + T, dim)
        keep = None
        if mask is not None:
            keep = torch.cat([mask.new_ones(b, self.prefix_length), mask], dim=1)  # (B, P + T)
        h = self.transformer(x, mask=keep)  # (B, P + T, dim)
        return self.head(h[:, self.prefix_length :])  # (B, T, vocab)


__all__ = ["CaptionDecoder"]
