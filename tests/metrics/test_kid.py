from __future__ import annotations

import itertools

import pytest
import torch

from lit_genvision.metrics.kid import kernel_inception_distance, polynomial_mmd2_unbiased


def test_mmd_matches_the_formula_term_by_term():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g, dtype=torch.float64) + 1

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(5), 2)) / (5 * 4)
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(4), 2)) / (4 * 3)
    xy = sum(k(a, b) for a in x for b in y) / (5 * 4)
    assert polynomial_mmd2_unbiased(x, y).item() == pytest.approx((xx + yy - 2 * xy).item(), rel=1e-10)


def test_unbiased_on_two_draws_of_one_distribution():
    """E[MMD²_u] = 0 when both sets come from one distribution: the mean over many independent
    draws sits within three standard errors of zero (a biased V-statistic would sit above)."""
    g = torch.Generator().manual_seed(0)
    vals = torch.stack(
        [
            polynomial_mmd2_unbiased(
                torch.randn(30, 8, generator=g, dtype=torch.float64),
                torch.randn(30, 8, generator=g, dtype=torch.float64),
            )
            for _ in range(400)
        ]
    )
    se = vals.std() / len(vals) ** 0.5
    assert abs(vals.mean()) < 3 * se


def test_kid_separates_different_distributions():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g) + 0.5
    same, _ = kernel_inception_distance(x, torch.randn(300, 8, generator=g), subsets=20, subset_size=100)
    diff, _ = kernel_inception_distance(x, y, subsets=20, subset_size=100)
    assert diff > 0.05 > abs(same)
