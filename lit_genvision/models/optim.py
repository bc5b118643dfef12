"""Optimiser set-ups shared by the families."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def adamw_with_warmup(
    params: Iterable,
    lr: float,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    betas: tuple[float, float] = (0.9, 0.999),
) -> Any:
    """AdamW, with a linear learning-rate warm-up over ``warmup_steps`` optimiser steps if > 0."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)
    if not warmup_steps:
        return opt
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup_steps))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
