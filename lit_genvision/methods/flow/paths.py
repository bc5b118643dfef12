"""Probability paths between data x_0 and noise x_1 ~ N(0, I) (Lipman et al. 2023; Liu et al.
2023), in the affine form that diffusion and flow matching share:

    x_t = α_t x_0 + σ_t x_1,    u_t = dx_t/dt = α'_t x_0 + σ'_t x_1,    t ∈ [0, 1]

t = 0 is data, t = 1 is noise; generation integrates dx/dt = v_θ(x, t) from t = 1 to t = 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _view(t: Tensor, like: Tensor) -> Tensor:
    return t.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


class AffinePath:
    """x_t = α_t x_0 + σ_t x_1; subclasses give α, σ and their time derivatives."""

    def alpha(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def sigma(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def d_alpha(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def d_sigma(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
        """x_t for per-sample times t (B,)."""
        return _view(self.alpha(t), x0) * x0 + _view(self.sigma(t), x0) * x1

    def velocity(self, x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
        """The conditional velocity target u_t(x_t | x_0, x_1) = α'_t x_0 + σ'_t x_1."""
        return _view(self.d_alpha(t), x0) * x0 + _view(self.d_sigma(t), x0) * x1

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LinearPath(AffinePath):
    """The rectified-flow / conditional-OT path: α_t = 1 − t, σ_t = t, so u_t = x_1 − x_0."""

    def alpha(self, t: Tensor) -> Tensor:
        return 1 - t

    def sigma(self, t: Tensor) -> Tensor:
        return t

    def d_alpha(self, t: Tensor) -> Tensor:
        return -torch.ones_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)


class VPPath(AffinePath):
    """A variance-preserving path, α_t² + σ_t² = 1, with α_t = cos(πt/2), σ_t = sin(πt/2):
    diffusion's q(x_t | x_0) with ᾱ(t) = cos²(πt/2), the cosine schedule without offset
    (Nichol & Dhariwal 2021), seen as a flow."""

    def alpha(self, t: Tensor) -> Tensor:
        return torch.cos(math.pi / 2 * t)

    def sigma(self, t: Tensor) -> Tensor:
        return torch.sin(math.pi / 2 * t)

    def d_alpha(self, t: Tensor) -> Tensor:
        return -math.pi / 2 * torch.sin(math.pi / 2 * t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return math.pi / 2 * torch.cos(math.pi / 2 * t)


def sample_times(
    n: int,
    kind: str = "uniform",
    *,
    mean: float = 0.0,
    std: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Training times t ∈ (0, 1): ``uniform``, or ``logit_normal`` t = sigmoid(m + s·n), n ~ N(0, 1)
    (Esser et al. 2024, §3.1), which spends more samples in the middle of the path."""
    gdev = generator.device if generator is not None else device
    if kind == "uniform":
        t = torch.rand(n, generator=generator, device=gdev)
    elif kind == "logit_normal":
        t = torch.sigmoid(mean + std * torch.randn(n, generator=generator, device=gdev))
    else:
        raise ValueError(f"time sampling must be uniform or logit_normal, got {kind!r}.")
    return t.to(device)
