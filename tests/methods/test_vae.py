"""VAE math against closed forms and Monte-Carlo estimates."""

from __future__ import annotations

import math

import pytest
import torch

from lit_genvision.methods.vae import attribute_vector, kl_divergence, kl_weight, reconstruction_loss, reparameterize
from lit_genvision.nn import ConvDecoder, ConvEncoder


def test_kl_matches_the_closed_form_term_by_term():
    mu, log_var = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, -0.7]])
    expected = sum(
        0.5 * (m**2 + math.exp(lv) - 1 - lv) for m, lv in zip(mu[0].tolist(), log_var[0].tolist(), strict=True)
    )
    assert kl_divergence(mu, log_var).item() == pytest.approx(expected, rel=1e-6)
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0


def test_kl_matches_a_monte_carlo_estimate():
    g = torch.Generator().manual_seed(0)
    mu, log_var = (
        torch.tensor([[0.8, -0.3, 0.1]], dtype=torch.float64),
        torch.tensor([[-0.5, 0.4, 0.0]], dtype=torch.float64),
    )
    z = reparameterize(mu.expand(400_000, -1), log_var.expand(400_000, -1), g)
    var = log_var.exp()
    log_q = (-0.5 * ((z - mu) ** 2 / var + log_var + math.log(2 * math.pi))).sum(1)
    log_p = (-0.5 * (z**2 + math.log(2 * math.pi))).sum(1)
    assert (log_q - log_p).mean().item() == pytest.approx(kl_divergence(mu, log_var).item(), abs=0.01)


def test_reparameterised_sample_has_the_predicted_moments():
    g = torch.Generator().manual_seed(1)
    mu, log_var = torch.tensor([1.5, -2.0]), torch.tensor([math.log(0.25), math.log(4.0)])
    z = reparameterize(mu.expand(200_000, 2), log_var.expand(200_000, 2), g)
    torch.testing.assert_close(z.mean(0), mu, atol=0.02, rtol=0)
    torch.testing.assert_close(z.var(0), log_var.exp(), rtol=0.02, atol=0)


def test_gradients_flow_through_the_sample():
    mu, log_var = torch.zeros(4, 2, requires_grad=True), torch.zeros(4, 2, requires_grad=True)
    reparameterize(mu, log_var).sum().backward()
    assert mu.grad is not None and log_var.grad is not None and log_var.grad.abs().sum() > 0


def test_reconstruction_losses_and_warmup():
    x = torch.tensor([[[[-1.0, 1.0]]]])
    big = torch.tensor([[[[-50.0, 50.0]]]])
    assert reconstruction_loss("mse", big, x).item() == pytest.approx(0.0, abs=1e-6)
    assert reconstruction_loss("bce", big, x).item() == pytest.approx(0.0, abs=1e-6)
    assert reconstruction_loss("bce", torch.zeros_like(x), x).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert [kl_weight(s, 2.0, 10) for s in (0, 5, 10, 20)] == [0.0, 1.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="mse or bce"):
        reconstruction_loss("l1", x, x)


def test_attribute_vector_of_a_synthetic_attribute_is_recovered():
    g = torch.Generator().manual_seed(2)
    direction = torch.tensor([3.0, -1.0, 0.5, 0.0])
    has = torch.rand(5000, generator=g) < 0.3
    z = torch.randn(5000, 4, generator=g) + has[:, None] * direction
    torch.testing.assert_close(attribute_vector(z, has), direction, atol=0.1, rtol=0)
    with pytest.raises(ValueError, match="with and without"):
        attribute_vector(z, torch.ones(5000, dtype=torch.bool))


def test_autoencoder_overfits_a_small_batch():
    torch.manual_seed(0)
    enc, dec = ConvEncoder(1, 16, (16, 32), out_dim=8), ConvDecoder(1, 16, (32, 16), latent_dim=8)
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=3e-3)
    first = None
    for _ in range(300):
        loss = reconstruction_loss("mse", dec(enc(x)), x).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    enc.eval(), dec.eval()
    assert reconstruction_loss("mse", dec(enc(x)), x).mean().item() < 0.05 * first
