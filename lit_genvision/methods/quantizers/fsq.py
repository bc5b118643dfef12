"""Finite scalar quantisation (Mentzer et al. 2023, arXiv 2309.15505).

Each of the d channels is bounded to L_i levels and rounded; the codebook is implicit, the grid
∏_i {0..L_i − 1} of size ∏ L_i, with no codebook to learn and no loss term:

    (1) f(z_i) = tanh(z_i + shift_i)·h_i − o_i,    h_i = (L_i − 1)(1 − ε)/2,
        o_i = ½ for even L_i (else 0),  shift_i = tan(o_i / h_i)
    (2) ẑ_i = round(f(z_i)) with the straight-through gradient, ẑ_i ∈ {−⌊L_i/2⌋ .. ⌈L_i/2⌉ − 1}
    (3) code_i = ẑ_i / ⌊L_i/2⌋  (roughly in [−1, 1])
    (4) index = Σ_i (ẑ_i + ⌊L_i/2⌋) · Π_{j<i} L_j   (mixed radix; a bijection with 0..∏L_i − 1)

The shift follows the paper's reference code: for L_i ≥ 4 it is within 1% of atanh(o_i / h_i), the
value that makes f(0) = 0, and unlike atanh it stays finite for L_i = 2 (where o_i / h_i > 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from lit_genvision.methods.quantizers.base import Quantizer


class FiniteScalarQuantizer(Quantizer):
    """FSQ over ``len(levels)`` channels with L_i = ``levels[i]`` (the paper's e.g. [8, 5, 5, 5]).

    Args:
        levels: levels per channel, each ≥ 2.
        eps: ε of the bound (1).
        usage_window: the window, in training passes, of utilisation and dead codes.
        channel_dim: the channel axis of z (1: (B, C, H, W); −1: (B, N, C)).
    """

    half_width: Tensor
    basis: Tensor
    levels_t: Tensor

    def __init__(
        self, levels: Sequence[int], *, eps: float = 1e-3, usage_window: int = 100, channel_dim: int = 1
    ) -> None:
        if any(level < 2 for level in levels):
            raise ValueError(f"every FSQ level must be ≥ 2, got {list(levels)}.")
        super().__init__(len(levels), math.prod(levels), channel_dim=channel_dim, usage_window=usage_window)
        self.levels = list(levels)
        self.eps = eps
        levels_t = torch.tensor(self.levels)
        basis = torch.cumprod(torch.tensor([1, *self.levels[:-1]]), dim=0)
        self.register_buffer("levels_t", levels_t, persistent=False)
        self.register_buffer("half_width", levels_t // 2, persistent=False)
        self.register_buffer("basis", basis, persistent=False)

    def bound(self, z: Tensor) -> Tensor:
        """(1): channel i into an interval whose rounding takes exactly L_i integer values."""
        levels = self.levels_t.to(z.dtype)
        half_l = (levels - 1) * (1 - self.eps) / 2
        offset = torch.where(self.levels_t % 2 == 0, 0.5, 0.0).to(z.dtype)
        shift = torch.tan(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def quantize_flat(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        bounded = self.bound(x)
        rounded = bounded + (torch.round(bounded) - bounded).detach()  # (2), straight-through
        codes = rounded / self.half_width.to(x.dtype)  # (3)
        return codes, self.codes_to_indices(codes.detach()), {}

    def codes_to_indices(self, codes: Tensor) -> Tensor:
        """(4): codes (…, d) → integer indices (…)."""
        digits = torch.round(codes * self.half_width + self.half_width).long()  # ∈ {0..L_i − 1}
        return (digits * self.basis).sum(-1)

    def codes_flat(self, indices: Tensor) -> Tensor:
        """The inverse of (4): digit_i = ⌊index / Π_{j<i} L_j⌋ mod L_i, then (3)."""
        digits = (indices[..., None] // self.basis) % self.levels_t
        return (digits - self.half_width).float() / self.half_width.float()
