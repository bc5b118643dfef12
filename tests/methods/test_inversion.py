"""DDIM inversion (``methods.inversion``): the forward DDIM walk that the η = 0 sampler undoes."""

from __future__ import annotations

import torch

from lit_genvision.methods import CosineSchedule, DiffusionMethod
from lit_genvision.methods.samplers import DDIMSampler

SIGMA = 0.5  # data x_0 ~ N(0, σ² I)


def gaussian_eps(schedule: CosineSchedule):
    """The exact ε-predictor of Gaussian data: E[ε | x_t] = √(1 − ᾱ)·x_t / (ᾱσ² + 1 − ᾱ)."""

    def net(x, t, cond=None):
        ab = schedule.alpha_bar(t, x)
        return (1 - ab).sqrt() * x / (ab * SIGMA**2 + 1 - ab)

    return net


def test_inverting_then_sampling_at_eta_0_gives_the_data_back_and_the_noise_is_gaussian():
    schedule = CosineSchedule(1000)
    method = DiffusionMethod(schedule, prediction="eps", sampler=DDIMSampler(steps=100, clip_denoised=False))
    net = gaussian_eps(schedule)
    x0 = SIGMA * torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
    x_t = method.invert(net, x0)
    assert abs(x_t.std().item() - 1.0) < 0.1  # the exact flow maps N(0, σ²) to N(0, 1)
    back = method.sample(net, x_t, clip=False)
    assert (back - x0).square().mean() < 1e-3 * x0.square().mean()  # 0.1% of the signal power
    coarse = method.invert(net, x0, steps=10)
    assert (method.sample(net, coarse, steps=10, clip=False) - x0).square().mean() > (back - x0).square().mean()
