"""FlowMatchingModel: the constructor of earlier revisions' flow-matching configs and checkpoints (a velocity
network, a path, an ODE sampler, learning-rate scalars), kept so they load, train and sample as before. It is
a ``DenoisingModel`` with a ``FlowMethod`` and an AdamW; new configs name those directly."""

from __future__ import annotations

from torch import nn

from lit_genvision.methods.denoising import TIME_SAMPLINGS, FlowMethod
from lit_genvision.methods.flow import AffinePath, ODESampler
from lit_genvision.methods.masks import MaskGenerator
from lit_genvision.models.denoising import DenoisingModel
from lit_genvision.models.diffusion import adamw, check_training_arguments

__all__ = ["TIME_SAMPLINGS", "FlowMatchingModel", "ODESampler"]


class FlowMatchingModel(DenoisingModel):
    """Flow matching with the arguments of earlier revisions (see ``DenoisingModel`` for the rest).

    Args:
        path: the probability path (``LinearPath`` or ``VPPath``).
        sampler: the ODE solver used by ``sample``.
        time_sampling: training times, ``uniform`` or ``logit_normal``.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear learning-rate warm-up steps.
    """

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
        check_training_arguments(lr, weight_decay, warmup_steps, label_dropout, guidance_scale, cond_dropout)
        optimizer, warmup = adamw(lr, weight_decay, warmup_steps)
        super().__init__(
            net,
            FlowMethod(path, time_sampling, sampler),
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
    def path(self) -> AffinePath:
        return self.method.path

    @property
    def sampler(self) -> ODESampler:
        return self.method.solver

    @property
    def time_sampling(self) -> str:
        return self.method.time_sampling
