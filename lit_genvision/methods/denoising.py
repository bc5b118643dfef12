"""Denoising methods behind one interface: how a denoising network is trained and how it is sampled.

A method is the pair EDM (Karras et al. 2022) separates into ``training/loss.py`` and ``generate.py``:

    loss(net, x0, cond, generator)                           the training objective on clean data x0
    sample(net, noise, cond, steps, generator, start=None)   the reverse process from noise to data

``net(x, t, cond)`` is any network with the denoiser interface (a U-Net, a DiT, a ``ConditionedNet``, a
guided wrapper); ``cond`` is handed through untouched. Neither knows the space (pixels or latents) nor the
shape: a sample may be an image (C, H, W), a video (C, T, H, W) or an embedding (D,).

``start`` begins the reverse process part-way (SDEdit, Meng et al. 2022, arXiv 2108.01073): x0 is noised to
x_τ by the forward process at τ = ``strength`` of the way from data (0) to noise (1), with the given noise,
and denoised from τ — variations, image-to-image and video extension build on it.

- `DiffusionMethod(schedule, prediction, sampler)`: DDPM's loss (Ho et al. 2020, Algorithm 1) with an ε, v
  or x0 target, sampled by DDPM or DDIM on a sub-sequence of timesteps.
- `FlowMethod(path, time_sampling, solver)`: conditional flow matching (Lipman et al. 2023, eq. 9) on an
  affine path, sampled by integrating dx/dt = v_θ(x, t) from t = 1 (noise) to t = 0 with an ODE solver.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, get_args

import torch
from torch import Tensor

from lit_genvision.checks import check_float
from lit_genvision.methods.diffusion import Net, Prediction, diffusion_loss, q_sample
from lit_genvision.methods.flow import SOLVERS, TIME_SCALE, AffinePath, LinearPath, ODESampler, flow_matching_loss
from lit_genvision.methods.inversion import ddim_invert
from lit_genvision.methods.samplers import DDIMSampler, DDPMSampler, Sampler
from lit_genvision.methods.samplers.base import StepCallback
from lit_genvision.methods.schedules import LinearSchedule, NoiseSchedule

TIME_SAMPLINGS = ("uniform", "logit_normal")


@dataclass(frozen=True)
class Start:
    """Where the reverse process begins when it does not begin at pure noise: ``x0`` (in the method's
    space, batch first) noised to τ = ``strength`` ∈ (0, 1] and denoised from there; 1 is plain sampling
    from noise (x0 is then forgotten), small values stay close to x0."""

    x0: Tensor
    strength: float = 1.0

    def __post_init__(self) -> None:
        check_float("strength", self.strength, low=0, high=1, low_open=True, hint="pass τ in (0, 1], e.g. 0.6")


class DenoisingMethod:
    """The interface every denoising method has (see the module docstring); a new method subclasses it (or one
    of the two below) and is named in a config by its class path."""

    #: The method's family, recorded with the checkpoint and every evaluation.
    family: str = "denoising"

    def loss(self, net: Net, x0: Tensor, cond: Any = None, generator: torch.Generator | None = None) -> Tensor:
        """The training loss of ``net`` on clean samples ``x0`` (B, …) under ``cond``."""
        raise NotImplementedError

    def sample(
        self,
        net: Net,
        noise: Tensor,
        cond: Any = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        start: Start | None = None,
        *,
        clip: bool = True,
        callback: StepCallback | None = None,
    ) -> Tensor:
        """Samples (B, …) from ``noise`` (or from ``start``), ``clip`` saying whether x̂_0 may be clipped to
        [-1, 1] (a bounded space), ``callback(step, steps)`` after each step where the method has steps."""
        raise NotImplementedError

    def protocol(self, steps: int | None = None) -> tuple[str, int]:
        """(the sampler's name, network evaluations per sample) with ``steps`` steps."""
        raise NotImplementedError

    def invert(self, net: Net, x0: Tensor, cond: Any = None, steps: int | None = None) -> Tensor:
        """The starting noise from which the deterministic sampler decodes ≈ ``x0`` (variations start there)."""
        raise ValueError(f"{type(self).__name__} does not invert samples to noise; use a diffusion model (DDIM).")

    def with_sampler(self, name: Any, **settings: float) -> DenoisingMethod:
        """This method with another sampler, by name or as an object."""
        raise ValueError(f"{type(self).__name__} has no sampler named {name!r}.")

    def deterministic(self) -> DenoisingMethod:
        """This method with a deterministic map from noise to sample (for interpolation)."""
        return self


class DiffusionMethod(DenoisingMethod):
    """Denoising diffusion: the DDPM objective and a DDPM or DDIM sampler.

    Args:
        schedule: the noise schedule ᾱ_t (linear by default; cosine, offset cosine, scaled linear).
        prediction: what the network predicts: ``eps``, ``v`` or ``x0``.
        sampler: the default sampler (DDIM, 50 steps, η = 0).
        min_snr_gamma: if set, Min-SNR-γ loss weighting (Hang et al. 2023; γ = 5 in the paper).
    """

    family = "diffusion"
    SAMPLERS = ("ddpm", "ddim")

    def __init__(
        self,
        schedule: NoiseSchedule | None = None,
        prediction: Prediction = "eps",
        sampler: Sampler | None = None,
        min_snr_gamma: float | None = None,
    ) -> None:
        if prediction not in get_args(Prediction):
            raise ValueError(f"prediction must be one of {', '.join(get_args(Prediction))}, got {prediction!r}.")
        if min_snr_gamma is not None and min_snr_gamma <= 0:
            raise ValueError(f"min_snr_gamma must be positive (5 in the paper), got {min_snr_gamma}.")
        self.min_snr_gamma = min_snr_gamma
        self.schedule = schedule or LinearSchedule()
        self.prediction = prediction
        self.sampler = sampler or DDIMSampler()

    def loss(self, net: Net, x0: Tensor, cond: Any = None, generator: torch.Generator | None = None) -> Tensor:
        """E_{t, ε} ‖target − net(√ᾱ_t x0 + √(1 − ᾱ_t) ε, t)‖² (``methods.diffusion.diffusion_loss``)."""
        return diffusion_loss(
            net, self.schedule, x0, prediction=self.prediction, cond=cond, generator=generator,
            min_snr_gamma=self.min_snr_gamma,
        )  # fmt: skip

    def sample(
        self,
        net: Net,
        noise: Tensor,
        cond: Any = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        start: Start | None = None,
        *,
        clip: bool = True,
        callback: StepCallback | None = None,
    ) -> Tensor:
        """The sampler's reverse process from x_T = ``noise``; with ``start``, only the last ⌈strength·S⌉ of
        its S timesteps, from x_τ = √ᾱ_τ x0 + √(1 − ᾱ_τ)·noise (diffusers' img2img convention)."""
        timesteps, x = None, noise
        if start is not None:
            seq = self.sampler.timesteps(self.schedule, steps)
            timesteps = seq[-max(1, round(len(seq) * start.strength)) :]
            t = torch.full((len(noise),), timesteps[0], device=noise.device, dtype=torch.long)
            x = q_sample(self.schedule, start.x0.to(noise), t, noise)
        return self.sampler(
            net,
            self.schedule,
            x,
            steps=steps,
            cond=cond,
            prediction=self.prediction,
            generator=generator,
            callback=callback,
            clip=clip,
            timesteps=timesteps,
        )

    def protocol(self, steps: int | None = None) -> tuple[str, int]:
        """(the sampler's name, network evaluations per sample) with ``steps`` steps (None: the sampler's)."""
        return self.sampler.name, steps or self.sampler.steps or self.schedule.timesteps

    def invert(self, net: Net, x0: Tensor, cond: Any = None, steps: int | None = None) -> Tensor:
        """The x_T from which DDIM (η = 0) along the sampler's ``steps`` timesteps decodes ≈ ``x0``
        (``methods.inversion.ddim_invert``)."""
        seq = self.sampler.timesteps(self.schedule, steps)
        return ddim_invert(net, self.schedule, x0, seq, cond=cond, prediction=self.prediction)

    def with_sampler(self, name: Any, *, eta: float = 0.0, **settings: float) -> DiffusionMethod:
        """This method with the sampler called ``name`` (``ddpm`` or ``ddim`` with η), at its steps, or with the
        sampler object ``name``."""
        if settings:
            raise ValueError(
                f"{' and '.join(settings)} set an ODE solver; a diffusion model's samplers are ddpm and ddim."
            )
        if isinstance(name, Sampler):
            return self._with(name)
        if name == "ddpm":
            sampler: Sampler = DDPMSampler(steps=self.sampler.steps)
        elif name == "ddim":
            sampler = DDIMSampler(steps=self.sampler.steps, eta=eta)
        else:
            raise ValueError(f"diffusion samplers are {' and '.join(self.SAMPLERS)}, got {name!r}.")
        return self._with(sampler)

    def deterministic(self) -> DiffusionMethod:
        """This method with DDIM at η = 0: a deterministic map from noise to sample (for interpolation)."""
        return self._with(DDIMSampler(steps=self.sampler.steps, eta=0.0))

    def _with(self, sampler: Sampler) -> DiffusionMethod:
        method = copy.copy(self)
        method.sampler = sampler
        return method

    def __repr__(self) -> str:
        snr = f", min_snr_gamma={self.min_snr_gamma}" if self.min_snr_gamma is not None else ""
        return f"DiffusionMethod({self.schedule!r}, prediction={self.prediction!r}, sampler={self.sampler!r}{snr})"


class FlowMethod(DenoisingMethod):
    """Flow matching on an affine path x_t = α_t x0 + σ_t x1, x1 ~ N(0, I).

    Args:
        path: the probability path (``LinearPath``, rectified flow, by default; ``VPPath``).
        time_sampling: training times, ``uniform`` or ``logit_normal`` (Esser et al. 2024).
        solver: the ODE solver of ``sample`` (Euler, 20 steps, by default).
    """

    family = "flow_matching"

    def __init__(
        self, path: AffinePath | None = None, time_sampling: str = "uniform", solver: ODESampler | None = None
    ) -> None:
        if time_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"time_sampling must be uniform or logit_normal, got {time_sampling!r}.")
        self.path = path or LinearPath()
        self.time_sampling = time_sampling
        self.solver = solver or ODESampler()
        self.last_nfe = 0  # dopri5's NFE is known only after a solve

    def loss(self, net: Net, x0: Tensor, cond: Any = None, generator: torch.Generator | None = None) -> Tensor:
        """E_{t, x1} ‖v_θ(x_t, t) − (α'_t x0 + σ'_t x1)‖² (``methods.flow.flow_matching_loss``)."""
        return flow_matching_loss(net, self.path, x0, cond=cond, time_sampling=self.time_sampling, generator=generator)

    def sample(
        self,
        net: Net,
        noise: Tensor,
        cond: Any = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        start: Start | None = None,
        *,
        clip: bool = True,
        callback: StepCallback | None = None,
    ) -> Tensor:
        """Integrate dx/dt = v_θ(x, t) from t = 1 (x = ``noise``) to t = 0; with ``start``, from t = τ with
        x_τ = α_τ x0 + σ_τ·noise and ⌈τ·steps⌉ steps. The solvers draw no noise: ``generator`` is unused."""
        if callback is not None:
            raise ValueError("the ODE solvers take no step callback; omit it.")
        t0, x, steps = 1.0, noise, steps or self.solver.steps
        if start is not None:
            t0, steps = start.strength, max(1, round(steps * start.strength))
            tau = torch.full((len(noise),), t0, device=noise.device)
            x = self.path.sample(start.x0.to(noise), noise, tau)
        result = self.solver(lambda x, t: net(x, t * TIME_SCALE, cond), x, t0, 0.0, steps=steps)
        self.last_nfe = result.nfe
        return result.x

    def protocol(self, steps: int | None = None) -> tuple[str, int]:
        """(the solver's name, network evaluations per sample); dopri5's from the last solve."""
        return self.solver.name, self.solver.nfe(steps) or self.last_nfe

    def with_sampler(self, name: Any, *, rtol: float = 1e-3, atol: float = 1e-3, **settings: float) -> FlowMethod:
        """This method with the solver called ``name`` at its steps (dopri5 with the tolerances), or with the
        ``ODESampler`` ``name``."""
        if settings:
            raise ValueError(f"{' and '.join(settings)} is DDIM's; a flow model's samplers are {', '.join(SOLVERS)}.")
        method = copy.copy(self)
        method.solver = (
            name if isinstance(name, ODESampler) else ODESampler(name, self.solver.steps, rtol=rtol, atol=atol)
        )
        return method

    def deterministic(self) -> FlowMethod:
        """The flow is deterministic already."""
        return self

    def __repr__(self) -> str:
        return f"FlowMethod({self.path!r}, time_sampling={self.time_sampling!r}, solver={self.solver!r})"
