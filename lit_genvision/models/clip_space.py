"""CLIP's image embeddings as the space a diffusion model runs in: DALL-E 2's prior denoises z_i = E_I(x), the
frozen CLIP image tower's unit-norm embedding of an image (unCLIP, Ramesh et al. 2022, §2.2), as a config
names it:

    space:
      class_path: lit_genvision.models.CLIPImageSpace
      init_args: {checkpoint: runs/clip-digits/version_0/checkpoints/last.ckpt, normalise: sqrt_d}

A unit-norm vector in D dimensions has entries of size ~1/√D, badly scaled for Gaussian diffusion built for
unit-variance data, so the space rescales it (the issue's two choices, both measured in benchmarks/README.md):

    sqrt_d        z = √D · E_I(x)                        (DALLE2-pytorch's ``image_embed_scale``)
    standardise   z = (E_I(x) − μ) / σ, per dimension     (μ, σ over the training images, measured at fit
                                                            start and saved with the model)

``decode`` inverts the map and renormalises to the unit sphere, so a sample is a CLIP image embedding again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_genvision.models.clip_image import CLIPImageEncoder

#: How the space rescales the unit-norm embeddings.
NORMALISATIONS = ("sqrt_d", "standardise")


class CLIPImageSpace(nn.Module):
    """z = normalise(E_I(x)) through a frozen CLIP image tower; samples decode to unit-norm embeddings (B, D).

    Args:
        checkpoint: path of a CLIP checkpoint (``configs/clip/*.yaml``).
        normalise: ``sqrt_d`` or ``standardise`` (see the module's docstring).
        embed: keep the CLIP's weights in the owning model's checkpoints (one self-contained file); False holds
            them by reference to ``checkpoint`` (path and SHA-256 checked on every load).
    """

    bounded = False

    def __init__(self, checkpoint: str, normalise: str = "sqrt_d", embed: bool = True) -> None:
        super().__init__()
        if normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {', '.join(NORMALISATIONS)}, got {normalise!r}.")
        self.encoder = CLIPImageEncoder(checkpoint, embed=embed)  # frozen, always in eval mode
        self.normalise = normalise
        self.dim = self.encoder.dim
        nan = torch.full((self.dim,), math.nan) if normalise == "standardise" else torch.zeros(self.dim)
        self.register_buffer("mean", nan.clone())
        self.register_buffer("std", nan.clone() if normalise == "standardise" else torch.ones(self.dim))

    @property
    def clip(self) -> nn.Module:
        """The frozen CLIP network (its towers and ``class_embeddings``)."""
        return self.encoder.clip

    @property
    def is_scaled(self) -> bool:
        """False until a ``standardise`` space has measured μ and σ (``fit_scale``)."""
        return not bool(torch.isnan(self.mean).any())

    @torch.no_grad()
    def fit_scale(self, batches: Iterable[Tensor]) -> float:
        """μ and σ per dimension of E_I(x) over the images of ``batches``; returns the mean σ."""
        z = torch.cat([self.encoder(images.to(self.mean.device)) for images in batches]).double()
        if len(z) < 2:
            raise ValueError("fit_scale needs at least two images to measure the embeddings' spread.")
        self.mean.copy_(z.mean(0))
        self.std.copy_(z.std(0).clamp_min(1e-6))
        return float(self.std.mean())

    def _checked(self) -> None:
        if not self.is_scaled:
            raise RuntimeError("this CLIP space has no statistics yet; call fit_scale on training images first.")

    @torch.no_grad()
    def embed(self, images: Tensor) -> Tensor:
        """images (B, C, H, W) in [-1, 1] → the unit-norm CLIP image embeddings (B, D)."""
        return self.encoder(images)

    def to_space(self, e: Tensor) -> Tensor:
        """Unit-norm embeddings (B, D) → the space's z."""
        if self.normalise == "sqrt_d":
            return e * math.sqrt(self.dim)
        self._checked()
        return (e - self.mean.to(e)) / self.std.to(e)

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        return self.to_space(self.embed(images))

    @torch.no_grad()
    def decode(self, x: Tensor) -> Tensor:
        """z (B, D) → the unit-norm embedding it stands for."""
        if self.normalise == "standardise":
            self._checked()
            x = x * self.std.to(x) + self.mean.to(x)
        return F.normalize(x, dim=-1)

    def sample_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.dim,)

    def image_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        raise ValueError("a CLIP-embedding model draws embeddings, not images: give the model its image_shape.")


__all__ = ["NORMALISATIONS", "CLIPImageSpace"]
