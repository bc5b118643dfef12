"""A causal transformer over a tokenizer's token grid: the prior of VQ-VAE-2 / taming-transformers'
second stage, and the lecture's DALL-E (images generated as a sequence of discrete tokens).

The grid (h, w) — or (h, w, N) for an N-stage residual quantizer — is read in raster order, the N
codes of a position depth-first (coarse to fine) before the next position, so the sequence is

    s = [START_y, c_0, c_1, …, c_{L−1}],   L = h·w·N,

and the network models p(c_i | START_y, c_<i) with one softmax over the V codes of the stage that
position i belongs to (stage i mod N, each stage with its own input embedding). START_y is the class
token y ∈ {0 … K−1}, or the null token K of an unconditional model (or a dropped label).
Positions are rotary (RoPE), so the same weights decode step by step with a KV cache: the network is an
``AutoregressiveNet`` for ``methods.autoregressive.decode`` — START_y is its prefix of length 1.

With ``conditions`` (``nn.conditions``: DALL-E 2's CLIP image embedding as ``ImageEmbedding(tokens=P)``), their
context tokens come before START: s = [τ_1 … τ_P, START_y, c_0, …], the prefix grows to P + 1 — the lecture's
transformer decoder that "predicts patches of the image at each step" conditioned on a prefix of the projected
embedding (unCLIP, §2.1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_genvision.nn.conditions import Condition, Label, merge_encodings
from lit_genvision.nn.transformer import KVCache, Transformer


class TokenTransformer(nn.Module):
    """Causal decoder over codes of ``vocab_size`` (per stage) with class start tokens.

    Args:
        vocab_size: V, the codes of one stage.
        length: L = h·w·N, tokens per image.
        stages: N codes per grid position (1 unless the tokenizer is residual).
        dim: model width.
        depth: transformer blocks.
        heads: attention heads.
        num_classes: K class start tokens (plus the null token K); None: only the null token.
        dropout: dropout inside the blocks.
        kernels: ``auto | torch | triton`` for attention.
        conditions: conditions whose context tokens (width ``dim``) prefix the sequence, e.g. ``[ImageEmbedding(64,
            tokens=4, vector=False, encoder=...)]``; their nulls train the unconditional prefix of guidance.
    """

    def __init__(
        self,
        vocab_size: int,
        length: int,
        stages: int = 1,
        dim: int = 256,
        depth: int = 8,
        heads: int = 8,
        num_classes: int | None = None,
        dropout: float = 0.0,
        kernels: str = "auto",
        conditions: list[Condition] | None = None,
    ) -> None:
        super().__init__()
        if length % stages:
            raise ValueError(f"length {length} must be a multiple of stages {stages} (h·w·N tokens).")
        self.vocab_size, self.length, self.stages, self.num_classes = vocab_size, length, stages, num_classes
        self.start = stages * vocab_size  # id of START_0; START_K (null) is start + K
        self.embed = nn.Embedding(self.start + (num_classes or 0) + 1, dim)
        self.transformer = Transformer(depth, dim, heads, dropout=dropout, causal=True, rope=True, kernels=kernels)
        self.head = nn.Linear(dim, vocab_size)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.context_dim = dim  # what a condition's tokens are projected to (``Condition.bind``)
        # What the model reads (``ConditionalModel.conditions``), as a ConditionedNet's: the label first (it stays
        # the START token), then the prefix conditions. A Label holds no weights: the state dict is unchanged.
        self.conditions = nn.ModuleDict()
        for condition in ([Label(num_classes)] if num_classes else []) + list(conditions or []):
            if condition.channels or condition.name in self.conditions:
                raise ValueError(f"a token prior takes one {condition.name} condition, as tokens; remove the other.")
            condition.bind(self)
            self.conditions[condition.name] = condition

    def start_ids(self, labels: Tensor | None, batch: int, device: torch.device) -> Tensor:
        """START_y (B, 1): the class token of each label (label K or None: the null token)."""
        if labels is None:
            return torch.full((batch, 1), self.start + (self.num_classes or 0), device=device, dtype=torch.long)
        return (self.start + labels.long()).view(-1, 1)

    def code_ids(self, codes: Tensor, first: int) -> Tensor:
        """Input ids of codes c_first … c_{first+n−1} (B, n): c_j + V·(j mod N), its stage's embedding rows."""
        stage = (first + torch.arange(codes.shape[1], device=codes.device)) % self.stages
        return codes.long() + self.vocab_size * stage

    def forward(self, codes: Tensor, cond: dict[str, Tensor] | None = None) -> Tensor:
        """Teacher forcing: logits (B, L, V) of every code c_i given START_y and c_<i."""
        prefix = self.prefix_tokens(cond, len(codes), codes.device)  # (B, P + 1, dim)
        x = torch.cat([prefix, self.embed_tokens(codes[:, :-1], 0)], dim=1)
        return self.head(self.transformer(x))[:, prefix.shape[1] - 1 :]  # (B, L, V): from START's output on

    def prefix_tokens(self, cond: dict[str, Tensor] | None, batch: int, device: torch.device) -> Tensor:
        """The conditions' tokens (B, P, dim), then the embedded START_y (B, 1, dim) of ``cond``'s labels (none, or an
        unconditional network: the null); a condition absent from ``cond`` gives its null tokens."""
        labels = (cond or {}).get("label") if self.num_classes else None
        start = self.embed(self.start_ids(labels, batch, device))  # (B, 1, dim)
        prefix = [c for c in self.conditions.values() if not isinstance(c, Label)]
        if not prefix:
            return start
        encoded = merge_encodings([c.encode(dict(cond or {}), batch, start) for c in prefix])
        return torch.cat([encoded["context"].to(start.dtype), start], dim=1)  # (B, P + 1, dim)

    def embed_tokens(self, tokens: Tensor, first: int) -> Tensor:
        """Embeddings (B, n, dim) of codes c_first … c_{first+n−1}: their stage's rows."""
        return self.embed(self.code_ids(tokens, first))

    def step(self, x: Tensor, cache: list[KVCache]) -> Tensor:
        """Logits (B, V) of the next code after the embeddings ``x`` (B, n, dim), extending the KV ``cache``."""
        return self.head(self.transformer(x, cache=cache))[:, -1]

    def new_cache(self) -> list[KVCache]:
        return self.transformer.new_cache()
