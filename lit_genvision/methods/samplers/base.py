"""The reverse-process loop shared by the discrete-time samplers.

A sampler walks a descending subsequence τ_1 > … > τ_S of {T−1, …, 0}; at each τ_i the network
gives (x̂_0, ε̂) and the sampler's ``step`` maps x_{τ_i} to x_{τ_{i+1}} (x_0 after the last).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lit_genvision.checks import check_int
from lit_genvision.methods.diffusion import Net, Prediction, randn_like, to_x0_eps
from lit_genvision.methods.schedules import NoiseSchedule

StepCallback = Callable[[int, int], None]


def timestep_sequence(timesteps: int, steps: int) -> list[int]:
    """``steps`` evenly spaced, descending timesteps from T−1 to 0 (all T when steps = T)."""
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be an integer between 1 and {timesteps} (the schedule's timesteps), got {steps}.")
    if steps == 1:
        return [timesteps - 1]
    return torch.linspace(timesteps - 1, 0, steps, dtype=torch.float64).round().long().tolist()


class Sampler:
    """Base class: runs the loop; subclasses implement one reverse step."""

    def __init__(self, steps: int | None = None, clip_denoised: bool = True) -> None:
        if steps is not None:  # the upper bound (the schedule's timesteps) is checked when sampling
            check_int("steps", steps, low=1, hint="pass None to walk every timestep")
        self.steps = steps
        self.clip_denoised = clip_denoised

    def step(
        self, x_t: Tensor, x0: Tensor, eps: Tensor, ab_t: Tensor, ab_prev: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(
        self,
        net: Net,
        schedule: NoiseSchedule,
        x_T: Tensor,
        *,
        steps: int | None = None,
        cond: dict | None = None,
        prediction: Prediction = "eps",
        generator: torch.Generator | None = None,
        callback: StepCallback | None = None,
        clip: bool = True,
        timesteps: list[int] | None = None,
    ) -> Tensor:
        """Denoise x_T (B, …) ~ N(0, I) into x_0 (B, …).

        x̂_0 is clipped to [-1, 1] when the sampler's ``clip_denoised`` and ``clip`` both say so:
        ``clip`` is the sampling space's (pixels bounded, latents not; see ``methods.space``).
        ``timesteps`` walks a given descending sequence instead (the tail of one, to start part-way:
        ``x_T`` is then x at its first timestep).
        """
        seq = timesteps if timesteps is not None else self.timesteps(schedule, steps)
        x = x_T
        for i, t in enumerate(seq):
            t_prev = seq[i + 1] if i + 1 < len(seq) else -1
            x = self.reverse_step(net, schedule, x, t, t_prev, cond, prediction, generator, clip=clip)
            if callback is not None:
                callback(i + 1, len(seq))
        return x

    def reverse_step(
        self,
        net: Net,
        schedule: NoiseSchedule,
        x: Tensor,
        t: int,
        t_prev: int,
        cond: dict | None,
        prediction: Prediction,
        generator: torch.Generator | None,
        *,
        clip: bool = True,
    ) -> Tensor:
        """One step of the loop: x_t at timestep ``t`` → x_{t'} at ``t_prev`` (x_0 when it is −1), through the
        network's (x̂_0, ε̂) and this sampler's ``step``."""
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        ab_t = schedule.alpha_bar(tt, x)
        ab_prev = schedule.alpha_bar(torch.full_like(tt, t_prev), x) if t_prev >= 0 else torch.ones_like(ab_t)
        x0, eps = to_x0_eps(prediction, x, net(x, tt, cond), ab_t)
        if self.clip_denoised and clip:
            x0 = x0.clamp(-1, 1)
            eps = (x - ab_t.sqrt() * x0) / (1 - ab_t).sqrt()  # keep ε̂ consistent with the clipped x̂_0
        return self.step(x, x0, eps, ab_t, ab_prev, generator)

    def timesteps(self, schedule: NoiseSchedule, steps: int | None = None) -> list[int]:
        """The descending timesteps this sampler walks with ``steps`` steps (None: its own, or every one)."""
        if steps is None:
            steps = self.steps if self.steps is not None else schedule.timesteps
        return timestep_sequence(schedule.timesteps, steps)

    @staticmethod
    def noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
        return randn_like(x, generator)

    @property
    def name(self) -> str:
        """Short name recorded with evaluation results."""
        return type(self).__name__.removesuffix("Sampler").lower()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(steps={self.steps})"
