"""The Fréchet distance between Gaussians fitted to two feature sets (FID's statistic;
Heusel et al. 2017), with streaming statistics so memory stays flat in the sample count."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


class SingularCovarianceError(ValueError):
    """Too few samples for a full-rank covariance in the feature space."""


@dataclass
class GaussianStats:
    """Mean (D,) and covariance (D, D) of n feature vectors, float64."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int


class FeatureStats:
    """Running sums Σx and Σxxᵀ in float64: add batches, read mean and unbiased covariance."""

    def __init__(self, dim: int) -> None:
        self.dim, self.n = dim, 0
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64)

    def update(self, features: Tensor) -> None:
        f = features.detach().to("cpu", torch.float64).reshape(len(features), -1)  # (B, D)
        self.n += len(f)
        self.sum += f.sum(0)
        self.outer += f.T @ f

    def finalize(self) -> GaussianStats:
        if self.n <= self.dim:
            raise SingularCovarianceError(
                f"{self.n} samples give a singular covariance in a {self.dim}-dimensional feature space; "
                f"use more than {self.dim} samples (--num)."
            )
        mu = self.sum / self.n
        sigma = (self.outer - self.n * torch.outer(mu, mu)) / (self.n - 1)
        return GaussianStats(mu.numpy(), sigma.numpy(), self.n)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """d² = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}).

    Tr((Σ_a Σ_b)^{1/2}) is computed as Tr((Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2}), a symmetric PSD
    square root by eigendecomposition (same eigenvalues, no complex round-off).
    """
    root_a = _sqrtm_psd(a.sigma)
    middle = root_a @ b.sigma @ root_a
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * tr_covmean)
