"""`autograd.Function` wrappers around the Triton kernels, with the references' signatures.

`attention` and `group_norm` here accept what `genvision_kernels.reference.attention` and
`genvision_kernels.reference.group_norm` accept (float16, bfloat16 or float32 tensors) and return the same
thing within the tolerances the tests state; they only run where `genvision_kernels.triton_runtime.can_run`
is true. With ``fallback=True`` (``kernels: auto``) a Triton build failure in the backward pass is
answered by the reference's gradients instead of an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from genvision_kernels import reference
from genvision_kernels import triton_attention as ta
from genvision_kernels import triton_group_norm as tg
from genvision_kernels.triton_runtime import FUSED_DTYPES, MAX_HEAD_DIM, is_build_error, record_failure


def _reference_grads(
    op: str, err: Exception, fn: Callable[..., Tensor], inputs: list[Tensor | None], grad_out: Tensor
) -> list[Tensor | None]:
    """Gradients of ``fn(*inputs)`` by the torch reference, after the Triton backward failed to build."""
    dtype = next(t.dtype for t in inputs if t is not None)
    record_failure(op, dtype, err)
    leaves = [None if t is None else t.detach().requires_grad_(t.is_floating_point()) for t in inputs]
    wrt = [t for t in leaves if t is not None and t.requires_grad]
    with torch.enable_grad():
        grads = iter(torch.autograd.grad(fn(*leaves), wrt, grad_out, allow_unused=True))
    return [next(grads) if t is not None and t.requires_grad else None for t in leaves]


class _Attention(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        causal: bool,
        key_padding_mask: Tensor | None,
        fallback: bool,
    ) -> Tensor:
        sm_scale = 1.0 / math.sqrt(q.shape[-1])
        precision = ta.precision(q.dtype)
        o, lse = ta.attention_forward(q, k, v, causal, key_padding_mask, sm_scale, precision)
        ctx.save_for_backward(q, k, v, o, lse, key_padding_mask)
        ctx.causal, ctx.sm_scale, ctx.precision, ctx.fallback = causal, sm_scale, precision, fallback
        return o

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, do: Tensor) -> tuple[Tensor | None, ...]:
        q, k, v, o, lse, key_padding_mask = ctx.saved_tensors
        try:
            dq, dk, dv = ta.attention_backward(
                do, q, k, v, o, lse, ctx.causal, key_padding_mask, ctx.sm_scale, ctx.precision
            )
        except Exception as err:
            if not (ctx.fallback and is_build_error(err)):
                raise

            def ref(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
                return reference.attention(q, k, v, causal=ctx.causal, key_padding_mask=key_padding_mask)

            dq, dk, dv = _reference_grads("attention", err, ref, [q, k, v], do)
        return dq, dk, dv, None, None, None


def _check_dtype(op: str, *tensors: Tensor | None) -> None:
    for t in tensors:
        if t is not None and t.dtype not in FUSED_DTYPES:
            raise ValueError(
                f"the fused {op} takes float16, bfloat16 or float32 tensors, got {t.dtype}; use kernels: auto or torch."
            )


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    key_padding_mask: Tensor | None = None,
    fallback: bool = False,
) -> Tensor:
    """Fused softmax(Q Kᵀ/√d)·V; same contract as `genvision_kernels.reference.attention`."""
    shapes = ", ".join(str(tuple(t.shape)) for t in (q, k, v))
    if q.ndim != 4 or k.shape != v.shape or q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"attention expects q (B, H, Nq, d) and k, v (B, H, Nk, d) with the same B, H and d, got {shapes}; "
            "reshape the inputs to that layout."
        )
    if q.shape[-1] > MAX_HEAD_DIM:
        raise ValueError(
            f"the fused attention takes head dims up to {MAX_HEAD_DIM}, got {q.shape[-1]}; use more heads, "
            "or kernels: auto or torch."
        )
    _check_dtype("attention", q, k, v)
    if q.numel() == 0 or k.numel() == 0:  # nothing to launch
        return reference.attention(q, k, v, causal=causal, key_padding_mask=key_padding_mask)
    dtype = torch.promote_types(torch.promote_types(q.dtype, k.dtype), v.dtype)
    q, k, v = (t.to(dtype) if t.stride(-1) == 1 else t.to(dtype).contiguous() for t in (q, k, v))
    if key_padding_mask is not None and key_padding_mask.shape != (q.shape[0], k.shape[2]):
        raise ValueError(
            f"key_padding_mask must be (B, Nk) = {(q.shape[0], k.shape[2])} with True for the keys to keep, "
            f"got {tuple(key_padding_mask.shape)}; pass one row per sample."
        )
    return _Attention.apply(q, k, v, causal, key_padding_mask, fallback)


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
        fallback: bool,
    ) -> Tensor:
        y, mean, rstd = tg.group_norm_forward(x, num_groups, weight, bias, scale, shift, silu, eps)
        ctx.save_for_backward(x, mean, rstd, weight, bias, scale, shift)
        ctx.num_groups, ctx.silu, ctx.eps, ctx.fallback = num_groups, silu, eps, fallback
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor | None, ...]:
        x, mean, rstd, weight, bias, scale, shift = ctx.saved_tensors
        try:
            dx, sums = tg.group_norm_backward(dy, x, mean, rstd, ctx.num_groups, weight, bias, scale, shift, ctx.silu)
        except Exception as err:
            if not (ctx.fallback and is_build_error(err)):
                raise

            def ref(x: Tensor, w: Tensor | None, b: Tensor | None, s: Tensor | None, t: Tensor | None) -> Tensor:
                return reference.group_norm(x, ctx.num_groups, w, b, scale=s, shift=t, silu=ctx.silu, eps=ctx.eps)

            grads = _reference_grads("group_norm", err, ref, [x, weight, bias, scale, shift], dy)
            return grads[0], None, *grads[1:], None, None, None
        return (dx, None, *_parameter_grads(sums, weight, bias, scale, shift), None, None, None)


def _parameter_grads(
    sums: Tensor, weight: Tensor | None, bias: Tensor | None, scale: Tensor | None, shift: Tensor | None
) -> tuple[Tensor | None, ...]:
    """∂L/∂γ, ∂L/∂β, ∂L/∂scale, ∂L/∂shift from the per-(b, c) sums (Σ_s g, Σ_s g x̂) — see
    `genvision_kernels.triton_group_norm`."""
    sum_g, sum_gx = sums[..., 0], sums[..., 1]  # (B, C) fp32
    one_plus = 1.0 + scale.float() if scale is not None else None
    d_weight = d_bias = d_scale = d_shift = None
    if weight is not None:
        d_weight = (sum_gx * one_plus if one_plus is not None else sum_gx).sum(0).to(weight.dtype)
    if bias is not None:
        d_bias = (sum_g * one_plus if one_plus is not None else sum_g).sum(0).to(bias.dtype)
    if scale is not None:
        d_scale = sum_gx * weight.float() if weight is not None else sum_gx
        d_scale = (d_scale + sum_g * bias.float() if bias is not None else d_scale).to(scale.dtype)
    if shift is not None:
        d_shift = sum_g.to(shift.dtype)
    return d_weight, d_bias, d_scale, d_shift


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
    fallback: bool = False,
) -> Tensor:
    """Fused GroupNorm(+scale/shift)(+SiLU); same contract as `genvision_kernels.reference.group_norm`."""
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise ValueError(
            f"group_norm expects (B, C, *spatial) with C divisible by {num_groups} groups, got {tuple(x.shape)}; "
            "choose a group count that divides the channels."
        )
    _check_dtype("group_norm", x, weight, bias, scale, shift)
    if x.numel() == 0:  # nothing to launch
        return reference.group_norm(x, num_groups, weight, bias, scale=scale, shift=shift, silu=silu, eps=eps)
    b, c = x.shape[:2]
    x, _ = tg.with_flat_strides(x)
    mods = []
    for name, t in (("scale", scale), ("shift", shift)):
        if t is not None and t.numel() != b * c:
            raise ValueError(
                f"group_norm {name} must hold one value per sample and channel, shape ({b}, {c}), "
                f"got {tuple(t.shape)}; project the embedding to {c} values per sample."
            )
        mods.append(None if t is None else t.reshape(b, c).contiguous())
    return _GroupNorm.apply(x, num_groups, weight, bias, mods[0], mods[1], silu, eps, fallback)
