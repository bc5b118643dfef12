"""The forward process and parameterisations against their formulas."""

from __future__ import annotations

import pytest
import torch

from lit_genvision.methods import CosineSchedule, LinearSchedule, diffusion_loss, prediction_target, q_sample, to_x0_eps


@pytest.mark.parametrize("t", [0, 100, 500, 999])
def test_q_sample_moments_by_sampling(t):
    torch.manual_seed(0)
    s = LinearSchedule()
    x0 = torch.tensor([0.7, -0.3])
    n = 200_000
    noise = torch.randn(n, 2)
    xt = q_sample(s, x0.expand(n, 2), torch.full((n,), t), noise)
    ab = s.alpha_bars[t].item()
    torch.testing.assert_close(xt.mean(0), (ab**0.5) * x0, atol=5e-3, rtol=0)
    torch.testing.assert_close(xt.var(0), torch.full((2,), 1 - ab), atol=5e-3, rtol=2e-2)


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_parameterisations_round_trip(prediction):
    g = torch.Generator().manual_seed(1)
    s = CosineSchedule()
    x0, eps = torch.randn(4, 1, 3, 3, generator=g), torch.randn(4, 1, 3, 3, generator=g)
    t = torch.tensor([3, 200, 600, 900])
    ab = s.alpha_bar(t, x0)
    xt = q_sample(s, x0, t, eps)
    x0_hat, eps_hat = to_x0_eps(prediction, xt, prediction_target(prediction, x0, eps, ab), ab)
    torch.testing.assert_close(x0_hat, x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(eps_hat, eps, atol=1e-4, rtol=1e-4)


def test_loss_is_zero_for_the_oracle_and_positive_otherwise():
    s = LinearSchedule(50)
    x0 = torch.zeros(8, 1, 2, 2)

    def oracle(xt, t, cond):  # x0 = 0 ⇒ x_t = √(1−ᾱ) ε, so ε = x_t / √(1−ᾱ)
        return xt / (1 - s.alpha_bar(t, xt)).sqrt()

    assert diffusion_loss(oracle, s, x0).item() == pytest.approx(0.0, abs=1e-10)
    assert diffusion_loss(lambda xt, t, c: torch.zeros_like(xt), s, x0).item() > 0.5


def test_unknown_prediction_is_rejected():
    with pytest.raises(ValueError, match="prediction must be one of"):
        prediction_target("score", torch.zeros(1), torch.zeros(1), torch.ones(1))
