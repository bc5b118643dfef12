"""A CLIP image embedding as a condition: what DALL-E 2's decoders read (unCLIP, Ramesh et al. 2022,
arXiv 2204.06125, §2.1): the embedding is projected and added to the timestep embedding, and projected into
``tokens`` extra context tokens the backbone cross-attends to (beside the text's, when there is text).

With an ``encoder`` (the frozen CLIP image tower, ``models.CLIPImageEncoder``) the condition is derived from the
batch: a decoder trains on e = E_I(x) of its own images, and is sampled with an embedding given
(``cond={"image_embedding": e}``: the prior's, or an image's for variations)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lit_genvision.nn.conditions.base import Condition, null_vector


class ImageEmbedding(Condition):
    """An embedding e (B, D) under ``image_embedding``; dropped to zeros flagged ``image_embedding_null``, where
    the backbone's vector is its learned null and the tokens are those of e = 0 (unCLIP zeroes the embedding).

    Args:
        dim: D, the embedding's width (CLIP's joint space).
        tokens: context tokens it becomes (unCLIP: 4; 0: none; needs the backbone's ``context_dim``).
        vector: also add it to the timestep embedding (needs the backbone's ``cond_dim``).
        encoder: images (B, C, H, W) → embeddings (B, D), frozen: derive e from the batch's images in training.
    """

    name = "image_embedding"
    keys = ("image_embedding",)

    def __init__(self, dim: int, tokens: int = 4, vector: bool = True, encoder: nn.Module | None = None) -> None:
        super().__init__()
        if not tokens and not vector:
            raise ValueError("an image embedding must reach the backbone as tokens, as its vector, or both.")
        width = getattr(encoder, "dim", dim)
        if width != dim:
            raise ValueError(f"the image encoder gives {width}-wide embeddings, not dim={dim}; set dim={width}.")
        self.dim, self.tokens, self.vector = dim, tokens, vector
        self.encoder = encoder
        self.derived = encoder is not None  # the model derives e from the batch's images
        self.to_vector: nn.Module | None = None
        self.to_tokens: nn.Linear | None = None

    def bind(self, backbone: nn.Module) -> None:
        if self.vector:
            cond_dim = getattr(backbone, "cond_dim", None)
            if not cond_dim:
                raise ValueError("an image embedding added to the timestep embedding needs the backbone's cond_dim.")
            self.to_vector = nn.Identity() if cond_dim == self.dim else nn.Linear(self.dim, cond_dim)
        if self.tokens:
            context_dim = getattr(backbone, "context_dim", None)
            if not context_dim:
                raise ValueError("image-embedding tokens are cross-attended; build the backbone with context_dim.")
            self.context_dim = context_dim
            self.to_tokens = nn.Linear(self.dim, self.tokens * context_dim)

    def derive(self, batch: dict[str, Any], **context: Any) -> dict[str, Any]:
        """e = E_I(x) of the batch's images (in [-1, 1]) unless the batch carries its embeddings."""
        if "image_embedding" in batch or self.encoder is None:
            return {}
        with torch.no_grad():
            return {"image_embedding": self.encoder(batch["image"])}

    def null(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        return null_vector(key, value, drop)

    def encode(self, cond: dict[str, Any], batch: int, like: Tensor) -> dict[str, Any]:
        e = cond.get("image_embedding")
        dropped = cond.get("image_embedding_null")
        if e is None:
            e = torch.zeros(batch, self.dim, device=like.device, dtype=like.dtype)
            dropped = torch.ones(batch, dtype=torch.bool, device=like.device)
        e = e.to(like.dtype)
        keep = torch.ones(batch, dtype=torch.bool, device=like.device) if dropped is None else ~dropped.bool()
        out: dict[str, Any] = {}
        if self.to_vector is not None:
            out["vector"] = self.to_vector(e)
            out["vector_null"] = ~keep
        if self.to_tokens is not None:
            out["context"] = self.to_tokens(e).view(batch, self.tokens, self.context_dim)
            out["context_mask"] = torch.ones(batch, self.tokens, dtype=torch.bool, device=like.device)
        return out
