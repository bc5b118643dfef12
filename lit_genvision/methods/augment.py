"""Batched image augmentation on the device."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def flip_crop(x: Tensor, pad: int, flip: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """Random horizontal flip (if ``flip``) and random crop after ``pad``-pixel reflection padding,
    for a whole batch (B, C, H, W) at once: two gathers (rows, then columns with the flip folded
    into the column order), no per-image Python."""
    b, c, h, w = x.shape
    dev = x.device
    gdev = generator.device if generator is not None else dev
    cols = torch.arange(w, device=dev).expand(b, w)
    if flip:
        flipped = (torch.rand(b, device=gdev, generator=generator) < 0.5).to(dev)
        cols = torch.where(flipped[:, None], cols.flip(-1), cols)
    if pad <= 0:
        return x.gather(3, cols[:, None, None, :].expand(b, c, h, w)) if flip else x
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")  # (B, C, H + 2p, W + 2p)
    dy = torch.randint(0, 2 * pad + 1, (b,), device=gdev, generator=generator).to(dev)
    dx = torch.randint(0, 2 * pad + 1, (b,), device=gdev, generator=generator).to(dev)
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None].expand(b, c, h, w + 2 * pad)
    out = padded.gather(2, rows)  # (B, C, H, W + 2p)
    return out.gather(3, (dx[:, None] + cols)[:, None, None, :].expand(b, c, h, w))
