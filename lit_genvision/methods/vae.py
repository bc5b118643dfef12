"""Autoencoder and VAE math (Kingma & Welling 2014), in the lecture's notation.

The encoder predicts z_mean (μ) and z_log_var (log σ²); z = μ + σ·ε, ε ~ N(0, I); the KL term
toward N(0, I) is D_KL = −½ Σ (1 + log σ² − μ² − σ²).
"""

from __future__ import annotations

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
    """D_KL[N(μ, σ²) ‖ N(0, I)] = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²), per sample (B,)."""
    return -0.5 * (1 + z_log_var - z_mean.pow(2) - z_log_var.exp()).sum(dim=1)


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
