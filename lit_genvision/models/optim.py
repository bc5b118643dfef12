"""Optimiser set-ups shared by the families."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import torch

from lit_genvision.checks import check_float, check_int


def check_optimizer_arguments(lr: float, weight_decay: float, warmup_steps: int) -> None:
    """The AdamW arguments of a model built with learning-rate scalars, checked at construction (a negative
    warm-up once trained with a negative learning rate)."""
    check_float("lr", lr, low=0, low_open=True, hint="pass a positive learning rate such as 2e-4")
    check_float("weight_decay", weight_decay, low=0, hint="pass 0 for no weight decay")
    check_int("warmup_steps", warmup_steps, low=0, hint="pass 0 for no warm-up")


def adamw_with_warmup(
    params: Iterable,
    lr: float,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    betas: tuple[float, float] = (0.9, 0.999),
) -> Any:
    """AdamW, with a linear learning-rate warm-up over ``warmup_steps`` optimiser steps if > 0."""
    optimizer = partial(torch.optim.AdamW, lr=lr, weight_decay=weight_decay, betas=betas)
    return optimizers(params, optimizer, partial(LinearWarmup, warmup_steps=warmup_steps) if warmup_steps else None)


class LinearWarmup(torch.optim.lr_scheduler.LambdaLR):
    """A linear learning-rate warm-up over the first ``warmup_steps`` optimiser steps: η_k = η·min(1, (k + 1) / W),
    stepped every optimiser step (``lr_scheduler: {class_path: lit_genvision.models.LinearWarmup, init_args:
    {warmup_steps: 100}}`` beside an injected optimiser)."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int) -> None:
        check_int("warmup_steps", warmup_steps, low=0, hint="pass 0 for no warm-up")
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, lambda step: min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0)


class WarmupCosine(torch.optim.lr_scheduler.LambdaLR):
    """A linear warm-up over ``warmup_steps``, then a cosine decay to ``final`` × the peak at ``total_steps`` (SGDR's
    half cycle, Loshchilov & Hutter 2017; open_clip's and DiT-recipe schedules), held there after:

        η_k = η·(k + 1)/W                                             for k < W
        η_k = η·(f + (1 − f)·½(1 + cos(π·min(1, (k − W)/(T − W)))))   otherwise

    stepped every optimiser step (``lr_scheduler: {class_path: lit_genvision.models.WarmupCosine, init_args:
    {warmup_steps: 100, total_steps: 1000}}``)."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, final: float = 0.0
    ) -> None:
        check_int("warmup_steps", warmup_steps, low=0, hint="pass 0 for no warm-up")
        check_int("total_steps", total_steps, low=warmup_steps + 1, hint="pass the run's max_steps")
        check_float("final", final, low=0, high=1, hint="it is the last learning rate as a share of the peak")
        self.warmup_steps, self.total_steps, self.final = warmup_steps, total_steps, final
        super().__init__(optimizer, self.factor)

    def factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * progress))


def check_injected(optimizer: Callable | None, lr_scheduler: Callable | None) -> None:
    """Refuse, at construction and in one sentence, an injected optimiser or scheduler that would fail only when
    training starts: its learning rate, weight decay and warm-up checked like the scalar arguments, then both
    built once on a stand-in parameter."""
    for part in (optimizer, lr_scheduler):
        keywords = getattr(part, "keywords", None) or {}
        if "lr" in keywords:
            check_float("lr", keywords["lr"], low=0, low_open=True, hint="pass a positive learning rate such as 2e-4")
        if "weight_decay" in keywords:
            check_float("weight_decay", keywords["weight_decay"], low=0, hint="pass 0 for no weight decay")
        if "warmup_steps" in keywords:
            check_int("warmup_steps", keywords["warmup_steps"], low=0, hint="pass 0 for no warm-up")
    if optimizer is None:
        return
    name = getattr(getattr(optimizer, "func", optimizer), "__name__", "the optimizer")
    try:
        opt = optimizer([torch.nn.Parameter(torch.zeros(1))])
        if lr_scheduler is not None:
            name = getattr(getattr(lr_scheduler, "func", lr_scheduler), "__name__", "the scheduler")
            lr_scheduler(opt)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} cannot be built with the arguments given ({err}); fix its init_args.") from None


def optimizers(params: Iterable, optimizer: Callable | None, lr_scheduler: Callable | None) -> Any:
    """What ``configure_optimizers`` returns for an injected optimiser (AdamW at 2e-4 when None) and an optional
    scheduler, stepped every optimiser step."""
    opt = optimizer(params) if optimizer is not None else torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
    if lr_scheduler is None:
        return opt
    return {"optimizer": opt, "lr_scheduler": {"scheduler": lr_scheduler(opt), "interval": "step"}}
