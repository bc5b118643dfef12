"""DiagonalGaussianBottleneck, latent diffusion's KL regulariser: the KL against torch.distributions,
μ in eval, N(μ, σ²) samples in training, LDM's clamp of log σ², and gradients to both halves."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from lit_genvision.methods.quantizers import DiagonalGaussianBottleneck, gaussian_kl


def moments(b: int = 3, d: int = 4, s: int = 5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 2 * d, s, s, generator=g)


def test_the_kl_is_the_closed_form_summed_per_image_and_averaged_over_the_batch():
    h = moments()
    mean, logvar = h[:, :4], h[:, 4:]
    per_element = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0))  # (B, d, s, s)
    expected = per_element.sum((1, 2, 3)).mean()
    torch.testing.assert_close(gaussian_kl(mean, logvar), per_element.sum((1, 2, 3)))
    bottleneck = DiagonalGaussianBottleneck(4, kl_weight=0.25)
    for mode in (True, False):  # the loss is the same in training and eval
        _, indices, aux = bottleneck.train(mode)(h)
        torch.testing.assert_close(aux.loss, 0.25 * expected)
        assert aux.losses == {"kl": aux.loss} and indices is None
        assert aux.perplexity is None and aux.utilisation is None


def test_the_default_weight_is_ldms():
    assert DiagonalGaussianBottleneck(3).kl_weight == 1e-6


def test_eval_returns_the_mean_exactly():
    h = moments()
    bottleneck = DiagonalGaussianBottleneck(4).eval()
    z, _, _ = bottleneck(h)
    assert torch.equal(z, h[:, :4]) and torch.equal(bottleneck.mode(h), h[:, :4])


def test_training_samples_have_the_posteriors_mean_and_std():
    torch.manual_seed(0)
    mean, logvar = torch.tensor([1.5, -2.0]), torch.tensor([0.0, 2 * torch.tensor(0.3).log().item()])
    h = torch.cat([mean, logvar]).view(1, 4, 1, 1).expand(20_000, 4, 1, 1)
    z = DiagonalGaussianBottleneck(2).train()(h).z.squeeze(-1).squeeze(-1)  # (N, 2)
    torch.testing.assert_close(z.mean(0), mean, atol=0.03, rtol=0)  # 4 standard errors of 1/√N·σ
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 0.3]), atol=0.02, rtol=0)


def test_logvar_is_clamped_to_ldms_range():
    h = torch.zeros(1, 2, 1, 1)
    h[0, 1] = 100.0  # log σ² far above 20
    _, logvar = DiagonalGaussianBottleneck(1).moments(h)
    assert logvar.item() == 20.0
    h[0, 1] = -100.0
    _, logvar = DiagonalGaussianBottleneck(1).moments(h)
    assert logvar.item() == -30.0
    _, _, aux = DiagonalGaussianBottleneck(1, kl_weight=1.0)(h)
    assert torch.isfinite(aux.loss)  # exp(−100) would underflow, log σ² = −100 would dominate


def test_gradient_reaches_the_mean_and_the_logvar():
    h = moments().requires_grad_(True)
    z, _, aux = DiagonalGaussianBottleneck(4, kl_weight=1.0).train()(h)
    (z.sum() + aux.loss).backward()
    assert h.grad[:, :4].abs().min() > 0 and h.grad[:, 4:].abs().sum() > 0
    h.grad = None
    z, _, _ = DiagonalGaussianBottleneck(4).train()(h)
    z.pow(2).sum().backward()  # through the sample alone: σ·ε carries gradient to log σ²
    assert h.grad[:, 4:].abs().sum() > 0


def test_channels_last_layout_and_a_wrong_width_is_one_clear_error():
    h = moments().movedim(1, -1)  # (B, s, s, 2d)
    z, _, _ = DiagonalGaussianBottleneck(4, channel_dim=-1).eval()(h)
    assert torch.equal(z, h[..., :4])
    with pytest.raises(ValueError, match="expects 2·dim = 8 channels"):
        DiagonalGaussianBottleneck(4)(torch.zeros(1, 4, 2, 2))
    assert DiagonalGaussianBottleneck(4).in_dim == 8
