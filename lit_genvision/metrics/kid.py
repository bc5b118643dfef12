"""Kernel Inception Distance (Bińkowski et al. 2018): the unbiased MMD² with the cubic
polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged over random subsets."""

from __future__ import annotations

import torch
from torch import Tensor


def polynomial_mmd2_unbiased(x: Tensor, y: Tensor) -> Tensor:
    """MMD²_u = Σ_{i≠j} k(x_i, x_j)/(m(m−1)) + Σ_{i≠j} k(y_i, y_j)/(n(n−1)) − 2 Σ_{i,j} k(x_i, y_j)/(mn)."""
    d = x.shape[1]
    m, n = len(x), len(y)
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    return (
        (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
        + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
        - 2 * kxy.mean()
    )


def kernel_inception_distance(
    x: Tensor, y: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Mean and standard deviation of MMD²_u over ``subsets`` random subsets of each set
    (subset size capped at the smaller set), in float64."""
    x, y = x.double(), y.double()
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise ValueError("KID needs at least 2 samples in each set.")
    g = torch.Generator().manual_seed(seed)
    values = torch.stack(
        [
            polynomial_mmd2_unbiased(
                x[torch.randperm(len(x), generator=g)[:size]], y[torch.randperm(len(y), generator=g)[:size]]
            )
            for _ in range(subsets)
        ]
    )
    return values.mean().item(), values.std().item() if subsets > 1 else 0.0
