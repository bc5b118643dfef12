"""Batched image augmentation on the device."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def flip_crop(x: Tensor, pad: int, flip: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """Batched random horizontal flip (if ``flip``) and random crop after ``pad``-pixel reflection
    padding, done on the device (one gather, no per-image Python)."""
    b, _, h, w = x.shape
    device = x.device
    if flip:
        flipped = torch.rand(b, device=device, generator=generator) < 0.5
        x = torch.where(flipped[:, None, None, None], x.flip(-1), x)
    if pad <= 0:
        return x
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (b,), device=device, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), device=device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=device)[None])[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=device)[None])[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b, device=device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=device)[None, :, None, None]
    return padded[batch, chan, rows, cols]
