"""VAE math against closed forms and Monte-Carlo estimates."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from lit_genvision.methods.quantizers import gaussian_kl
from lit_genvision.methods.vae import (
    attribute_vector,
    gaussian_log_prob,
    kl_divergence,
    kl_monte_carlo,
    kl_weight,
    mixture_log_prob,
    reconstruction_loss,
    reparameterize,
    sample_mixture,
)
from lit_genvision.nn import ConvDecoder, ConvEncoder


def test_kl_matches_the_closed_form_term_by_term():
    mu, log_var = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, -0.7]])
    expected = sum(
        0.5 * (m**2 + math.exp(lv) - 1 - lv) for m, lv in zip(mu[0].tolist(), log_var[0].tolist(), strict=True)
    )
    assert kl_divergence(mu, log_var).item() == pytest.approx(expected, rel=1e-6)
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0


def test_one_kl_serves_the_vae_and_the_kl_bottleneck():
    """Summed over every axis but the batch: (B, D) latents and (B, d, h, w) maps alike."""
    assert gaussian_kl is kl_divergence
    g = torch.Generator().manual_seed(0)
    mu, log_var = torch.randn(3, 4, 5, 5, generator=g), torch.randn(3, 4, 5, 5, generator=g)
    assert torch.equal(kl_divergence(mu, log_var), kl_divergence(mu.flatten(1), log_var.flatten(1)))
    per_element = D.kl_divergence(D.Normal(mu, (0.5 * log_var).exp()), D.Normal(0.0, 1.0))
    torch.testing.assert_close(kl_divergence(mu, log_var), per_element.sum((1, 2, 3)))


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


def test_gaussian_log_prob_matches_torch_distributions():
    g = torch.Generator().manual_seed(3)
    z, mu, log_var = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    expected = D.Independent(D.Normal(mu, (0.5 * log_var).exp()), 1).log_prob(z)
    torch.testing.assert_close(gaussian_log_prob(z, mu, log_var), expected)


def test_mixture_log_prob_matches_torch_mixture_same_family():
    g = torch.Generator().manual_seed(4)
    logits, means, log_vars = (
        torch.randn(5, generator=g),
        torch.randn(5, 3, generator=g),
        torch.randn(5, 3, generator=g),
    )
    z = 2 * torch.randn(7, 3, generator=g)
    reference = D.MixtureSameFamily(
        D.Categorical(logits=logits), D.Independent(D.Normal(means, (0.5 * log_vars).exp()), 1)
    )
    torch.testing.assert_close(mixture_log_prob(z, logits, means, log_vars), reference.log_prob(z))


def test_one_component_mixture_is_that_gaussian_and_monte_carlo_kl_averages_to_the_closed_form():
    g = torch.Generator().manual_seed(5)
    mu = torch.tensor([[0.8, -0.3, 0.1]], dtype=torch.float64).expand(400_000, -1)
    log_var = torch.tensor([[-0.5, 0.4, 0.0]], dtype=torch.float64).expand(400_000, -1)
    z = reparameterize(mu, log_var, g)
    zeros = torch.zeros(1, 3, dtype=torch.float64)
    log_p = mixture_log_prob(z, torch.zeros(1, dtype=torch.float64), zeros, zeros)
    torch.testing.assert_close(log_p, gaussian_log_prob(z, zeros, zeros))
    estimate = kl_monte_carlo(z, mu, log_var, log_p).mean().item()
    assert estimate == pytest.approx(kl_divergence(mu[:1], log_var[:1]).item(), abs=0.01)


def test_mixture_samples_have_the_component_weights_means_and_variances():
    g = torch.Generator().manual_seed(6)
    logits = torch.tensor([0.7, 0.2, 0.1]).log()
    means = torch.tensor([[-20.0, 0.0], [0.0, 20.0], [20.0, 0.0]])
    log_vars = torch.tensor([[0.0, 0.0], [math.log(4.0), 0.0], [0.0, math.log(0.25)]])
    z = sample_mixture(200_000, logits, means, log_vars, g)
    k = torch.cdist(z, means).argmin(1)  # components 20 apart: each sample's nearest mean is its own
    torch.testing.assert_close(torch.bincount(k, minlength=3) / len(z), logits.exp(), atol=0.005, rtol=0)
    for j in range(3):
        torch.testing.assert_close(z[k == j].mean(0), means[j], atol=0.03, rtol=0)
        torch.testing.assert_close(z[k == j].var(0), log_vars[j].exp(), rtol=0.03, atol=0)


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
