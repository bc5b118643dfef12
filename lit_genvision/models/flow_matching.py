"""FlowMatchingModel: a velocity network trained by conditional flow matching and sampled with an
ODE solver from noise (t = 1) to data (t = 0). It reuses the diffusion U-Net unchanged."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lit_genvision.checks import check_float, check_int
from lit_genvision.methods.diffusion import randn_like
from lit_genvision.methods.flow import TIME_SCALE, AffinePath, LinearPath, flow_matching_loss, solve
from lit_genvision.methods.flow.solvers import SOLVERS
from lit_genvision.methods.masks import MaskGenerator
from lit_genvision.models.base import GenerativeModel
from lit_genvision.models.diffusion import check_training_arguments
from lit_genvision.models.optim import adamw_with_warmup

TIME_SAMPLINGS = ("uniform", "logit_normal")


class ODESampler:
    """Which solver integrates the learned flow, with its step count or tolerances.

    Args:
        solver: ``euler | midpoint | heun | rk4 | dopri5``.
        steps: steps of a fixed-step solver.
        rtol: dopri5 relative tolerance.
        atol: dopri5 absolute tolerance.
    """

    def __init__(self, solver: str = "euler", steps: int = 20, rtol: float = 1e-3, atol: float = 1e-3) -> None:
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}.")
        check_int("steps", steps, low=1, hint="pass the number of solver steps, e.g. 20")
        check_float("rtol", rtol, low=0, low_open=True, hint="pass a tolerance such as 1e-3")
        check_float("atol", atol, low=0, low_open=True, hint="pass a tolerance such as 1e-3")
        self.solver, self.steps, self.rtol, self.atol = solver, steps, rtol, atol

    @property
    def name(self) -> str:
        return f"dopri5(tol={self.rtol:g})" if self.solver == "dopri5" else self.solver

    def nfe(self, steps: int | None = None) -> int | None:
        """NFE of a fixed-step solver (None for dopri5: known only after the solve)."""
        per_step = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}.get(self.solver)
        return None if per_step is None else per_step * (steps or self.steps)

    def __repr__(self) -> str:
        return f"ODESampler({self.solver!r}, steps={self.steps}, rtol={self.rtol}, atol={self.atol})"


class FlowMatchingModel(GenerativeModel):
    """Flow matching on an affine path (linear/rectified flow by default).

    Args:
        net: the velocity network ``net(x_t, 1000·t, cond)`` (the diffusion U-Net works as is).
        path: the probability path (``LinearPath`` or ``VPPath``).
        sampler: the ODE solver used by ``sample``.
        time_sampling: training times, ``uniform`` or ``logit_normal``.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear learning-rate warm-up steps.
        label_dropout: probability of training a sample with the null label.
        guidance_scale: default classifier-free guidance scale at sampling.
        image_shape: (C, H, W) of generated images; read from the network (and space) by default.
        cond_dropout: per-key probability p_k of training with key k nulled; a key not named
            drops with ``label_dropout``.
        space: where the method runs: ``PixelSpace`` (default; output clamped) or a
            ``LatentSpace`` over a frozen autoencoder (samples are decoded).
        class_prompts: a text model's prompt of class k at index k (``"a picture of the number
            seven"``): what it draws when sampled without a prompt (grids, ``evaluate``).
        inpaint_masks: the synthetic masks (``methods.masks.MaskGenerator``) an inpainting network
            (``ConditionedNet(inpainting=True)``) trains on; every kind, uniformly, by default.
    """

    family = "flow_matching"
    #: What the EMA averages: the velocity network.
    ema_modules: ClassVar[tuple[str, ...]] = ("net",)

    def __init__(
        self,
        net: nn.Module,
        path: AffinePath | None = None,
        sampler: ODESampler | None = None,
        time_sampling: str = "uniform",
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        label_dropout: float = 0.1,
        guidance_scale: float = 1.0,
        image_shape: tuple[int, int, int] | None = None,
        cond_dropout: dict[str, float] | None = None,
        space: nn.Module | None = None,
        class_prompts: list[str] | None = None,
        inpaint_masks: MaskGenerator | None = None,
    ) -> None:
        super().__init__()
        self.save_config()
        check_training_arguments(lr, weight_decay, warmup_steps, label_dropout, guidance_scale, cond_dropout)
        if time_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"time_sampling must be uniform or logit_normal, got {time_sampling!r}.")
        self.net, self.path, self.sampler = net, path or LinearPath(), sampler or ODESampler()
        self.time_sampling = time_sampling
        self.lr, self.weight_decay, self.warmup_steps = lr, weight_decay, warmup_steps
        self.label_dropout, self.guidance_scale = label_dropout, guidance_scale
        self.cond_dropout = dict(cond_dropout) if cond_dropout else None
        self.init_space(space, net, image_shape)
        self.init_conditions(class_prompts, inpaint_masks)
        self.last_nfe = 0

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = flow_matching_loss(
            self.net,
            self.path,
            self.space.encode(batch["image"]),
            cond=self.train_cond(batch),
            time_sampling=self.time_sampling,
        )
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["image"]))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        g = torch.Generator(device=self.device).manual_seed(batch_idx)
        cond = self.val_cond(batch)
        loss = flow_matching_loss(self.net, self.path, self.space.encode(batch["image"]), cond=cond, generator=g)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(batch["image"]))

    def configure_optimizers(self) -> Any:
        return adamw_with_warmup(self.net.parameters(), self.lr, self.weight_decay, self.warmup_steps)

    def make_sampler(self, name: str | None, *, rtol: float = 1e-3, atol: float = 1e-3, **options: Any) -> Any:
        if name is None:
            return None
        return ODESampler(name, self.sampler.steps, rtol=rtol, atol=atol)

    def sampling_protocol(self, steps: int | None = None, sampler: ODESampler | None = None) -> tuple[str, int]:
        sampler = sampler or self.sampler
        nfe = sampler.nfe(steps) or self.last_nfe  # dopri5: the NFE of the last solve
        return self.guided_protocol(sampler.name, nfe)

    @torch.no_grad()
    def sample(
        self,
        num: int,
        *,
        cond: dict | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        sampler: ODESampler | None = None,
        guidance: float | None = None,
        noise: Tensor | None = None,
        temperature: float | None = None,
    ) -> Tensor:
        """Integrate dx/dt = v_θ(x, t) from x_1 ~ N(0, I) at t = 1 to t = 0; (num, C, H, W) in [-1, 1].

        The solvers draw no noise of their own, so ``generator`` only draws x_1; ``temperature`` is refused.
        """
        self.refuse_options(temperature=temperature)
        if guidance is not None and not self.conditioning:
            self.refuse_options(guidance=guidance)
        sampler = sampler or self.sampler
        if noise is None:
            noise = randn_like(torch.empty((num, *self.sample_shape), device=self.device), generator)
        net, cond = self.guided_net(guidance), self.sample_cond(len(noise), cond)
        with self.eval_mode(self.net):
            result = solve(
                sampler.solver,
                lambda x, t: net(x, t * TIME_SCALE, cond),
                noise,
                1.0,
                0.0,
                steps=steps or sampler.steps,
                rtol=sampler.rtol,
                atol=sampler.atol,
            )
        self.last_nfe = result.nfe
        return self.composite(self.space.decode(result.x), cond)
