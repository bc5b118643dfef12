"""DiffusionModel: a network, a noise schedule and a sampler, wired into Lightning."""

from __future__ import annotations

from typing import Any, ClassVar, get_args

import torch
from torch import Tensor, nn

from lit_genvision.checks import check_float, check_int
from lit_genvision.methods.diffusion import Prediction, diffusion_loss, randn_like
from lit_genvision.methods.masks import MaskGenerator
from lit_genvision.methods.samplers import DDIMSampler, DDPMSampler, Sampler
from lit_genvision.methods.samplers.base import StepCallback
from lit_genvision.methods.schedules import LinearSchedule, NoiseSchedule
from lit_genvision.models.base import GenerativeModel
from lit_genvision.models.optim import adamw_with_warmup


def check_training_arguments(
    lr: float,
    weight_decay: float,
    warmup_steps: int,
    label_dropout: float,
    guidance_scale: float,
    cond_dropout: dict[str, float] | None = None,
) -> None:
    """The optimiser and guidance arguments shared by diffusion and flow matching, checked at
    construction (a negative warm-up once trained with a negative learning rate)."""
    check_float("lr", lr, low=0, low_open=True, hint="pass a positive learning rate such as 2e-4")
    check_float("weight_decay", weight_decay, low=0, hint="pass 0 for no weight decay")
    check_int("warmup_steps", warmup_steps, low=0, hint="pass 0 for no warm-up")
    check_float("label_dropout", label_dropout, low=0, high=1, hint="it is the probability of a null label")
    check_float("guidance_scale", guidance_scale, hint="pass 1 for plain conditional sampling")
    for key, p in (cond_dropout or {}).items():
        check_float(f"cond_dropout[{key!r}]", p, low=0, high=1, hint=f"it is the probability of a null {key}")


class DiffusionModel(GenerativeModel):
    """Denoising diffusion (DDPM training, DDPM/DDIM sampling), optionally class-conditional.

    Args:
        net: the denoiser, called as ``net(x_t, t, cond)``; it must expose ``in_channels`` and
            ``image_size`` unless ``image_shape`` is given. A net built with ``num_classes`` makes
            the model class-conditional; one built with ``cond_dim`` conditions it on the batch key
            ``vector`` (B, cond_dim).
        schedule: the noise schedule (linear, cosine, offset cosine).
        sampler: the default sampler for ``sample`` (DDIM 50 steps if omitted).
        prediction: what the network predicts: ``eps``, ``v`` or ``x0``.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear learning-rate warm-up steps.
        label_dropout: probability of training a sample with the null label (classifier-free guidance).
        guidance_scale: default guidance scale s at sampling (0 unconditional, 1 conditional, >1 guided).
        image_shape: (C, H, W) of generated images; read from the network (and space) by default.
        cond_dropout: per-key probability p_k of training with key k nulled (``{"vector": 0.2}``);
            a key not named drops with ``label_dropout``.
        space: where the method runs: ``PixelSpace`` (default; x̂_0 clipped, output clamped) or a
            ``LatentSpace`` over a frozen autoencoder (no clipping; samples are decoded).
        class_prompts: a text model's prompt of class k at index k (``"a picture of the number
            seven"``): what it draws when sampled without a prompt (grids, ``evaluate``).
        inpaint_masks: the synthetic masks (``methods.masks.MaskGenerator``) an inpainting network
            (``ConditionedNet(inpainting=True)``) trains on; every kind, uniformly, by default.
    """

    family = "diffusion"
    #: What the EMA averages: the denoising network (the schedule has no weights).
    ema_modules: ClassVar[tuple[str, ...]] = ("net",)

    def __init__(
        self,
        net: nn.Module,
        schedule: NoiseSchedule | None = None,
        sampler: Sampler | None = None,
        prediction: Prediction = "eps",
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
        if prediction not in get_args(Prediction):
            raise ValueError(f"prediction must be one of {', '.join(get_args(Prediction))}, got {prediction!r}.")
        self.net = net
        self.schedule = schedule or LinearSchedule()
        self.sampler = sampler or DDIMSampler()
        self.prediction = prediction
        self.lr, self.weight_decay, self.warmup_steps = lr, weight_decay, warmup_steps
        self.label_dropout, self.guidance_scale = label_dropout, guidance_scale
        self.cond_dropout = dict(cond_dropout) if cond_dropout else None
        self.init_space(space, net, image_shape)
        self.init_conditions(class_prompts, inpaint_masks)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = diffusion_loss(
            self.net,
            self.schedule,
            self.space.encode(batch["image"]),
            prediction=self.prediction,
            cond=self.train_cond(batch),
        )
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["image"]))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # A fixed generator per batch makes the validation loss comparable across epochs and
        # leaves the global RNG (and so training) untouched.
        g = torch.Generator(device=self.device).manual_seed(batch_idx)
        cond = self.val_cond(batch)
        loss = diffusion_loss(
            self.net,
            self.schedule,
            self.space.encode(batch["image"]),
            prediction=self.prediction,
            cond=cond,
            generator=g,
        )
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(batch["image"]))

    def configure_optimizers(self) -> Any:
        return adamw_with_warmup(self.net.parameters(), self.lr, self.weight_decay, self.warmup_steps)

    def make_sampler(self, name: str | None, *, eta: float = 0.0, **options: Any) -> Sampler | None:
        if name is None:
            return None
        if name == "ddpm":
            return DDPMSampler()
        if name == "ddim":
            return DDIMSampler(eta=eta)
        raise ValueError(f"diffusion samplers are ddpm and ddim, got {name!r}.")

    def deterministic_sampler(self) -> Sampler:
        return DDIMSampler(steps=self.sampler.steps, eta=0.0)

    def sampling_protocol(self, steps: int | None = None, sampler: Sampler | None = None) -> tuple[str, int]:
        sampler = sampler or self.sampler
        nfe = steps or sampler.steps or self.schedule.timesteps
        return self.guided_protocol(sampler.name, nfe)

    @torch.no_grad()
    def sample(
        self,
        num: int,
        *,
        cond: dict | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        sampler: Sampler | None = None,
        guidance: float | None = None,
        noise: Tensor | None = None,
        temperature: float | None = None,
        callback: StepCallback | None = None,
    ) -> Tensor:
        """Draw x_T ~ N(0, I) (or use ``noise``) and run the sampler; returns (num, C, H, W) in [-1, 1].

        ``callback`` (diffusion only) sees every step of the sampler; ``temperature`` is refused.
        """
        self.refuse_options(temperature=temperature)
        if guidance is not None and not self.conditioning:
            self.refuse_options(guidance=guidance)
        if noise is None:
            noise = randn_like(torch.empty((num, *self.sample_shape), device=self.device), generator)
        cond = self.sample_cond(len(noise), cond)
        with self.eval_mode(self.net):
            x = (sampler or self.sampler)(
                self.guided_net(guidance),
                self.schedule,
                noise,
                steps=steps,
                cond=cond,
                prediction=self.prediction,
                generator=generator,
                callback=callback,
                clip=self.space.bounded,
            )
        return self.composite(self.space.decode(x), cond)
