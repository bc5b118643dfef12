"""The single place networks call attention and GroupNorm, so fused kernels can replace them.

Parameter names and shapes match torch's own modules, so swapping the implementation never
changes a checkpoint's layout.
"""

from __future__ import annotations

from torch import Tensor, nn

from genvision_kernels import dispatch


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    key_padding_mask: Tensor | None = None,
    backend: str = "auto",
) -> Tensor:
    """softmax(Q Kᵀ/√d)·V over (B, H, N, d) tensors; see `genvision_kernels.reference.attention`."""
    return dispatch.attention(q, k, v, causal=causal, key_padding_mask=key_padding_mask, backend=backend)


class GroupNorm(nn.GroupNorm):
    """`nn.GroupNorm` with the timestep modulation x·(1+scale)+shift and SiLU fused into one call."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, backend: str = "auto") -> None:
        super().__init__(num_groups, num_channels, eps=eps)
        dispatch.check_backend(backend)
        self.backend = backend

    def forward(
        self, x: Tensor, scale: Tensor | None = None, shift: Tensor | None = None, silu: bool = False
    ) -> Tensor:
        return dispatch.group_norm(
            x, self.num_groups, self.weight, self.bias, scale=scale, shift=shift, silu=silu, eps=self.eps,
            backend=self.backend,
        )  # fmt: skip


def num_groups_for(channels: int, preferred: int = 32) -> int:
    """The largest group count ≤ ``preferred`` that divides ``channels``."""
    g = min(preferred, channels)
    while channels % g:
        g -= 1
    return g


__all__ = ["GroupNorm", "attention", "num_groups_for"]
