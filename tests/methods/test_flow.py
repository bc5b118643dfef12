"""Flow-matching paths, loss, ODE solvers and guidance against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from lit_genvision.methods.flow import LinearPath, VPPath, dopri5, flow_matching_loss, sample_times, solve
from lit_genvision.methods.flow.loss import TIME_SCALE
from lit_genvision.methods.guidance import classifier_free_guidance, drop_labels

G = torch.Generator().manual_seed(0)


def test_linear_path_closed_form():
    x0, x1, t = torch.randn(4, 3, generator=G), torch.randn(4, 3, generator=G), torch.tensor([0.0, 0.25, 0.5, 1.0])
    p = LinearPath()
    torch.testing.assert_close(p.sample(x0, x1, t), (1 - t)[:, None] * x0 + t[:, None] * x1)
    torch.testing.assert_close(p.velocity(x0, x1, t), x1 - x0)


@pytest.mark.parametrize("path", [LinearPath(), VPPath()], ids=["linear", "vp"])
def test_velocity_is_the_time_derivative_of_the_path(path):
    x0, x1 = torch.randn(5, 2, dtype=torch.float64, generator=G), torch.randn(5, 2, dtype=torch.float64, generator=G)
    t = torch.rand(5, dtype=torch.float64, generator=G) * 0.9 + 0.05
    h = 1e-6
    numeric = (path.sample(x0, x1, t + h) - path.sample(x0, x1, t - h)) / (2 * h)
    torch.testing.assert_close(path.velocity(x0, x1, t), numeric, rtol=1e-6, atol=1e-8)


def test_vp_path_preserves_variance_and_matches_cosine_diffusion():
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    p = VPPath()
    torch.testing.assert_close(p.alpha(t) ** 2 + p.sigma(t) ** 2, torch.ones_like(t))
    torch.testing.assert_close(p.alpha(t), torch.cos(math.pi / 2 * t))


def test_time_sampling():
    u = sample_times(20_000, "uniform", generator=torch.Generator().manual_seed(0))
    ln = sample_times(20_000, "logit_normal", generator=torch.Generator().manual_seed(0))
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert abs(ln.mean() - 0.5) < 0.01 and (ln < 0.1).float().mean() < (u < 0.1).float().mean() / 2
    with pytest.raises(ValueError, match="uniform or logit_normal"):
        sample_times(3, "cosine")


def test_loss_is_zero_for_the_exact_velocity_of_a_point_mass():
    c = torch.full((8, 1, 2, 2), 0.3)
    path = LinearPath()

    def oracle(x, t_scaled, cond):  # x_t = (1−t)c + t x1  ⇒  u = x1 − c = (x_t − c)/t
        t = (t_scaled / TIME_SCALE).view(-1, 1, 1, 1)
        return (x - c) / t

    assert flow_matching_loss(oracle, path, c).item() < 1e-8


def _linear_ode():
    lam = -1.3
    return (lambda x, t: lam * x), (lambda x1: x1 * math.exp(lam * (0.0 - 1.0)))


@pytest.mark.parametrize("name, order", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_fixed_step_solvers_converge_at_their_order(name, order):
    f, exact = _linear_ode()
    x1 = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    errors = [(solve(name, f, x1, 1.0, 0.0, steps=n).x - exact(x1)).abs().max().item() for n in (8, 16, 32)]
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    for r in ratios:
        assert 2**order * 0.85 < r < 2**order * 1.15, (errors, ratios)


@pytest.mark.parametrize("name, nfe_per_step", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_nfe_counts(name, nfe_per_step):
    calls = []

    def f(x, t):
        calls.append(1)
        return -x

    assert solve(name, f, torch.ones(1, 1), 1.0, 0.0, steps=5).nfe == len(calls) == 5 * nfe_per_step


def test_solvers_handle_time_dependent_fields():
    x = torch.zeros(1, 1, dtype=torch.float64)
    out = solve("rk4", lambda x, t: torch.cos(t)[:, None].expand_as(x), x, 1.0, 0.0, steps=20).x
    assert out.item() == pytest.approx(math.sin(0.0) - math.sin(1.0), abs=1e-8)


@pytest.mark.parametrize("tol", [1e-3, 1e-5, 1e-7])
def test_dopri5_meets_its_tolerance(tol):
    f, exact = _linear_ode()
    x1 = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    res = dopri5(f, x1, 1.0, 0.0, rtol=tol, atol=tol)
    err = (res.x - exact(x1)).abs().max().item()
    assert err <= 10 * tol * (1 + exact(x1).abs().max().item())


def test_dopri5_spends_fewer_evaluations_at_looser_tolerance():
    f, _ = _linear_ode()
    x1 = torch.ones(1, 4, dtype=torch.float64)
    assert dopri5(f, x1, 1.0, 0.0, rtol=1e-2, atol=1e-2).nfe < dopri5(f, x1, 1.0, 0.0, rtol=1e-8, atol=1e-8).nfe


def test_unknown_solver_is_named():
    with pytest.raises(ValueError, match="solver must be one of euler, midpoint, heun, rk4, dopri5"):
        solve("leapfrog", lambda x, t: x, torch.ones(1, 1), 1.0, 0.0)


def _label_net(x, t, cond):
    """Output = x·(1 + label); the null label (10) acts as 'unconditional'."""
    return x * (1 + cond["label"].float().view(-1, 1))


@pytest.mark.parametrize("scale", [0.0, 1.0, 2.5])
def test_classifier_free_guidance_convention(scale):
    x, labels = torch.randn(3, 2, generator=G), torch.tensor([1, 4, 7])
    guided = classifier_free_guidance(_label_net, scale, null_label=10)(x, torch.zeros(3), {"label": labels})
    c = _label_net(x, None, {"label": labels})
    u = _label_net(x, None, {"label": torch.full_like(labels, 10)})
    torch.testing.assert_close(guided, u + scale * (c - u))
    if scale == 0.0:
        torch.testing.assert_close(guided, u)
    if scale == 1.0:
        torch.testing.assert_close(guided, c)


def test_label_dropout_rate():
    labels = torch.zeros(20_000, dtype=torch.long)
    dropped = drop_labels(labels, 0.1, null_label=10, generator=torch.Generator().manual_seed(0))
    assert abs((dropped == 10).float().mean().item() - 0.1) < 0.01
    assert set(dropped.unique().tolist()) == {0, 10}
