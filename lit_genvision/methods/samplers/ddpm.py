"""DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), on any subsequence of timesteps.

For consecutive timesteps t → t' (t' < t) with β' = 1 − ᾱ_t/ᾱ_{t'} (β_t when t' = t − 1):
    (1) μ̃ = √ᾱ_{t'} β' / (1 − ᾱ_t) · x̂_0 + √(1 − β') (1 − ᾱ_{t'}) / (1 − ᾱ_t) · x_t     (eq. 7)
    (2) σ² = β̃ = (1 − ᾱ_{t'}) / (1 − ᾱ_t) · β'                                            (eq. 7)
    (3) x_{t'} = μ̃ + σ z,  z ~ N(0, I)  (σ = 0 at the last step)
Using fewer steps than T is the respacing of Nichol & Dhariwal 2021 §4.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lit_genvision.methods.samplers.base import Sampler


class DDPMSampler(Sampler):
    """Ancestral sampler; ``steps=None`` walks all T steps."""

    def step(
        self, x_t: Tensor, x0: Tensor, eps: Tensor, ab_t: Tensor, ab_prev: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        beta = 1 - ab_t / ab_prev
        mean = ab_prev.sqrt() * beta / (1 - ab_t) * x0 + (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab_t) * x_t  # (1)
        var = (1 - ab_prev) / (1 - ab_t) * beta  # (2)
        return mean + var.sqrt() * self.noise(x_t, generator)  # (3)
