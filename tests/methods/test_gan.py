"""GAN losses against their formulas, the gradient penalty, and the frozen side of a step."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lit_genvision.methods.gan import d_loss, g_loss, gradient_penalty, r1_penalty


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_losses_match_their_formulas_on_known_inputs():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    d_minimax = (
        -sum(math.log(sigmoid(r)) for r in real.tolist()) / 2 - sum(math.log(1 - sigmoid(f)) for f in fake.tolist()) / 2
    )
    assert d_loss("minimax", real, fake).item() == pytest.approx(d_minimax, rel=1e-6)
    assert d_loss("non_saturating", real, fake).item() == pytest.approx(d_minimax, rel=1e-6)
    assert g_loss("minimax", fake).item() == pytest.approx(sum(math.log(1 - sigmoid(f)) for f in fake.tolist()) / 2)
    assert g_loss("non_saturating", fake).item() == pytest.approx(-sum(math.log(sigmoid(f)) for f in fake.tolist()) / 2)
    assert d_loss("hinge", real, fake).item() == pytest.approx(((0 + 2) + (1.5 + 0)) / 2)
    assert g_loss("hinge", fake).item() == pytest.approx(1.25)
    assert d_loss("wasserstein", real, fake).item() == pytest.approx(-1.25 - 0.5)
    assert g_loss("wasserstein", fake).item() == pytest.approx(1.25)
    with pytest.raises(ValueError, match="minimax, non_saturating, hinge or wasserstein"):
        d_loss("lsgan", real, fake)


def test_non_saturating_gradient_stays_large_where_minimax_vanishes():
    """When D confidently rejects fakes (logit −8), log(1 − D) is flat; −log D is not."""
    fake = torch.tensor([-8.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(g_loss("minimax", fake), fake)
    (g_ns,) = torch.autograd.grad(g_loss("non_saturating", fake), fake)
    assert abs(g_mm.item()) < 1e-3 < 0.9 < abs(g_ns.item())


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic_and_positive_otherwise():
    torch.manual_seed(0)
    w = torch.randn(3 * 4 * 4)
    real, fake = torch.randn(8, 3, 4, 4), torch.randn(8, 3, 4, 4)
    unit = lambda x: x.flatten(1) @ (w / w.norm())  # noqa: E731  1-Lipschitz, gradient norm exactly 1
    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    steep = lambda x: x.flatten(1) @ (3 * w / w.norm())  # noqa: E731  gradient norm 3 → (3 − 1)² = 4
    assert gradient_penalty(steep, real, fake).item() == pytest.approx(4.0, rel=1e-5)


def test_r1_penalty_of_a_linear_critic_is_its_squared_weight_norm():
    w = torch.tensor([1.0, 2.0, 2.0])
    assert r1_penalty(lambda x: x @ w, torch.randn(5, 3)).item() == pytest.approx(9.0)


def test_gradient_penalty_keeps_the_graph_for_the_critics_update():
    critic = nn.Linear(4, 1)
    gp = gradient_penalty(lambda x: critic(x).squeeze(1), torch.randn(6, 4), torch.randn(6, 4))
    gp.backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0
