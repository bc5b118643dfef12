from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from lit_genvision.metrics.frechet import FeatureStats, GaussianStats, SingularCovarianceError, frechet_distance


def random_stats(rng: np.random.Generator, d: int, shift: float = 0.0) -> GaussianStats:
    a = rng.normal(size=(d, d))
    return GaussianStats(rng.normal(size=d) + shift, a @ a.T / d + 0.1 * np.eye(d), 100)


def scipy_fd(a: GaussianStats, b: GaussianStats) -> float:
    covmean = scipy.linalg.sqrtm(a.sigma @ b.sigma).real
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma + b.sigma - 2 * covmean))


@pytest.mark.parametrize("d", [2, 16, 64])
def test_matches_scipy_sqrtm(d):
    rng = np.random.default_rng(d)
    a, b = random_stats(rng, d), random_stats(rng, d, shift=0.5)
    assert frechet_distance(a, b) == pytest.approx(scipy_fd(a, b), rel=1e-6, abs=1e-8)


def test_equal_covariances_reduce_to_mean_distance():
    rng = np.random.default_rng(0)
    a = random_stats(rng, 8)
    b = GaussianStats(a.mu + 1.5, a.sigma.copy(), 100)
    assert frechet_distance(a, b) == pytest.approx(8 * 1.5**2, rel=1e-9)


def test_a_set_against_itself_is_zero():
    feats = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    s = FeatureStats(16)
    s.update(feats)
    st = s.finalize()
    assert abs(frechet_distance(st, st)) < 1e-8


def test_streaming_stats_equal_one_shot_numpy():
    feats = torch.randn(300, 5, generator=torch.Generator().manual_seed(1)) * 3 + 2
    s = FeatureStats(5)
    for chunk in feats.split(37):
        s.update(chunk)
    st = s.finalize()
    np.testing.assert_allclose(st.mu, feats.double().mean(0).numpy(), rtol=1e-10)
    np.testing.assert_allclose(st.sigma, np.cov(feats.double().numpy(), rowvar=False), rtol=1e-8)


def test_too_few_samples_for_the_feature_dimension_is_named():
    s = FeatureStats(64)
    s.update(torch.randn(50, 64))
    with pytest.raises(SingularCovarianceError, match="50 samples give a singular covariance.*64-dimensional"):
        s.finalize()
