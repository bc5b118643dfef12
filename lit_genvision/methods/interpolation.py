"""Interpolation between noise tensors: a deterministic sampler maps a path between two noise
images to a path between two generated images."""

from __future__ import annotations

import torch
from torch import Tensor


def slerp(a: Tensor, b: Tensor, alpha: float | Tensor) -> Tensor:
    """Spherical interpolation per sample: sin((1−α)θ)/sin θ · a + sin(αθ)/sin θ · b,
    θ = ∠(a, b) (Shoemake 1985). Gaussian noise has near-constant norm, which slerp keeps and a
    straight line would shrink. a, b: (B, …)."""
    af, bf = a.flatten(1), b.flatten(1)
    cos = (af * bf).sum(1) / (af.norm(dim=1) * bf.norm(dim=1))
    theta = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))  # (B,)
    alpha = torch.as_tensor(alpha, dtype=a.dtype, device=a.device)
    wa = torch.sin((1 - alpha) * theta) / torch.sin(theta)
    wb = torch.sin(alpha * theta) / torch.sin(theta)
    view = (-1,) + (1,) * (a.ndim - 1)
    return wa.view(view) * a + wb.view(view) * b


def interpolate_noise(a: Tensor, b: Tensor, num: int) -> Tensor:
    """``num`` points from a (1, …) to b (1, …) along the great circle, as a batch (num, …)."""
    alphas = torch.linspace(0, 1, num, dtype=a.dtype, device=a.device)
    return torch.cat([slerp(a, b, alpha) for alpha in alphas])
