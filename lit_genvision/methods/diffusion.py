"""Denoising diffusion: the forward process, the network's parameterisations, and the training loss.

Ho et al. 2020 (DDPM), Algorithm 1; v-prediction from Salimans & Ho 2022.
All functions take the network as a callable ``net(x_t, t, cond) -> Tensor``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_genvision.methods.schedules import NoiseSchedule

Prediction = Literal["eps", "v", "x0"]
Net = Callable[[Tensor, Tensor, "dict | None"], Tensor]


def randn_like(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard normal noise of x's shape, drawn on the generator's device, returned on x's."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def q_sample(schedule: NoiseSchedule, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """x_t ~ q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I), reparameterised as √ᾱ_t x_0 + √(1 − ᾱ_t) ε."""
    ab = schedule.alpha_bar(t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def prediction_target(prediction: Prediction, x0: Tensor, noise: Tensor, alpha_bar: Tensor) -> Tensor:
    """What the network regresses: ε, x_0, or v = √ᾱ ε − √(1−ᾱ) x_0."""
    if prediction == "eps":
        return noise
    if prediction == "x0":
        return x0
    if prediction == "v":
        return alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0
    raise ValueError(f"prediction must be one of eps, v, x0, got {prediction!r}.")


def to_x0_eps(prediction: Prediction, x_t: Tensor, out: Tensor, alpha_bar: Tensor) -> tuple[Tensor, Tensor]:
    """Convert the network output to (x̂_0, ε̂) using x_t = √ᾱ x_0 + √(1−ᾱ) ε."""
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    if prediction == "eps":
        return (x_t - s * out) / a, out
    if prediction == "x0":
        return out, (x_t - a * out) / s
    if prediction == "v":
        return a * x_t - s * out, s * x_t + a * out
    raise ValueError(f"prediction must be one of eps, v, x0, got {prediction!r}.")


def diffusion_loss(
    net: Net,
    schedule: NoiseSchedule,
    x0: Tensor,
    *,
    prediction: Prediction = "eps",
    cond: dict | None = None,
    generator: torch.Generator | None = None,
    min_snr_gamma: float | None = None,
) -> Tensor:
    """Algorithm 1: t ~ U{1..T}, ε ~ N(0, I), loss ‖target − net(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖²
    (mean over elements; target ε by default).

    ``min_snr_gamma`` γ weights each sample by Min-SNR-γ (Hang et al. 2023, eq. 9), with SNR_t = ᾱ_t/(1 − ᾱ_t):
    the x₀-space weight min(SNR_t, γ) expressed for the target regressed, i.e. min(SNR_t, γ)/SNR_t for ε,
    min(SNR_t, γ)/(SNR_t + 1) for v and min(SNR_t, γ) for x₀."""
    b = x0.shape[0]
    device = generator.device if generator is not None else x0.device
    t = torch.randint(0, schedule.timesteps, (b,), generator=generator, device=device).to(x0.device)
    noise = randn_like(x0, generator)
    x_t = q_sample(schedule, x0, t, noise)
    alpha_bar = schedule.alpha_bar(t, x0)  # (B, 1, …)
    target = prediction_target(prediction, x0, noise, alpha_bar)
    if min_snr_gamma is None:
        return F.mse_loss(net(x_t, t, cond), target)
    per_sample = (net(x_t, t, cond) - target).square().flatten(1).mean(1)  # (B,)
    return (min_snr_weight(prediction, alpha_bar.flatten(), min_snr_gamma) * per_sample).mean()


def min_snr_weight(prediction: Prediction, alpha_bar: Tensor, gamma: float) -> Tensor:
    """Min-SNR-γ loss weights (B,) for the target ``prediction`` at ᾱ_t (B,) (Hang et al. 2023)."""
    snr = alpha_bar / (1 - alpha_bar)
    clipped = snr.clamp(max=gamma)
    if prediction == "eps":
        return clipped / snr
    if prediction == "v":
        return clipped / (snr + 1)
    if prediction == "x0":
        return clipped
    raise ValueError(f"prediction must be one of eps, v, x0, got {prediction!r}.")
