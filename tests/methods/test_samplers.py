"""DDPM / DDIM samplers; a shared contract every sampler's test subclasses."""

from __future__ import annotations

import pytest
import torch

from lit_genvision.methods import DDIMSampler, DDPMSampler, LinearSchedule, interpolate_noise, slerp, timestep_sequence
from lit_genvision.methods.diffusion import q_sample

T = 40


def linear_net(seed: int = 0):
    """A fixed random affine ε-predictor: enough structure to make every sampler term matter."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(16, 16, generator=g) * 0.2

    def net(x, t, cond):
        flat = x.flatten(1) @ w + 0.001 * t.float()[:, None]
        return flat.view_as(x)

    return net


class SamplerContract:
    def make(self):
        raise NotImplementedError

    def test_output_shape_and_finite(self):
        x = self.make()(linear_net(), LinearSchedule(T), torch.randn(3, 1, 4, 4), steps=7)
        assert x.shape == (3, 1, 4, 4) and torch.isfinite(x).all()

    def test_same_generator_same_samples(self):
        s, noise = LinearSchedule(T), torch.randn(2, 1, 4, 4)
        a = self.make()(linear_net(), s, noise, steps=9, generator=torch.Generator().manual_seed(3))
        b = self.make()(linear_net(), s, noise, steps=9, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    @pytest.mark.parametrize("steps", [0, -1, T + 1])
    def test_out_of_range_steps_rejected(self, steps):
        with pytest.raises(ValueError, match=f"between 1 and {T}"):
            self.make()(linear_net(), LinearSchedule(T), torch.randn(1, 1, 4, 4), steps=steps)

    def test_recovers_data_when_network_is_exact(self):
        """With a perfect x0-oracle for a point mass at x*, every sampler lands on x*."""
        target = torch.full((1, 1, 4, 4), 0.5)
        s = LinearSchedule(T)

        def oracle(xt, t, cond):
            ab = s.alpha_bar(t, xt)
            return (xt - ab.sqrt() * target) / (1 - ab).sqrt()

        x = self.make()(oracle, s, torch.randn(2, 1, 4, 4), steps=10)
        torch.testing.assert_close(x, target.expand(2, -1, -1, -1), atol=1e-4, rtol=0)


class TestDDPM(SamplerContract):
    def make(self):
        return DDPMSampler()

    def test_stochastic_across_generators(self):
        s, noise = LinearSchedule(T), torch.randn(2, 1, 4, 4)
        a = DDPMSampler()(linear_net(), s, noise, generator=torch.Generator().manual_seed(0))
        b = DDPMSampler()(linear_net(), s, noise, generator=torch.Generator().manual_seed(1))
        assert (a - b).abs().max() > 1e-3

    def test_single_full_step_is_ddpm_posterior(self):
        """One step t → t−1 equals μ̃_t(x_t, x̂_0) + √β̃_t z (Ho et al. eq. 7) computed by hand."""
        s = LinearSchedule(T)
        t = 10
        x_t, x0, z = torch.randn(3, 1, 4, 4), torch.rand(3, 1, 4, 4) * 2 - 1, torch.randn(3, 1, 4, 4)
        ab_t, ab_prev = s.alpha_bars[t].float(), s.alpha_bars[t - 1].float()
        beta, alpha = s.betas[t].float(), s.alphas[t].float()
        eps = (x_t - ab_t.sqrt() * x0) / (1 - ab_t).sqrt()
        mu = ab_prev.sqrt() * beta / (1 - ab_t) * x0 + alpha.sqrt() * (1 - ab_prev) / (1 - ab_t) * x_t
        var = beta * (1 - ab_prev) / (1 - ab_t)
        sampler = DDPMSampler()
        sampler.noise = lambda x, g: z
        out = sampler.step(x_t, x0, eps, ab_t.view(1, 1, 1, 1), ab_prev.view(1, 1, 1, 1), None)
        torch.testing.assert_close(out, mu + var.sqrt() * z, atol=1e-5, rtol=1e-5)


class TestDDIM(SamplerContract):
    def make(self):
        return DDIMSampler(eta=0.0)

    def test_eta_zero_is_deterministic(self):
        s, noise = LinearSchedule(T), torch.randn(2, 1, 4, 4)
        a = DDIMSampler(eta=0.0)(linear_net(), s, noise, steps=8, generator=torch.Generator().manual_seed(0))
        b = DDIMSampler(eta=0.0)(linear_net(), s, noise, steps=8, generator=torch.Generator().manual_seed(99))
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    def test_all_steps_eta_one_matches_ddpm_ancestral(self):
        s, noise = LinearSchedule(T), torch.randn(4, 1, 4, 4)
        ddim = DDIMSampler(steps=T, eta=1.0)(linear_net(), s, noise, generator=torch.Generator().manual_seed(5))
        ddpm = DDPMSampler()(linear_net(), s, noise, steps=T, generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(ddim, ddpm, atol=1e-5, rtol=1e-5)

    def test_eta_zero_inverts_the_forward_process_of_one_step(self):
        """η = 0, steps = 1 from t = T−1 gives back x̂_0 exactly (the last step has ᾱ_prev = 1)."""
        s = LinearSchedule(T)
        x0 = torch.rand(2, 1, 4, 4) * 2 - 1
        xt = q_sample(s, x0, torch.full((2,), T - 1), torch.randn(2, 1, 4, 4))

        def oracle(x, t, cond):
            ab = s.alpha_bar(t, x)
            return (x - ab.sqrt() * x0) / (1 - ab).sqrt()

        torch.testing.assert_close(DDIMSampler(steps=1)(oracle, s, xt), x0, atol=1e-4, rtol=0)


def test_timestep_sequence():
    assert timestep_sequence(10, 10) == list(range(9, -1, -1))
    seq = timestep_sequence(1000, 50)
    assert seq[0] == 999 and seq[-1] == 0 and len(set(seq)) == 50 and seq == sorted(seq, reverse=True)


def test_slerp_endpoints_and_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 3, 8, 8, generator=g), torch.randn(1, 3, 8, 8, generator=g)
    torch.testing.assert_close(slerp(a, b, 0.0), a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(slerp(a, b, 1.0), b, atol=1e-5, rtol=1e-5)
    path = interpolate_noise(a, b, 9)
    norms = path.flatten(1).norm(dim=1)
    # slerp between two nearly orthogonal, equal-norm Gaussians keeps the norm; lerp would shrink it ~√2.
    assert norms.min() > 0.9 * min(a.norm(), b.norm())
