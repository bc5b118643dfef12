"""The space a diffusion or flow model samples in: pixels, or the latents of a frozen autoencoder.

The diffusion and flow math never knows which: a model encodes its training images into the space,
runs the method there, and decodes samples back to images. What differs is a property of the space:

- pixels are bounded: x ∈ [-1, 1], so a sampler may clip its x̂_0 estimate to [-1, 1] (Ho et al.
  2020's ``clip_denoised``) and the output is clamped to the image range;
- latents are not: z = s·E(x) has no fixed range, so x̂_0 is never clipped there (clipping a latent
  to [-1, 1] destroys it) and only the decoded image D(z / s) is clamped.

``LatentSpace`` is Rombach et al. 2022's first stage: E and D of an autoencoder, frozen, with the
scale factor s = 1 / std(E(x)) over training images (LDM's ``scale_by_std``) so that the latents
the method sees have unit variance like the pixels it was designed for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Protocol

import torch
from torch import Tensor, nn


class SampleSpace(Protocol):
    """Where a model's method runs: ``encode`` images into it, ``decode`` samples back to images."""

    #: True for a bounded space (pixels in [-1, 1]): samplers clip x̂_0 to it.
    bounded: bool

    def encode(self, images: Tensor) -> Tensor: ...

    def decode(self, x: Tensor) -> Tensor: ...

    def sample_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]: ...

    def image_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]: ...


class PixelSpace(nn.Module):
    """Images in [-1, 1] themselves: encode is the identity, decode clamps to the image range."""

    bounded = True

    def encode(self, images: Tensor) -> Tensor:
        return images

    def decode(self, x: Tensor) -> Tensor:
        return x.clamp(-1, 1)

    def sample_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(image_shape)

    def image_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sample_shape)


class LatentSpace(nn.Module):
    """z = s·E(x) and x = D(z / s) through a frozen autoencoder (Rombach et al. 2022, §3 and §4.3.2).

    Args:
        autoencoder: a module with ``encode(images) -> latents`` (a VAE's posterior mean) and
            ``decode(latents) -> images``; it is frozen (no gradient, always in eval mode) and its
            weights travel in the model's checkpoint, as LDM's ``first_stage_model`` does.
        scale_factor: s; None leaves it unset (NaN) until ``fit_scale`` measures it. It is a buffer,
            so it is saved and restored with the checkpoint.
    """

    bounded = False

    def __init__(self, autoencoder: nn.Module, scale_factor: float | None = None) -> None:
        super().__init__()
        self.autoencoder = autoencoder.requires_grad_(False).eval()
        value = math.nan if scale_factor is None else float(scale_factor)
        if not math.isnan(value) and not (value > 0 and math.isfinite(value)):
            raise ValueError(f"scale_factor must be a positive number (1 / std of the latents), got {scale_factor!r}.")
        self.register_buffer("scale_factor", torch.tensor(value))

    def train(self, mode: bool = True) -> LatentSpace:
        """The frozen autoencoder stays in eval mode whatever the model around it does."""
        super().train(mode)
        self.autoencoder.eval()
        return self

    @property
    def is_scaled(self) -> bool:
        return not bool(torch.isnan(self.scale_factor))

    @torch.no_grad()
    def fit_scale(self, batches: Iterable[Tensor]) -> float:
        """s = 1 / std of E(x) over every element of ``batches`` (images in [-1, 1]); returns s."""
        total, total_sq, count = 0.0, 0.0, 0
        for images in batches:
            z = self.autoencoder.encode(images).double()
            total, total_sq, count = total + z.sum().item(), total_sq + z.pow(2).sum().item(), count + z.numel()
        if count < 2:
            raise ValueError("fit_scale needs at least one batch of images to measure the latents' spread.")
        var = max(total_sq / count - (total / count) ** 2, 0.0)
        if var <= 0:
            raise ValueError("the autoencoder's latents have zero variance on these images; check its checkpoint.")
        self.scale_factor.fill_(1.0 / math.sqrt(var))
        return float(self.scale_factor)

    def _scale(self) -> Tensor:
        if not self.is_scaled:
            raise RuntimeError("this latent space has no scale factor yet; call fit_scale on training images first.")
        return self.scale_factor

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        return self.autoencoder.encode(images) * self._scale()

    @torch.no_grad()
    def decode(self, x: Tensor) -> Tensor:
        return self.autoencoder.decode(x / self._scale()).clamp(-1, 1)

    @torch.no_grad()
    def sample_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The latent shape of an image of ``image_shape``, found by encoding one blank image."""
        device = self.scale_factor.device
        return tuple(self.autoencoder.encode(torch.zeros(1, *image_shape, device=device)).shape[1:])

    @torch.no_grad()
    def image_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The decoded image shape of a latent of ``sample_shape``, found by decoding one zero latent."""
        device = self.scale_factor.device
        return tuple(self.autoencoder.decode(torch.zeros(1, *sample_shape, device=device)).shape[1:])
