"""A CLIP image embedding as a condition: what DALL-E 2's decoders read (unCLIP, Ramesh et al. 2022,
arXiv 2204.06125, §2.1): the embedding is projected and added to the timestep embedding, and projected into
``tokens`` extra context tokens the backbone cross-attends to (beside the text's, when there is text).

With an ``encoder`` (the frozen CLIP image tower, ``models.CLIPImageEncoder``) the condition is derived from the
batch: a decoder trains on e = E_I(x) of its own images, and is sampled with an embedding given
(``cond={"image_embedding": e}``: the prior's, or an image's for variations).

With ``noise_levels`` = L > 0 the embedding is noise-augmented (Stable unCLIP's ``noise_level``, after the
cascaded models' conditioning augmentation, Ho et al. 2021): in training each sample draws a level l ~ U{0 … L−1}
and its embedding becomes

    e_l = (√ᾱ_l · √D·e + √(1 − ᾱ_l) · ε) / √D,   ε ~ N(0, I),   ᾱ_l = f(l) / f(0),  f(l) = cos²((l/L + s)/(1 + s) · π/2)

(the cosine schedule, s = 0.008; √D·e has unit RMS per entry), and the network reads [e_l, sinusoid(l)]: it learns
to decode embeddings that carry less than all of an image, so a sampling level l > 0 (``augment``) trades
faithfulness to the embedding for variety. Level 0 is the clean embedding."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from lit_genvision.nn.conditions.base import Condition, null_vector
from lit_genvision.nn.embeddings import sinusoidal_embedding


class ImageEmbedding(Condition):
    """An embedding e (B, D) under ``image_embedding``; dropped to zeros flagged ``image_embedding_null``, where
    the backbone's vector is its learned null and the tokens are those of e = 0 (unCLIP zeroes the embedding).

    Args:
        dim: D, the embedding's width (CLIP's joint space).
        tokens: context tokens it becomes (unCLIP: 4; 0: none; needs the backbone's ``context_dim``).
        vector: also add it to the timestep embedding (needs the backbone's ``cond_dim``).
        encoder: images (B, C, H, W) → embeddings (B, D), frozen: derive e from the batch's images in training.
        noise_levels: L, the noise-augmentation levels drawn in training (Stable unCLIP: 1,000; 0: none).
    """

    name = "image_embedding"
    dropout_keys = ("image_embedding",)

    def __init__(
        self, dim: int, tokens: int = 4, vector: bool = True, encoder: nn.Module | None = None, noise_levels: int = 0
    ) -> None:
        super().__init__()
        if not tokens and not vector:
            raise ValueError("an image embedding must reach the backbone as tokens, as its vector, or both.")
        if noise_levels < 0:
            raise ValueError(
                f"noise_levels must be 0 (no noise augmentation) or a number of levels; got {noise_levels}."
            )
        self.noise_levels = noise_levels
        #: The batch keys: the embedding, and with noise augmentation the level of each sample's noise.
        self.keys = ("image_embedding", "image_embedding_level") if noise_levels else ("image_embedding",)
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
            self.to_vector = nn.Identity() if cond_dim == self.width else nn.Linear(self.width, cond_dim)
        if self.tokens:
            context_dim = getattr(backbone, "context_dim", None)
            if not context_dim:
                raise ValueError("image-embedding tokens are cross-attended; build the backbone with context_dim.")
            self.context_dim = context_dim
            self.to_tokens = nn.Linear(self.width, self.tokens * context_dim)

    @property
    def width(self) -> int:
        """What the projections read: e, and with noise augmentation the level's sinusoid beside it."""
        return 2 * self.dim if self.noise_levels else self.dim

    def alpha_bar(self, levels: Tensor) -> Tensor:
        """ᾱ_l of the cosine schedule over the ``noise_levels`` levels (Nichol & Dhariwal 2021), ᾱ_0 = 1."""
        s = 0.008
        f = torch.cos((levels.double() / self.noise_levels + s) / (1 + s) * math.pi / 2) ** 2
        return (f / math.cos(s / (1 + s) * math.pi / 2) ** 2).float()

    def augment(self, e: Tensor, level: int | Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The condition of e (B, D) noise-augmented to ``level`` (one for all, or (B,)): ``image_embedding``
        e_l and ``image_embedding_level`` l, with ε drawn from ``generator`` (the formula in the module's doc)."""
        if not self.noise_levels:
            raise ValueError("this decoder was trained without noise augmentation (noise_levels: 0); use level 0.")
        levels = torch.as_tensor(level, device=e.device).long().expand(len(e)).clone()
        if ((levels < 0) | (levels >= self.noise_levels)).any():
            raise ValueError(f"a noise level is one of 0 … {self.noise_levels - 1}; got {level}.")
        a = self.alpha_bar(levels).to(e)[:, None]
        eps = torch.randn(e.shape, generator=generator, device=e.device if generator is None else generator.device)
        scale = math.sqrt(self.dim)
        noised = (a.sqrt() * scale * e + (1 - a).sqrt() * eps.to(e)) / scale
        return {"image_embedding": noised, "image_embedding_level": levels}

    def derive(self, batch: dict[str, Any], **context: Any) -> dict[str, Any]:
        """e = E_I(x) of the batch's images (in [-1, 1]) unless the batch carries its embeddings; with noise
        augmentation, each sample noised to a level drawn from the global RNG in training (a run resumes
        bitwise), and left clean (level 0) in evaluation."""
        out: dict[str, Any] = {}
        if "image_embedding" not in batch and self.encoder is not None:
            with torch.no_grad():
                out["image_embedding"] = self.encoder(batch["image"])
        if self.noise_levels and "image_embedding_level" not in batch:
            e = out.get("image_embedding", batch.get("image_embedding"))
            if e is None:
                return out
            if self.training:
                levels = torch.randint(0, self.noise_levels, (len(e),), device=e.device)
                return {**out, **self.augment(e, levels)}
            out["image_embedding_level"] = torch.zeros(len(e), dtype=torch.long, device=e.device)
        return out

    def null(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        """A dropped embedding is zeros flagged ``image_embedding_null``; its level stays (the null ignores it)."""
        return null_vector(key, value, drop) if key == "image_embedding" else {key: value}

    def encode(self, cond: dict[str, Any], batch: int, like: Tensor) -> dict[str, Any]:
        e = cond.get("image_embedding")
        dropped = cond.get("image_embedding_null")
        if e is None:
            e = torch.zeros(batch, self.dim, device=like.device, dtype=like.dtype)
            dropped = torch.ones(batch, dtype=torch.bool, device=like.device)
        e = e.to(like.dtype)
        keep = torch.ones(batch, dtype=torch.bool, device=like.device) if dropped is None else ~dropped.bool()
        if self.noise_levels:  # [e_l, sinusoid(l)]; the null reads zeros for both
            levels = cond.get("image_embedding_level")
            levels = torch.zeros(batch, device=like.device) if levels is None else levels.to(like.device)
            features = sinusoidal_embedding(levels.expand(batch), self.dim).to(like.dtype)
            e = torch.cat([e, features * keep[:, None].to(like.dtype)], dim=-1)
        out: dict[str, Any] = {}
        if self.to_vector is not None:
            out["vector"] = self.to_vector(e)
            out["vector_null"] = ~keep
        if self.to_tokens is not None:
            out["context"] = self.to_tokens(e).view(batch, self.tokens, self.context_dim)
            out["context_mask"] = torch.ones(batch, self.tokens, dtype=torch.bool, device=like.device)
        return out
