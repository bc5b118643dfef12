"""`autograd.Function` wrappers around the Triton kernels, with the references' signatures.

`attention` and `group_norm` here accept exactly what `kernels.reference.attention` and
`kernels.reference.group_norm` accept and return the same thing (within the tolerances the tests
state); they only run where `kernels.triton_runtime.can_run` is true.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from kernels import triton_attention as ta
from kernels import triton_group_norm as tg


class _Attention(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx, q: Tensor, k: Tensor, v: Tensor, causal: bool, key_padding_mask: Tensor | None
    ) -> Tensor:
        sm_scale = 1.0 / math.sqrt(q.shape[-1])
        o, lse = ta.attention_forward(q, k, v, causal, key_padding_mask, sm_scale)
        ctx.save_for_backward(q, k, v, o, lse, key_padding_mask)
        ctx.causal, ctx.sm_scale = causal, sm_scale
        return o

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, do: Tensor) -> tuple[Tensor | None, ...]:
        q, k, v, o, lse, key_padding_mask = ctx.saved_tensors
        dq, dk, dv = ta.attention_backward(do, q, k, v, o, lse, ctx.causal, key_padding_mask, ctx.sm_scale)
        return dq, dk, dv, None, None


def _last_dim_contiguous(t: Tensor) -> Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    key_padding_mask: Tensor | None = None,
) -> Tensor:
    """Fused softmax(Q Kᵀ/√d)·V; same contract as `kernels.reference.attention`."""
    shapes = ", ".join(str(tuple(t.shape)) for t in (q, k, v))
    if q.ndim != 4 or k.shape != v.shape or q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention expects q (B, H, Nq, d) and k, v (B, H, Nk, d), got {shapes}.")
    if q.shape[-1] > 256:
        raise ValueError(f"the fused attention supports head dims up to 256, got {q.shape[-1]}; use kernels: torch.")
    dtype = torch.promote_types(torch.promote_types(q.dtype, k.dtype), v.dtype)
    q, k, v = (_last_dim_contiguous(t.to(dtype)) for t in (q, k, v))
    if key_padding_mask is not None and key_padding_mask.shape != (q.shape[0], k.shape[2]):
        raise ValueError(
            f"key_padding_mask must be (B, Nk) = {(q.shape[0], k.shape[2])}, got {tuple(key_padding_mask.shape)}."
        )
    return _Attention.apply(q, k, v, causal, key_padding_mask)


class _GroupNorm(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: Tensor,
        num_groups: int,
        weight: Tensor | None,
        bias: Tensor | None,
        scale: Tensor | None,
        shift: Tensor | None,
        silu: bool,
        eps: float,
    ) -> Tensor:
        y, mean, rstd = tg.group_norm_forward(x, num_groups, weight, bias, scale, shift, silu, eps)
        ctx.save_for_backward(x, mean, rstd, weight, bias, scale, shift)
        ctx.num_groups, ctx.silu = num_groups, silu
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor | None, ...]:
        x, mean, rstd, weight, bias, scale, shift = ctx.saved_tensors
        dx, sums = tg.group_norm_backward(dy, x, mean, rstd, ctx.num_groups, weight, bias, scale, shift, ctx.silu)
        sum_g, sum_gx = sums[..., 0], sums[..., 1]  # (B, C) fp32
        one_plus = 1.0 + scale.float() if scale is not None else None
        need = ctx.needs_input_grad
        d_weight = d_bias = d_scale = d_shift = None
        if weight is not None and need[2]:
            d_weight = (sum_gx * one_plus if one_plus is not None else sum_gx).sum(0).to(weight.dtype)
        if bias is not None and need[3]:
            d_bias = (sum_g * one_plus if one_plus is not None else sum_g).sum(0).to(bias.dtype)
        if scale is not None and need[4]:
            d_scale = sum_gx * weight.float() if weight is not None else sum_gx
            d_scale = (d_scale + sum_g * bias.float() if bias is not None else d_scale).to(scale.dtype)
        if shift is not None and need[5]:
            d_shift = sum_g.to(shift.dtype)
        return dx if need[0] else None, None, d_weight, d_bias, d_scale, d_shift, None, None


def group_norm(
    x: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    *,
    scale: Tensor | None = None,
    shift: Tensor | None = None,
    silu: bool = False,
    eps: float = 1e-5,
) -> Tensor:
    """Fused GroupNorm(+scale/shift)(+SiLU); same contract as `kernels.reference.group_norm`."""
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise ValueError(
            f"group_norm expects (B, C, *spatial) with C divisible by {num_groups} groups, got {tuple(x.shape)}."
        )
    b, c = x.shape[:2]
    x, _ = tg.with_flat_strides(x)
    mods = []
    for name, t in (("scale", scale), ("shift", shift)):
        if t is not None and t.numel() != b * c:
            raise ValueError(
                f"group_norm {name} must hold one value per (sample, channel), {(b, c)}, got {tuple(t.shape)}."
            )
        mods.append(None if t is None else t.reshape(b, c).contiguous())
    y = _GroupNorm.apply(x, num_groups, weight, bias, mods[0], mods[1], silu, eps)
    return y
