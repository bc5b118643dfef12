"""GAN objectives and regularisers, each a small function of discriminator outputs (logits or
critic scores), averaged over the batch.

Minimax (Goodfellow et al. 2014):   max_D E log D(x) + E log(1 − D(G(z))),   min_G E log(1 − D(G(z)))
Non-saturating generator:           max_G E log D(G(z))
Hinge (Lim & Ye 2017):              D: E max(0, 1 − D(x)) + E max(0, 1 + D(G(z))),   G: −E D(G(z))
Wasserstein (Arjovsky et al. 2017): D: E D(G(z)) − E D(x),   G: −E D(G(z))
with D(x) = sigmoid(logit) for the first two, so log D = −softplus(−logit), log(1 − D) = −softplus(logit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

GANLoss = Literal["minimax", "non_saturating", "hinge", "wasserstein"]


def d_loss(kind: GANLoss, real: Tensor, fake: Tensor) -> Tensor:
    """The discriminator's (critic's) loss to minimise."""
    if kind in ("minimax", "non_saturating"):
        return F.softplus(-real).mean() + F.softplus(fake).mean()  # −[log D(x) + log(1 − D(G(z)))]
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wasserstein":
        return fake.mean() - real.mean()
    raise ValueError(f"GAN loss must be minimax, non_saturating, hinge or wasserstein, got {kind!r}.")


def g_loss(kind: GANLoss, fake: Tensor) -> Tensor:
    """The generator's loss to minimise."""
    if kind == "minimax":
        return -F.softplus(fake).mean()  # E log(1 − D(G(z)))
    if kind == "non_saturating":
        return F.softplus(-fake).mean()  # −E log D(G(z))
    if kind in ("hinge", "wasserstein"):
        return -fake.mean()
    raise ValueError(f"GAN loss must be minimax, non_saturating, hinge or wasserstein, got {kind!r}.")


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """E[(‖∇_x̂ D(x̂)‖₂ − 1)²] at x̂ = ε x + (1 − ε) x̃, ε ~ U[0, 1] per sample (Gulrajani et al. 2017,
    Algorithm 1; multiply by λ = 10)."""
    gdev = generator.device if generator is not None else real.device
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), generator=generator, device=gdev).to(real)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """E‖∇_x D(x)‖² on real data (Mescheder et al. 2018; multiply by γ/2)."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()
