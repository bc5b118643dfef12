"""One object for every option of ``sample()``: which sampler, guidance, temperature, truncation, the noise to
start from, a part-way start. A family declares the options it uses (``GenerativeModel.accepts``) and the
protocol refuses any other that is given, in one sentence; an option left at None means "as configured".
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from torch import Tensor

from lit_genvision.checks import check_float, check_int
from lit_genvision.methods.denoising import Start
from lit_genvision.methods.repaint import RePaint
from lit_genvision.methods.samplers.base import StepCallback


@dataclass(frozen=True)
class SampleOptions:
    """Options of ``GenerativeModel.sample``; every field None (or False) means the model's own setting."""

    sampler: Any = None
    """A sampler by name — ``ddpm | ddim`` (diffusion), ``euler | midpoint | heun | rk4 | dopri5`` (flow) — or a
    sampler object (``DDIMSampler(steps=20)``, ``ODESampler("heun")``)."""
    eta: float | None = None
    """DDIM's η (0 deterministic, 1 DDPM-like); given alone it selects DDIM."""
    rtol: float | None = None
    """dopri5's relative tolerance; given alone it selects dopri5."""
    atol: float | None = None
    """dopri5's absolute tolerance; given alone it selects dopri5."""
    guidance: float | None = None
    """Classifier-free guidance scale s: u + s·(c − u) (0 unconditional, 1 conditional, > 1 guided)."""
    temperature: float | None = None
    """Softmax temperature of an autoregressive sampler."""
    top_k: int | None = None
    """Sample an autoregressive model's tokens from the k most likely."""
    truncation: float | None = None
    """A StyleGAN's truncation ψ around its mean w (1: none)."""
    noise: Tensor | None = None
    """The starting noise (num, *sample_shape) instead of a fresh draw (interpolation, fixed seeds)."""
    start: Start | None = None
    """Begin part-way from these images (in [-1, 1], the model's image shape) at strength τ (SDEdit)."""
    deterministic: bool = False
    """Use a deterministic map from noise to sample (DDIM η = 0; an ODE, a GAN and a VAE are one already)."""
    callback: StepCallback | None = None
    """Called as callback(step, steps) after every step of a diffusion sampler."""
    repaint: RePaint | None = None
    """Inpaint with RePaint's resampling (``methods.repaint``): the known region put back after every step, and
    jumps back of ``jump`` steps, each stretch denoised ``resample`` times (a diffusion model's inpainting)."""

    def __post_init__(self) -> None:
        if self.eta is not None:
            check_float("eta", self.eta, low=0, hint="pass 0 for deterministic DDIM or 1 for DDPM-like noise")
        for name in ("rtol", "atol"):
            if getattr(self, name) is not None:
                check_float(name, getattr(self, name), low=0, low_open=True, hint="pass a tolerance such as 1e-3")
        if self.guidance is not None:
            check_float("guidance", self.guidance, hint="pass e.g. 0 (unconditional), 1 (conditional) or 3 (guided)")
        if self.temperature is not None:
            check_float("temperature", self.temperature, low=0, low_open=True, hint="pass 1 to sample as trained")
        if self.top_k is not None:
            check_int("top_k", self.top_k, low=1, hint="omit it to sample from every token")
        if self.truncation is not None:
            check_float("truncation", self.truncation, low=0, hint="pass ψ in (0, 1], e.g. 0.7; 1 turns it off")
        if self.repaint is not None and not isinstance(self.repaint, RePaint):
            raise ValueError(f"repaint must be a RePaint(jump, resample), got {self.repaint!r}.")

    def given(self) -> list[str]:
        """The names of the options that are set (not None, not False)."""
        return [f.name for f in fields(self) if not (getattr(self, f.name) is None or getattr(self, f.name) is False)]

    def but(self, **changes: Any) -> SampleOptions:
        """A copy with ``changes``."""
        return replace(self, **changes)

    @property
    def sampler_settings(self) -> dict[str, float]:
        """η and the tolerances that were given, as keywords of a method's ``with_sampler``."""
        return {k: getattr(self, k) for k in ("eta", "rtol", "atol") if getattr(self, k) is not None}

    @property
    def sampler_name(self) -> Any:
        """The sampler asked for: the one named, else DDIM when η is given, dopri5 when a tolerance is."""
        if self.sampler is not None:
            return self.sampler
        if self.eta is not None:
            return "ddim"
        if self.rtol is not None or self.atol is not None:
            return "dopri5"
        return None
