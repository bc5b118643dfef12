"""Class conditioning with label dropout and classifier-free guidance (Ho & Salimans 2022).

Convention: guided output = u + s·(c − u), where c and u are the network's conditional and
unconditional (null-label) outputs. s = 0 is unconditional, s = 1 conditional (no guidance),
s > 1 extrapolates; the paper's w is s − 1. It applies to any prediction (ε, v, x0, velocity).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lit_genvision.methods.diffusion import Net


def drop_labels(labels: Tensor, p: float, null_label: int, generator: torch.Generator | None = None) -> Tensor:
    """Replace each label by ``null_label`` with probability p (trains the unconditional model too)."""
    if p <= 0:
        return labels
    gdev = generator.device if generator is not None else labels.device
    drop = (torch.rand(labels.shape, generator=generator, device=gdev) < p).to(labels.device)
    return torch.where(drop, torch.full_like(labels, null_label), labels)


def classifier_free_guidance(net: Net, scale: float, null_label: int) -> Net:
    """Wrap ``net`` so that it returns u + s·(c − u); both branches run in one batched call."""

    def guided(x: Tensor, t: Tensor, cond: dict | None) -> Tensor:
        if scale == 1.0 or not cond or "label" not in cond:
            return net(x, t, cond)
        null = {**cond, "label": torch.full_like(cond["label"], null_label)}
        if scale == 0.0:
            return net(x, t, null)
        both = {k: torch.cat([v, null[k]]) if isinstance(v, Tensor) else v for k, v in cond.items()}
        c, u = net(torch.cat([x, x]), torch.cat([t, t]), both).chunk(2)
        return u + scale * (c - u)

    return guided
