"""DiffusionModel: the constructor of earlier revisions' diffusion configs and checkpoints (a network, a noise
schedule, a sampler, learning-rate scalars), kept so they load, train and sample as before. It is a
``DenoisingModel`` with a ``DiffusionMethod`` and an AdamW; new configs name those directly."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from lit_genvision.methods.denoising import DiffusionMethod
from lit_genvision.methods.diffusion import Prediction
from lit_genvision.methods.masks import MaskGenerator
from lit_genvision.methods.samplers import Sampler
from lit_genvision.methods.schedules import NoiseSchedule
from lit_genvision.models.conditional import check_conditioning_arguments
from lit_genvision.models.denoising import DenoisingModel
from lit_genvision.models.optim import LinearWarmup, check_optimizer_arguments


def check_training_arguments(
    lr: float,
    weight_decay: float,
    warmup_steps: int,
    label_dropout: float,
    guidance_scale: float,
    cond_dropout: dict[str, float] | None = None,
) -> None:
    """The optimiser and guidance arguments of a model built with scalars, checked at construction."""
    check_optimizer_arguments(lr, weight_decay, warmup_steps)
    check_conditioning_arguments(label_dropout, guidance_scale, cond_dropout)


def adamw(lr: float, weight_decay: float, warmup_steps: int) -> tuple[partial, partial | None]:
    """(AdamW, its linear warm-up or None) as the injected callables of a ``DenoisingModel``."""
    warmup = partial(LinearWarmup, warmup_steps=warmup_steps) if warmup_steps else None
    return partial(torch.optim.AdamW, lr=lr, weight_decay=weight_decay), warmup


class DiffusionModel(DenoisingModel):
    """Denoising diffusion with the arguments of earlier revisions (see ``DenoisingModel`` for the rest).

    Args:
        schedule: the noise schedule (linear by default).
        sampler: the default sampler (DDIM 50 steps if omitted).
        prediction: what the network predicts: ``eps``, ``v`` or ``x0``.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear learning-rate warm-up steps.
    """

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
        check_training_arguments(lr, weight_decay, warmup_steps, label_dropout, guidance_scale, cond_dropout)
        optimizer, warmup = adamw(lr, weight_decay, warmup_steps)
        super().__init__(
            net,
            DiffusionMethod(schedule, prediction, sampler),
            space,
            optimizer,
            warmup,
            label_dropout=label_dropout,
            cond_dropout=cond_dropout,
            guidance_scale=guidance_scale,
            image_shape=image_shape,
            class_prompts=class_prompts,
            inpaint_masks=inpaint_masks,
        )
        self.lr, self.weight_decay, self.warmup_steps = lr, weight_decay, warmup_steps

    @property
    def schedule(self) -> NoiseSchedule:
        return self.method.schedule

    @property
    def sampler(self) -> Sampler:
        return self.method.sampler

    @property
    def prediction(self) -> Prediction:
        return self.method.prediction
