"""Text: prompts encoded by a text encoder τ_θ into tokens the backbone cross-attends to (latent diffusion,
Rombach et al. 2022, §3.3), and optionally its pooled embedding as the backbone's vector."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from lit_genvision.nn.conditions.base import Condition, null_text
from lit_genvision.nn.text import TextEncoder


class Text(Condition):
    """Prompts (a list of B strings under ``text``) → ``encoder`` → tokens projected to the backbone's
    ``context_dim`` with their padding mask; ``pooled`` also gives the pooled embedding as ``vector`` (the
    backbone's ``cond_dim`` must equal the encoder's ``pooled_dim``). Dropped to the empty prompt "".

    Args:
        encoder: a ``TextEncoder`` (our CLIP text tower trained jointly or frozen, a Hugging Face encoder by
            path, a learned embedding).
        pooled: hand the pooled text embedding to the backbone as its vector too.
    """

    name = "text"
    keys = ("text",)

    def __init__(self, encoder: TextEncoder, pooled: bool = False) -> None:
        super().__init__()
        self.encoder, self.pooled = encoder, pooled
        self.proj: nn.Module | None = None

    def bind(self, backbone: nn.Module) -> None:
        context_dim = getattr(backbone, "context_dim", None)
        if not context_dim:
            raise ValueError("text is cross-attended; build the backbone with context_dim.")
        self.proj = nn.Identity() if self.encoder.dim == context_dim else nn.Linear(self.encoder.dim, context_dim)
        if self.pooled and getattr(backbone, "cond_dim", None) != self.encoder.pooled_dim:
            raise ValueError(
                f"text_pooled hands the pooled text ({self.encoder.pooled_dim} wide) to the backbone as its vector; "
                f"build the backbone with cond_dim={self.encoder.pooled_dim}."
            )

    def null(self, key: str, value: list[str], drop: Tensor) -> dict[str, list[str]]:
        return {key: null_text(value, drop)}

    def encode(self, cond: dict[str, Any], batch: int, like: Tensor) -> dict[str, Any]:
        """τ_θ(prompts): context (B, M, context_dim), context_mask (B, M) and, if ``pooled``, vector (B, D)."""
        texts = cond.get("text")
        if texts is None:
            texts = [""] * batch
        if isinstance(texts, str) or len(texts) != batch:
            raise ValueError(f"cond['text'] must be a list of {batch} prompts, one per sample.")
        enc = self.encoder.encode(list(texts))
        out = {"context": self.proj(enc.tokens.to(like.dtype)), "context_mask": enc.mask.to(like.device)}
        if self.pooled:
            out["vector"] = enc.pooled.to(like.dtype)
        return out
