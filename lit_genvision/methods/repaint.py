"""RePaint: inpainting by resampling a diffusion sampler (Lugmayr et al. 2022, arXiv 2201.09865).

Given the known sample x_known and a mask m (1 = to generate, 0 = known, the convention of ``methods.masks``),
every reverse step of the sampler τ_k → τ_{k+1} is followed by putting the known region back at the noise
level the chain has reached (Algorithm 1, lines 5–8):

    x_{τ_{k+1}}^unknown = step(x_{τ_k})                                    (the sampler's DDPM or DDIM step)
    x_{τ_{k+1}}^known   = √ᾱ_{τ_{k+1}} x_known + √(1 − ᾱ_{τ_{k+1}}) ε,   ε ~ N(0, I)      (q(x_t | x_0))
    x_{τ_{k+1}}         = m·x^unknown + (1 − m)·x^known

so the network always sees the known region as a sample of the forward process, and the last step leaves it
exactly x_known. Alone this harmonises poorly: the unknown region follows the known one only through the
network's receptive field, one step at a time. RePaint therefore goes back: with jump length j and
``resample`` r, on reaching position k (every j-th position from the end, k ≥ j) for the first r − 1 times,
the whole sample is noised j positions back by the forward process (§4.2, "jumps"),

    x_{τ_{k−j}} ~ q(x_{τ_{k−j}} | x_{τ_k}) = N(√(ᾱ_{τ_{k−j}}/ᾱ_{τ_k}) x_{τ_k}, (1 − ᾱ_{τ_{k−j}}/ᾱ_{τ_k}) I),

and the j positions are denoised again. The positions follow the official ``get_schedule_jump`` on the
sampler's S timesteps (the paper resamples the 250 DDPM steps with j = r = 10); its network evaluations are
S + ⌊(S − 1)/j⌋·(r − 1)·j. With r = 1 it is plain sampling with the known region composited
after every step. The network keeps its own inpainting condition; RePaint adds the resampling around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lit_genvision.checks import check_int
from lit_genvision.methods.denoising import DenoisingMethod, DiffusionMethod
from lit_genvision.methods.diffusion import Net, q_sample
from lit_genvision.methods.samplers.base import StepCallback


@dataclass(frozen=True)
class RePaint:
    """RePaint's resampling of a diffusion method's sampler, for inpainting.

    Args:
        jump: j, how many sampler positions each jump goes back (the paper's 10 of 250 steps).
        resample: r, how many times each stretch of j positions is denoised (1: no jumps, composite only).
    """

    jump: int = 1
    resample: int = 1

    def __post_init__(self) -> None:
        check_int("jump", self.jump, low=1, hint="pass how many sampler steps a jump goes back, e.g. 5")
        check_int("resample", self.resample, low=1, hint="pass 1 for no resampling or e.g. 5 for five passes")

    def walk(self, steps: int) -> list[int]:
        """The positions 0 … S the chain visits over the S timesteps of a sampler (S = x_0): +1 is a reverse
        step, −j a jump back. Jump points are S − 1 − i·j ≥ j (the official ``get_schedule_jump``)."""
        left = {k: self.resample - 1 for k in range(self.jump, steps) if (steps - 1 - k) % self.jump == 0}
        k, walk = 0, [0]
        while k < steps:
            k += 1
            walk.append(k)
            if left.get(k, 0) > 0:
                left[k] -= 1
                k -= self.jump
                walk.append(k)
        return walk

    def nfe(self, steps: int) -> int:
        """Network evaluations of one sample over S sampler steps: the reverse steps of the walk."""
        walk = self.walk(steps)
        return sum(b > a for a, b in zip(walk, walk[1:], strict=False))

    def protocol(self, sampler_name: str, steps: int) -> tuple[str, int]:
        """(the sampler's name with ``+repaint(j, r)``, network evaluations) for S = ``steps``."""
        return f"{sampler_name}+repaint(j={self.jump},r={self.resample})", self.nfe(steps)

    @torch.no_grad()
    def sample(
        self,
        method: DenoisingMethod,
        net: Net,
        noise: Tensor,
        cond: Any,
        known: Tensor,
        mask: Tensor,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        *,
        clip: bool = True,
        callback: StepCallback | None = None,
    ) -> Tensor:
        """Inpaint from x_T = ``noise`` (B, C, …): ``known`` (B, C, …) in the method's space, ``mask`` (B, 1, …)
        broadcastable to it, 1 = to generate; ``method``'s sampler at ``steps`` steps, walked as ``walk`` says.
        The sampler's noise and the known region's ε are drawn from ``generator`` in that order at each step,
        then a jump's noise."""
        if not isinstance(method, DiffusionMethod):
            raise ValueError(
                f"RePaint resamples a diffusion sampler (DDPM or DDIM); {type(method).__name__} has none. Inpaint "
                "without repaint=, or with a diffusion checkpoint."
            )
        sampler, schedule = method.sampler, method.schedule
        seq = sampler.timesteps(schedule, steps)
        known, mask = known.to(noise), mask.to(noise)

        def alpha_bar(k: int) -> Tensor:  # ᾱ at position k < S (a jump never starts or ends at x_0)
            return schedule.alpha_bar(torch.full((len(noise),), seq[k], device=noise.device, dtype=torch.long), noise)

        walk = self.walk(len(seq))
        total, done, x = self.nfe(len(seq)), 0, noise
        for a, b in zip(walk, walk[1:], strict=False):
            if b > a:  # a reverse step τ_a → τ_b, then the known region at τ_b
                t_prev = seq[b] if b < len(seq) else -1
                x = sampler.reverse_step(
                    net, schedule, x, seq[a], t_prev, cond, method.prediction, generator, clip=clip
                )
                x = mask * x + (1 - mask) * self.known_at(method, known, b, seq, generator)
                done += 1
                if callback is not None:
                    callback(done, total)
            else:  # a jump back τ_a → τ_b by the forward process
                ratio = alpha_bar(b) / alpha_bar(a)
                x = ratio.sqrt() * x + (1 - ratio).sqrt() * sampler.noise(x, generator)
        return x

    @staticmethod
    def known_at(
        method: DiffusionMethod, known: Tensor, k: int, seq: list[int], generator: torch.Generator | None
    ) -> Tensor:
        """q(x_{τ_k} | x_known) = √ᾱ x_known + √(1 − ᾱ) ε at position k; x_known itself at k = S (x_0)."""
        if k >= len(seq):
            return known
        t = torch.full((len(known),), seq[k], device=known.device, dtype=torch.long)
        return q_sample(method.schedule, known, t, method.sampler.noise(known, generator))
