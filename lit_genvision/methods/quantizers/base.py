"""The interface every quantizer shares: ``z -> (z_q, indices, aux)``.

Layout convention: the channel (code-vector) axis is ``channel_dim``, fixed at construction —
1 for images (B, C, H, W), −1 for token sequences (B, N, C). ``z_q`` has the shape of ``z``;
``indices`` has the shape of ``z`` without the channel axis (RVQ appends a last axis of stages).
Internally every quantizer works on flat vectors (M, C), M = number of positions.

The forward value of ``z_q`` is the quantized code; its gradient is the straight-through estimator
(van den Oord et al. 2017, after Bengio et al. 2013): z_q = z + sg[q(z) − z], so ∂z_q/∂z = I.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from lit_genvision.methods.quantizers.stats import CodebookUsage


@dataclass
class QuantizerAux:
    """Losses and codebook statistics of one forward.

    ``loss`` = Σ ``losses.values()`` (each part already weighted, e.g. β·commitment), a scalar with
    gradient; FSQ has no parts and a zero loss. The statistics (see ``stats.py``) are detached
    scalars, or (stages,) tensors for RVQ, one entry per stage run.
    """

    loss: Tensor
    losses: dict[str, Tensor] = field(default_factory=dict)
    perplexity: Tensor | None = None
    utilisation: Tensor | None = None
    used_codes: Tensor | None = None
    dead_codes: Tensor | None = None

    def log_dict(self, prefix: str = "quantizer/") -> dict[str, Tensor]:
        """Flat name → scalar mapping for a logger (per-stage values of RVQ are averaged)."""
        out = {f"{prefix}loss": self.loss.detach()}
        out.update({f"{prefix}{k}": v.detach() for k, v in self.losses.items()})
        for name in ("perplexity", "utilisation", "used_codes", "dead_codes"):
            value = getattr(self, name)
            if value is not None:
                out[f"{prefix}{name}"] = value.float().mean()
        return out


class Quantized(NamedTuple):
    z_q: Tensor
    indices: Tensor
    aux: QuantizerAux


class FlatResult(NamedTuple):
    """What a quantizer returns for flat vectors (M, C): the straight-through codes, the (M,) indices,
    the weighted loss parts and the statistics."""

    x_q: Tensor
    indices: Tensor
    losses: dict[str, Tensor]
    stats: dict[str, Tensor]


class Quantizer(nn.Module, ABC):
    """Base of VQ, RVQ, FSQ and LFQ.

    Subclasses implement ``quantize_flat`` (M, C) → (x_q, indices, losses) and ``codes_flat``
    (M,) → (M, C). Randomness (k-means seeding, restarts, quantizer dropout) draws from one CPU
    ``torch.Generator`` seeded by ``seed`` whose state is saved in the state dict (extra state), so a
    resumed run draws the same numbers as an uninterrupted one.
    """

    def __init__(self, dim: int, codebook_size: int, *, channel_dim: int = 1, usage_window: int = 100, seed: int = 0):
        super().__init__()
        self.dim = dim
        self.codebook_size = codebook_size
        self.channel_dim = channel_dim
        self.generator = torch.Generator().manual_seed(seed)
        self.usage = CodebookUsage(codebook_size, usage_window) if codebook_size > 0 else None

    @property
    def bits(self) -> float:
        """Bits per position: log2 of the codebook size."""
        return math.log2(self.codebook_size)

    # -- layout -------------------------------------------------------------------------------
    def flatten(self, z: Tensor) -> tuple[Tensor, torch.Size]:
        """(…, C at channel_dim, …) → (M, C) and the shape of the positions."""
        if z.shape[self.channel_dim] != self.dim:
            raise ValueError(
                f"{type(self).__name__} expects {self.dim} channels at dim {self.channel_dim}, "
                f"got shape {tuple(z.shape)}."
            )
        z_last = z.movedim(self.channel_dim, -1)
        return z_last.reshape(-1, self.dim), z_last.shape[:-1]

    def unflatten(self, x: Tensor, positions: torch.Size) -> Tensor:
        """(M, C) → positions with C moved back to channel_dim."""
        return x.reshape(*positions, x.shape[-1]).movedim(-1, self.channel_dim)

    # -- quantisation -------------------------------------------------------------------------
    @abstractmethod
    def quantize_flat(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """(M, C) → straight-through codes (M, C), indices (M,), weighted loss parts."""

    @abstractmethod
    def codes_flat(self, indices: Tensor) -> Tensor:
        """(M,) integer indices → (M, C) codes, in the output space of ``quantize_flat``."""

    def after_update(self, x: Tensor, indices: Tensor) -> None:
        """Hook run in training after the usage buffer recorded the batch (VQ restarts dead codes)."""

    def quantize_with_stats(self, x: Tensor) -> FlatResult:
        """``quantize_flat`` plus the usage statistics (buffers updated only in training)."""
        x_q, indices, losses = self.quantize_flat(x)
        assert self.usage is not None
        stats = self.usage.observe(indices, update=self.training)
        if self.training:
            self.after_update(x, indices)
        return FlatResult(x_q, indices, losses, stats)

    def forward(self, z: Tensor) -> Quantized:
        """z (channels at ``channel_dim``) → (z_q like z, indices like z without channels, aux)."""
        x, positions = self.flatten(z)
        with torch.autocast(z.device.type, enabled=False):  # distances and argmin in float32, never bf16
            res = self.quantize_with_stats(x.float())
        aux = QuantizerAux(loss=total_loss(res.losses, x), losses=res.losses, **res.stats)
        return Quantized(self.unflatten(res.x_q.to(z.dtype), positions), res.indices.reshape(positions), aux)

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """indices (positions) → codes with the channel axis inserted at ``channel_dim``."""
        return self.unflatten(self.codes_flat(indices.reshape(-1)), indices.shape)

    # -- checkpointed RNG state ---------------------------------------------------------------
    # A plain uint8 tensor (not a dict), so code that walks state_dict() values as tensors (the EMA
    # callback) handles it like any integer buffer.
    def get_extra_state(self) -> Any:
        return self.generator.get_state()

    def set_extra_state(self, state: Any) -> None:
        self.generator.set_state(state.cpu())


def total_loss(losses: dict[str, Tensor], like: Tensor) -> Tensor:
    """Σ of the loss parts, or a zero scalar on ``like``'s device when there are none."""
    if not losses:
        return like.new_zeros(())
    return torch.stack(list(losses.values())).sum()
