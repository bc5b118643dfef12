"""Autoencoder and VAE math (Kingma & Welling 2014), in the lecture's notation.

The encoder predicts z_mean (μ) and z_log_var (log σ²); z = μ + σ·ε, ε ~ N(0, I); the KL term
toward N(0, I) is D_KL = −½ Σ (1 + log σ² − μ² − σ²).

A learned prior replaces N(0, I) by a mixture of K diagonal Gaussians
p(z) = Σ_k π_k N(z; μ_k, diag σ_k²), π = softmax(logits) (Dilokthanakul et al. 2016; Tomczak &
Welling 2018 §2): the prior follows the aggregate posterior instead of forcing it into one ball,
so samples from it land where the decoder was trained. Its KL has no closed form and is estimated
with the sample z ~ q(z|x) the reconstruction already uses: D_KL ≈ log q(z|x) − log p(z).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_genvision.methods.diffusion import randn_like

Reconstruction = Literal["mse", "bce"]


def reparameterize(z_mean: Tensor, z_log_var: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """z = μ + exp(½ log σ²)·ε: a sample of N(μ, σ²) that gradients flow through."""
    return z_mean + torch.exp(0.5 * z_log_var) * randn_like(z_mean, generator)


def kl_divergence(z_mean: Tensor, z_log_var: Tensor) -> Tensor:
    """D_KL[N(μ, σ²) ‖ N(0, I)] = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²), per sample (B,).

    The sum runs over every axis but the batch: a VAE's latent (B, D) and latent diffusion's KL bottleneck
    (B, d, h, w) (``methods.quantizers.kl``) use this one function, each reducing over the batch as it needs.
    """
    return -0.5 * (1 + z_log_var - z_mean.pow(2) - z_log_var.exp()).flatten(1).sum(dim=1)


def gaussian_log_prob(z: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """log N(z; μ, diag σ²) = −½ Σ_j [log 2π + log σ_j² + (z_j − μ_j)² / σ_j²], summed over the last dim."""
    return -0.5 * (math.log(2 * math.pi) + log_var + (z - mean).pow(2) * torch.exp(-log_var)).sum(-1)


def mixture_log_prob(z: Tensor, logits: Tensor, means: Tensor, log_vars: Tensor) -> Tensor:
    """log p(z) = logsumexp_k [log π_k + log N(z; μ_k, diag σ_k²)], π = softmax(logits).

    z (B, D); logits (K,); means and log_vars (K, D) → (B,).
    """
    per_component = gaussian_log_prob(z[:, None, :], means, log_vars)  # (B, K)
    return torch.logsumexp(per_component + logits.log_softmax(0), dim=1)


def kl_monte_carlo(z: Tensor, z_mean: Tensor, z_log_var: Tensor, log_prior: Tensor) -> Tensor:
    """D_KL[q(z|x) ‖ p(z)] ≈ log q(z|x) − log p(z) at one z ~ q(z|x), per sample (B,).

    ``log_prior`` is log p(z) at that z (B,); unbiased, and exact in expectation over z.
    """
    return gaussian_log_prob(z, z_mean, z_log_var) - log_prior


def sample_mixture(
    num: int, logits: Tensor, means: Tensor, log_vars: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """z ~ Σ_k π_k N(μ_k, diag σ_k²): k ~ Categorical(π), then z = μ_k + σ_k·ε. (num, D)."""
    probs = logits.softmax(0).to(generator.device if generator is not None else logits.device)
    k = torch.multinomial(probs, num, replacement=True, generator=generator).to(means.device)
    return reparameterize(means[k], log_vars[k], generator)


def reconstruction_loss(kind: Reconstruction, out: Tensor, x: Tensor) -> Tensor:
    """Per-sample reconstruction error summed over pixels (B,), for x in [-1, 1].

    ``mse``: ‖tanh(out) − x‖²; ``bce``: binary cross-entropy of sigmoid(out) against (x + 1)/2.
    """
    if kind == "mse":
        return (torch.tanh(out) - x).pow(2).flatten(1).sum(1)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(out, (x + 1) / 2, reduction="none").flatten(1).sum(1)
    raise ValueError(f"reconstruction must be mse or bce, got {kind!r}.")


def to_image(kind: Reconstruction, out: Tensor) -> Tensor:
    """Decoder output → image in [-1, 1] under the reconstruction's reading (tanh or 2σ − 1)."""
    return torch.tanh(out) if kind == "mse" else 2 * torch.sigmoid(out) - 1


def kl_weight(step: int, beta: float = 1.0, warmup_steps: int = 0) -> float:
    """β·min(1, step / warmup_steps): the KL term is phased in over the first steps (Bowman et al. 2016)."""
    return beta if warmup_steps <= 0 else beta * min(1.0, step / warmup_steps)


def attribute_vector(z: Tensor, has_attribute: Tensor, without: Tensor | None = None) -> Tensor:
    """v = mean(z | attribute) − mean(z | not attribute) (the lecture's v_smiling); ``without``
    narrows the second set (e.g. only the images of a "1" for a 1 → 7 direction)."""
    has = has_attribute.bool()
    other = ~has if without is None else without.bool()
    if not has.any() or not other.any():
        raise ValueError("the attribute vector needs images with and without the attribute.")
    return z[has].mean(0) - z[other].mean(0)
