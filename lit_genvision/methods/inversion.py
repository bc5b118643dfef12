"""DDIM inversion (Song et al. 2021, §4.3; Dhariwal & Nichol 2021, App. F): the deterministic DDIM update run
forward in time maps a clean x_0 to the x_T from which DDIM (η = 0) decodes it again — what DALL-E 2's variations
start from (unCLIP, Ramesh et al. 2022, §3.1: "invert the image to a latent x_T, then sample with η > 0").

Along the ascending timesteps 0 ≤ τ_S < … < τ_1 ≤ T − 1 the sampler walks in reverse, from the level ᾱ_prev of the
current x (ᾱ = 1 for x_0) to ᾱ_τ:

    ε̂ = ε_θ(x, τ)                                   (the network at the target step: x changes little in one step)
    x̂_0 = (x − √(1 − ᾱ_prev)·ε̂) / √ᾱ_prev
    x ← √ᾱ_τ·x̂_0 + √(1 − ᾱ_τ)·ε̂

which is DDIM's η = 0 step (``samplers.ddim``, eq. 12) solved for the noisier point.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lit_genvision.methods.diffusion import Net, Prediction, to_x0_eps
from lit_genvision.methods.schedules import NoiseSchedule


@torch.no_grad()
def ddim_invert(
    net: Net,
    schedule: NoiseSchedule,
    x0: Tensor,
    timesteps: list[int],
    *,
    cond: dict | None = None,
    prediction: Prediction = "eps",
) -> Tensor:
    """x_0 (B, …) → x at the first of ``timesteps`` (the descending sequence a DDIM sampler walks), by the
    forward DDIM updates above; decoding the result with η = 0 along ``timesteps`` gives back ≈ x_0."""
    x = x0
    ab_prev = torch.ones((), device=x0.device, dtype=x0.dtype)
    for t in reversed(timesteps):
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        ab_t = schedule.alpha_bar(tt, x)
        _, eps = to_x0_eps(prediction, x, net(x, tt, cond), ab_t)
        x0_hat = (x - (1 - ab_prev).sqrt() * eps) / ab_prev.sqrt()
        x = ab_t.sqrt() * x0_hat + (1 - ab_t).sqrt() * eps
        ab_prev = ab_t
    return x


__all__ = ["ddim_invert"]
