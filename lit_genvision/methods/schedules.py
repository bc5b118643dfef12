"""Noise schedules of the forward process q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I).

Every schedule exposes, for t = 0 … T−1 (the lecture's t = 1 … T):
    betas β_t,  alphas α_t = 1 − β_t,  alpha_bars ᾱ_t = ∏_{s≤t} α_s,
so that q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I). Tensors are float64 on the CPU; methods gather
and cast them to the data's device and dtype.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lit_genvision.checks import check_float, check_int


class NoiseSchedule:
    """A discrete schedule of T steps defined by its ᾱ_t (or β_t)."""

    def __init__(self, timesteps: int = 1000) -> None:
        check_int("timesteps", timesteps, low=1, hint="pass the number of diffusion steps T, e.g. 1000")
        self.timesteps = timesteps
        self.alpha_bars = self._alpha_bars().to(torch.float64)
        prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])
        self.alphas = self.alpha_bars / prev
        self.betas = 1.0 - self.alphas

    def _alpha_bars(self) -> Tensor:
        raise NotImplementedError

    def alpha_bar(self, t: Tensor, like: Tensor) -> Tensor:
        """ᾱ_t for integer timesteps t (B,), shaped (B, 1, …) to broadcast against ``like``."""
        return _gather(self.alpha_bars, t, like)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(timesteps={self.timesteps})"


class LinearSchedule(NoiseSchedule):
    """β_t linear from ``beta_start`` to ``beta_end`` (Ho et al. 2020: 1e-4 → 0.02, T = 1000)."""

    def __init__(self, timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        check_float("beta_start", beta_start, low=0, high=1, low_open=True, high_open=True, hint="Ho et al. use 1e-4")
        check_float("beta_end", beta_end, low=beta_start, high=1, high_open=True, hint="Ho et al. use 0.02")
        self.beta_start, self.beta_end = beta_start, beta_end
        super().__init__(timesteps)

    def _alpha_bars(self) -> Tensor:
        betas = torch.linspace(self.beta_start, self.beta_end, self.timesteps, dtype=torch.float64)
        return torch.cumprod(1.0 - betas, dim=0)


class ScaledLinearSchedule(LinearSchedule):
    """√β_t linear from √``beta_start`` to √``beta_end``: β_t = (√β_s + (√β_e − √β_s)·t/(T − 1))².

    Latent diffusion's ``linear`` schedule (``make_beta_schedule`` in CompVis/latent-diffusion;
    diffusers' ``scaled_linear``): 0.0015 → 0.0195 in LDM's configs, 0.00085 → 0.012 in Stable Diffusion.
    """

    def __init__(self, timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> None:
        super().__init__(timesteps, beta_start, beta_end)

    def _alpha_bars(self) -> Tensor:
        root = torch.linspace(self.beta_start**0.5, self.beta_end**0.5, self.timesteps, dtype=torch.float64)
        return torch.cumprod(1.0 - root**2, dim=0)


class CosineSchedule(NoiseSchedule):
    """ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T) + s)/(1 + s) · π/2), s = 0.008 (Nichol & Dhariwal 2021,
    eq. 17); β_t is clipped to ``max_beta`` so the last steps stay finite."""

    def __init__(self, timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> None:
        check_float("s", s, low=0, hint="Nichol & Dhariwal use 0.008")
        check_float("max_beta", max_beta, low=0, high=1, low_open=True, high_open=True, hint="the default is 0.999")
        self.s, self.max_beta = s, max_beta
        super().__init__(timesteps)

    def _alpha_bars(self) -> Tensor:
        steps = torch.arange(self.timesteps + 1, dtype=torch.float64) / self.timesteps
        f = torch.cos((steps + self.s) / (1 + self.s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=self.max_beta)
        return torch.cumprod(1.0 - betas, dim=0)


class OffsetCosineSchedule(NoiseSchedule):
    """Signal rate cos θ_t and noise rate sin θ_t, θ running linearly from arccos(max_signal_rate)
    to arccos(min_signal_rate) (the Keras DDIM example): ᾱ_t = cos² θ_t, so the process never
    reaches pure signal or pure noise."""

    def __init__(self, timesteps: int = 1000, max_signal_rate: float = 0.95, min_signal_rate: float = 0.02) -> None:
        if not 0.0 < min_signal_rate < max_signal_rate < 1.0:
            raise ValueError("offset cosine needs 0 < min_signal_rate < max_signal_rate < 1.")
        self.max_signal_rate, self.min_signal_rate = max_signal_rate, min_signal_rate
        super().__init__(timesteps)

    def _alpha_bars(self) -> Tensor:
        start, end = math.acos(self.max_signal_rate), math.acos(self.min_signal_rate)
        # t = 1 … T on the diffusion-time axis (0, 1]: the first step already carries some noise.
        times = torch.arange(1, self.timesteps + 1, dtype=torch.float64) / self.timesteps
        theta = start + times * (end - start)
        return torch.cos(theta) ** 2


def _gather(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """values[t] as ``like``'s dtype/device, shaped (B, 1, …, 1) for broadcasting."""
    out = values.to(like.device)[t.long()].to(like.dtype)
    return out.view(-1, *([1] * (like.ndim - 1)))
