"""DDIM sampling (Song, Meng & Ermon 2021, eq. 12 and 16).

For consecutive timesteps t → t':
    (1) σ = η · √((1 − ᾱ_{t'}) / (1 − ᾱ_t)) · √(1 − ᾱ_t / ᾱ_{t'})                       (eq. 16)
    (2) x_{t'} = √ᾱ_{t'} x̂_0 + √(1 − ᾱ_{t'} − σ²) · ε̂ + σ z                            (eq. 12)
η = 0 is deterministic; η = 1 with every step is DDPM's ancestral step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lit_genvision.checks import check_float
from lit_genvision.methods.samplers.base import Sampler


class DDIMSampler(Sampler):
    """DDIM with ``steps`` evenly spaced steps and stochasticity ``eta``."""

    def __init__(self, steps: int | None = 50, eta: float = 0.0, clip_denoised: bool = True) -> None:
        super().__init__(steps, clip_denoised)
        check_float("eta", eta, low=0, hint="pass 0 for deterministic DDIM or 1 for DDPM-like noise")
        self.eta = eta

    def step(
        self, x_t: Tensor, x0: Tensor, eps: Tensor, ab_t: Tensor, ab_prev: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        sigma = self.eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)).sqrt()  # (1)
        x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps  # (2)
        if self.eta > 0:
            x = x + sigma * self.noise(x_t, generator)
        return x

    @property
    def name(self) -> str:
        return f"ddim(eta={self.eta:g})"

    def __repr__(self) -> str:
        return f"DDIMSampler(steps={self.steps}, eta={self.eta})"
