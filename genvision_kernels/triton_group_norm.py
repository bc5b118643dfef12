"""Fused GroupNorm(+ per-sample scale/shift)(+ SiLU) in Triton, forward and backward.

Forward (Wu & He, "Group Normalization", 2018, eq. 1–4, plus the timestep modulation):

    x̂ = (x − μ_g) / √(σ²_g + ε),   z = (x̂ γ_c + β_c)(1 + s_bc) + t_bc,   y = z · sigmoid(z) (SiLU)

folded per (sample, channel) into z = a_bc x + b_bc, so the apply pass is one multiply-add.

When there are fewer (sample, group) pairs than four per SM, statistics are split across
programs: each reduces a slice of the group's spatial positions to a partial (mean, M2) with Chan
et al.'s pairwise update (no sum-of-squares cancellation), and the apply program merges its
group's partials. Otherwise, when a whole group fits in one program's registers, one program per
group reads x once, normalises and writes y (forward), and reads x and dy once and writes dx
(backward): the minimum traffic. Larger groups loop over tiles in one program per group.
Backward recomputes z from x (it is not stored) and uses

    g = ∂L/∂z = dy · σ(z)(1 + z(1 − σ(z))),   w_bc = γ_c (1 + s_bc),
    ∂L/∂x = rstd · (w g − mean_g(w g) − x̂ · mean_g(w g x̂)),
    ∂L/∂t_bc = Σ_s g,   ∂L/∂s_bc = γ_c Σ_s g x̂ + β_c Σ_s g,
    ∂L/∂γ_c = Σ_b (1 + s_bc) Σ_s g x̂,   ∂L/∂β_c = Σ_b (1 + s_bc) Σ_s g.

Layouts: a tensor is addressed as (b, c, s) ↦ b·stride_b + c·stride_c + s·stride_s over its
flattened spatial positions s, which covers NCHW (stride_s = 1) and channels-last (stride_c = 1)
without copies. Anything else is made contiguous first.
"""

from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl
from torch import Tensor

from genvision_kernels.triton_runtime import interpreting


@triton.jit
def _gn_stats(
    X, PART,
    stride_b, stride_c, stride_s,
    S, CG, G, S_PER_SPLIT, SPLIT,
    BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr,
):  # fmt: skip
    """Partial (mean, M2) of group (b, g) over spatial slice `split`."""
    bg = tl.program_id(0).to(tl.int64)  # batch offsets can pass 2³¹ elements
    split = tl.program_id(1)
    b = bg // G
    g = bg % G
    offs_c = tl.arange(0, BLOCK_C)
    mask_c = offs_c < CG
    ptr_c = X + b * stride_b + (g * CG + offs_c) * stride_c
    s_lo = split * S_PER_SPLIT
    s_hi = tl.minimum(S, s_lo + S_PER_SPLIT)

    mean = tl.zeros([BLOCK_C], tl.float32)  # per channel, over the positions seen so far
    m2 = tl.zeros([BLOCK_C], tl.float32)
    for s0 in range(s_lo, s_hi, BLOCK_S):
        offs_s = s0 + tl.arange(0, BLOCK_S)
        mask_s = offs_s < s_hi
        mask = mask_c[:, None] & mask_s[None, :]
        x = tl.load(ptr_c[:, None] + offs_s[None, :] * stride_s, mask=mask, other=0.0).to(tl.float32)
        seen = (s0 - s_lo).to(tl.float32)
        n = tl.minimum(s_hi - s0, BLOCK_S).to(tl.float32)
        t_mean = tl.sum(x, 1) / n
        d = tl.where(mask, x - t_mean[:, None], 0.0)
        t_m2 = tl.sum(d * d, 1)
        total = seen + n
        delta = t_mean - mean
        mean = mean + delta * (n / total)
        m2 = m2 + t_m2 + delta * delta * (seen * n / total)

    count = (s_hi - s_lo).to(tl.float32)  # per channel
    g_mean = tl.sum(tl.where(mask_c, mean, 0.0)) / CG
    dev = mean - g_mean
    g_m2 = tl.sum(tl.where(mask_c, m2 + count * dev * dev, 0.0))
    tl.store(PART + (bg * SPLIT + split) * 2, g_mean)
    tl.store(PART + (bg * SPLIT + split) * 2 + 1, g_m2)


@triton.jit
def _group_moments(PART, bg, S, CG, S_PER_SPLIT, SPLIT, eps, SPLIT_P2: tl.constexpr):
    """Merge a group's per-slice (mean, M2) partials: (μ, 1/√(σ² + ε))."""
    ks = tl.arange(0, SPLIT_P2)
    mk = ks < SPLIT
    p_mean = tl.load(PART + (bg * SPLIT + ks) * 2, mask=mk, other=0.0)
    p_m2 = tl.load(PART + (bg * SPLIT + ks) * 2 + 1, mask=mk, other=0.0)
    n_k = tl.where(mk, (tl.minimum(S, (ks + 1) * S_PER_SPLIT) - ks * S_PER_SPLIT) * CG, 0).to(tl.float32)
    n = S * CG * 1.0  # not .to(): Triton passes an int argument equal to 1 as a constant
    mean = tl.sum(n_k * p_mean) / n
    dev = p_mean - mean
    m2 = tl.sum(p_m2 + n_k * dev * dev)
    rstd = 1.0 / tl.sqrt(m2 / n + eps)
    return mean, rstd


@triton.jit
def _affine(W, B_, SCALE, SHIFT, b, c, mask_c, C, mean, rstd,
            HAS_W: tl.constexpr, HAS_B: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr):  # fmt: skip
    """Per-channel a, b with z = a·x + b, and w = γ(1 + s) (the factor ∂z/∂x̂)."""
    gamma = tl.full(c.shape, 1.0, tl.float32)
    beta = tl.zeros(c.shape, tl.float32)
    one_plus = tl.full(c.shape, 1.0, tl.float32)
    if HAS_W:
        gamma = tl.load(W + c, mask=mask_c, other=1.0).to(tl.float32)
    if HAS_B:
        beta = tl.load(B_ + c, mask=mask_c, other=0.0).to(tl.float32)
    if HAS_SCALE:
        one_plus = 1.0 + tl.load(SCALE + b * C + c, mask=mask_c, other=0.0).to(tl.float32)
    a = rstd * gamma * one_plus
    off = (beta - mean * rstd * gamma) * one_plus
    if HAS_SHIFT:
        off = off + tl.load(SHIFT + b * C + c, mask=mask_c, other=0.0).to(tl.float32)
    return a, off, gamma * one_plus


@triton.jit
def _saved_group(
    MEAN, RSTD, W, B_, SCALE, SHIFT, bg, G, CG, C, BLOCK_C: tl.constexpr,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr,
):  # fmt: skip
    """Backward setup of group bg = b·G + g: sample b, its channels c (masked to CG), the moments the
    forward saved, and the coefficients a, b, w of `_affine`."""
    b = bg // G
    offs_c = tl.arange(0, BLOCK_C)
    mask_c = offs_c < CG
    c = (bg % G) * CG + offs_c
    mean = tl.load(MEAN + bg)
    rstd = tl.load(RSTD + bg)
    a, off, w = _affine(W, B_, SCALE, SHIFT, b, c, mask_c, C, mean, rstd, HAS_W, HAS_B, HAS_SCALE, HAS_SHIFT)
    return b, c, mask_c, mean, rstd, a, off, w


@triton.jit
def _gn_fwd(
    X, Y, PART, MEAN, RSTD, W, B_, SCALE, SHIFT,
    stride_b, stride_c, stride_s,
    S, C, CG, G, S_PER_SPLIT, SPLIT, eps,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr,
    SILU: tl.constexpr, SPLIT_P2: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr,
):  # fmt: skip
    """y = SiLU(a·x + b) over spatial slice `split` of group (b, g); Y has X's strides."""
    bg = tl.program_id(0).to(tl.int64)  # batch offsets can pass 2³¹ elements
    split = tl.program_id(1)
    b = bg // G
    g = bg % G
    mean, rstd = _group_moments(PART, bg, S, CG, S_PER_SPLIT, SPLIT, eps, SPLIT_P2)
    is_first = split == 0
    tl.store(MEAN + bg, mean, mask=is_first)
    tl.store(RSTD + bg, rstd, mask=is_first)
    offs_c = tl.arange(0, BLOCK_C)
    mask_c = offs_c < CG
    c = g * CG + offs_c
    a, off, _w = _affine(W, B_, SCALE, SHIFT, b, c, mask_c, C, mean, rstd, HAS_W, HAS_B, HAS_SCALE, HAS_SHIFT)
    base = b * stride_b + c * stride_c
    s_lo = split * S_PER_SPLIT
    s_hi = tl.minimum(S, s_lo + S_PER_SPLIT)
    for s0 in range(s_lo, s_hi, BLOCK_S):
        offs_s = s0 + tl.arange(0, BLOCK_S)
        mask = mask_c[:, None] & (offs_s < s_hi)[None, :]
        idx = base[:, None] + offs_s[None, :] * stride_s
        x = tl.load(X + idx, mask=mask, other=0.0).to(tl.float32)
        z = x * a[:, None] + off[:, None]
        if SILU:
            z = z * tl.sigmoid(z)
        tl.store(Y + idx, z.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _gn_fwd_single(
    X, Y, MEAN, RSTD, W, B_, SCALE, SHIFT,
    stride_b, stride_c, stride_s,
    S, C, CG, G, eps,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr,
    SILU: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr,
):  # fmt: skip
    """One program per group (b, g), the whole group in registers: exact two-pass moments, one read."""
    bg = tl.program_id(0).to(tl.int64)  # batch offsets can pass 2³¹ elements
    b = bg // G
    g = bg % G
    offs_c = tl.arange(0, BLOCK_C)
    mask_c = offs_c < CG
    c = g * CG + offs_c
    offs_s = tl.arange(0, BLOCK_S)
    mask = mask_c[:, None] & (offs_s < S)[None, :]
    idx = (b * stride_b + c * stride_c)[:, None] + offs_s[None, :] * stride_s
    x = tl.load(X + idx, mask=mask, other=0.0).to(tl.float32)
    n = S * CG * 1.0
    mean = tl.sum(tl.sum(x, 1), 0) / n
    d = tl.where(mask, x - mean, 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(tl.sum(d * d, 1), 0) / n + eps)
    tl.store(MEAN + bg, mean)
    tl.store(RSTD + bg, rstd)
    a, off, _w = _affine(W, B_, SCALE, SHIFT, b, c, mask_c, C, mean, rstd, HAS_W, HAS_B, HAS_SCALE, HAS_SHIFT)
    z = x * a[:, None] + off[:, None]
    if SILU:
        z = z * tl.sigmoid(z)
    tl.store(Y + idx, z.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _grad_z(x, dy, a, off, SILU: tl.constexpr):
    """∂L/∂z from ∂L/∂y, recomputing the pre-activation z = a·x + b."""
    if SILU:
        z = x * a[:, None] + off[:, None]
        sig = tl.sigmoid(z)
        return dy * sig * (1.0 + z * (1.0 - sig))
    return dy


@triton.jit
def _gn_bwd_reduce(
    X, DY, MEAN, RSTD, W, B_, SCALE, SHIFT, PART,
    stride_b, stride_c, stride_s, dstride_b, dstride_c, dstride_s,
    S, C, CG, G, S_PER_SPLIT, SPLIT,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr,
    SILU: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr,
):  # fmt: skip
    """Per (b, c, split): Σ_s g and Σ_s g·x̂ over the slice, into PART[(b·C + c)·SPLIT + split]."""
    bg = tl.program_id(0).to(tl.int64)  # batch offsets can pass 2³¹ elements
    split = tl.program_id(1)
    b, c, mask_c, mean, rstd, a, off, _w = _saved_group(MEAN, RSTD, W, B_, SCALE, SHIFT, bg, G, CG, C, BLOCK_C,
                                                        HAS_W, HAS_B, HAS_SCALE, HAS_SHIFT)  # fmt: skip
    x_base = b * stride_b + c * stride_c
    d_base = b * dstride_b + c * dstride_c
    s_lo = split * S_PER_SPLIT
    s_hi = tl.minimum(S, s_lo + S_PER_SPLIT)
    sum_g = tl.zeros([BLOCK_C], tl.float32)
    sum_gx = tl.zeros([BLOCK_C], tl.float32)
    for s0 in range(s_lo, s_hi, BLOCK_S):
        offs_s = s0 + tl.arange(0, BLOCK_S)
        mask = mask_c[:, None] & (offs_s < s_hi)[None, :]
        x = tl.load(X + x_base[:, None] + offs_s[None, :] * stride_s, mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(DY + d_base[:, None] + offs_s[None, :] * dstride_s, mask=mask, other=0.0).to(tl.float32)
        gz = _grad_z(x, dy, a, off, SILU)
        sum_g += tl.sum(gz, 1)
        sum_gx += tl.sum(gz * ((x - mean) * rstd), 1)
    out = PART + ((b * C + c) * SPLIT + split) * 2
    tl.store(out, sum_g, mask=mask_c)
    tl.store(out + 1, sum_gx, mask=mask_c)


@triton.jit
def _gn_bwd_dx(
    X, DY, DX, MEAN, RSTD, W, B_, SCALE, SHIFT, SUMS,
    stride_b, stride_c, stride_s, dstride_b, dstride_c, dstride_s,
    S, C, CG, G, S_PER_SPLIT,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr,
    SILU: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr,
):  # fmt: skip
    """dx = rstd · (w g − mean_g(w g) − x̂ · mean_g(w g x̂)); SUMS holds (Σ_s g, Σ_s g x̂) per (b, c)."""
    bg = tl.program_id(0).to(tl.int64)  # batch offsets can pass 2³¹ elements
    split = tl.program_id(1)
    b, c, mask_c, mean, rstd, a, off, w = _saved_group(MEAN, RSTD, W, B_, SCALE, SHIFT, bg, G, CG, C, BLOCK_C,
                                                       HAS_W, HAS_B, HAS_SCALE, HAS_SHIFT)  # fmt: skip
    sum_g = tl.load(SUMS + (b * C + c) * 2, mask=mask_c, other=0.0)
    sum_gx = tl.load(SUMS + (b * C + c) * 2 + 1, mask=mask_c, other=0.0)
    n = S * CG * 1.0  # not .to(): Triton passes an int argument equal to 1 as a constant
    c1 = tl.sum(w * sum_g) / n
    c2 = tl.sum(w * sum_gx) / n
    x_base = b * stride_b + c * stride_c
    d_base = b * dstride_b + c * dstride_c
    s_lo = split * S_PER_SPLIT
    s_hi = tl.minimum(S, s_lo + S_PER_SPLIT)
    for s0 in range(s_lo, s_hi, BLOCK_S):
        offs_s = s0 + tl.arange(0, BLOCK_S)
        mask = mask_c[:, None] & (offs_s < s_hi)[None, :]
        x_idx = x_base[:, None] + offs_s[None, :] * stride_s
        x = tl.load(X + x_idx, mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(DY + d_base[:, None] + offs_s[None, :] * dstride_s, mask=mask, other=0.0).to(tl.float32)
        gz = _grad_z(x, dy, a, off, SILU)
        dx = rstd * (w[:, None] * gz - c1 - (x - mean) * rstd * c2)
        tl.store(DX + x_idx, dx.to(DX.dtype.element_ty), mask=mask)


@triton.jit
def _gn_bwd_single(
    X, DY, DX, MEAN, RSTD, W, B_, SCALE, SHIFT, SUMS,
    stride_b, stride_c, stride_s, dstride_b, dstride_c, dstride_s,
    S, C, CG, G,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr,
    SILU: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr,
):  # fmt: skip
    """One program per group: reads x and dy once, writes dx and the per-(b, c) sums (Σ_s g, Σ_s g x̂)."""
    bg = tl.program_id(0).to(tl.int64)  # batch offsets can pass 2³¹ elements
    b, c, mask_c, mean, rstd, a, off, w = _saved_group(MEAN, RSTD, W, B_, SCALE, SHIFT, bg, G, CG, C, BLOCK_C,
                                                       HAS_W, HAS_B, HAS_SCALE, HAS_SHIFT)  # fmt: skip
    offs_s = tl.arange(0, BLOCK_S)
    mask = mask_c[:, None] & (offs_s < S)[None, :]
    x_idx = (b * stride_b + c * stride_c)[:, None] + offs_s[None, :] * stride_s
    x = tl.load(X + x_idx, mask=mask, other=0.0).to(tl.float32)
    d_idx = (b * dstride_b + c * dstride_c)[:, None] + offs_s[None, :] * dstride_s
    dy = tl.load(DY + d_idx, mask=mask, other=0.0).to(tl.float32)
    gz = _grad_z(x, dy, a, off, SILU)
    x_hat = (x - mean) * rstd
    sum_g = tl.sum(gz, 1)
    sum_gx = tl.sum(gz * x_hat, 1)
    tl.store(SUMS + (b * C + c) * 2, sum_g, mask=mask_c)
    tl.store(SUMS + (b * C + c) * 2 + 1, sum_gx, mask=mask_c)
    n = S * CG * 1.0
    c1 = tl.sum(w * sum_g, 0) / n
    c2 = tl.sum(w * sum_gx, 0) / n
    dx = rstd * (w[:, None] * gz - c1 - x_hat * c2)
    tl.store(DX + x_idx, dx.to(DX.dtype.element_ty), mask=mask)


def flat_strides(t: Tensor) -> tuple[int, int, int] | None:
    """(stride_b, stride_c, stride_s) when the spatial dims of (B, C, *spatial) collapse to one
    stride — true for NCHW-contiguous and channels-last tensors — else None. Size-1 dims, whose
    strides mean nothing, are ignored."""
    dims = [(n, st) for n, st in zip(t.shape[2:], t.stride()[2:], strict=True) if n > 1]
    for (_, outer), (n, inner) in zip(dims, dims[1:], strict=False):
        if outer != inner * n:
            return None
    return t.stride(0), t.stride(1), dims[-1][1] if dims else 1


def with_flat_strides(t: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
    """``t`` itself when it is dense NCHW or channels-last, else a contiguous copy; and its strides."""
    dense = t.is_contiguous() or (t.ndim == 4 and t.is_contiguous(memory_format=torch.channels_last))
    if not dense:
        t = t.contiguous()
    strides = flat_strides(t)
    assert strides is not None
    return t, strides


@functools.cache  # asked on every GroupNorm call
def _num_sms(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 4  # the interpreter: small, so tests at small shapes still split the statistics


def launch_plan(batch: int, groups: int, spatial: int, group_channels: int, device: torch.device) -> dict[str, int]:
    """Tile sizes and the spatial split.

    When B·G programs would give the GPU fewer than four per SM, each group's positions are split
    into slices (tiles down to 64 positions on CUDA, so a slice still reads whole cache lines) to
    get there. ``SINGLE`` = 1 when, unsplit, one program holds the whole group (at most 8192
    elements on CUDA; 256 under the interpreter, so the tests cover every path at small shapes).
    """
    compiled = device.type == "cuda" and not interpreting()
    block_c = triton.next_power_of_2(group_channels)
    want = max(1, math.ceil(4 * _num_sms(device) / max(1, batch * groups)))  # slices per group
    if compiled:
        block_s = max(1, min(triton.next_power_of_2(spatial), 4096 // block_c))  # ≤ 4096 elements a tile
        if want > 1:  # thinner tiles, so a small batch's groups can be sliced
            block_s = max(min(block_s, 64), min(block_s, triton.next_power_of_2(triton.cdiv(spatial, want))))
    else:
        block_s = 8
    tiles = triton.cdiv(spatial, block_s)
    split = min(tiles, want)
    s_per_split = triton.cdiv(tiles, split) * block_s
    split = triton.cdiv(spatial, s_per_split)
    whole = block_c * triton.next_power_of_2(spatial)
    if split == 1 and whole <= (8192 if compiled else 256):
        plan = {"BLOCK_C": block_c, "BLOCK_S": triton.next_power_of_2(spatial), "S_PER_SPLIT": spatial, "SPLIT": 1}
        plan["SINGLE"] = 1
        if compiled:
            plan["num_warps"] = 4 if whole <= 1024 else 8 if whole <= 4096 else 16
        return plan
    plan = {"BLOCK_C": block_c, "BLOCK_S": block_s, "S_PER_SPLIT": s_per_split, "SPLIT": split, "SINGLE": 0}
    if compiled:
        plan["num_warps"] = 4 if block_c * block_s <= 2048 else 8
    return plan


def _optional(t: Tensor | None, like: Tensor) -> Tensor:
    return t if t is not None else like.new_empty(1)


def _flags(weight: Tensor | None, bias: Tensor | None, scale: Tensor | None, shift: Tensor | None, silu: bool) -> dict:
    present = {"HAS_W": weight, "HAS_B": bias, "HAS_SCALE": scale, "HAS_SHIFT": shift}
    return {k: t is not None for k, t in present.items()} | {"SILU": silu}


def group_norm_forward(
    x: Tensor,
    num_groups: int,
    weight: Tensor | None,
    bias: Tensor | None,
    scale: Tensor | None,
    shift: Tensor | None,
    silu: bool,
    eps: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """y (same dtype and memory layout as x), and the per-(sample, group) mean and rstd in fp32.

    ``scale`` and ``shift`` are contiguous (B, C); ``x`` must have flat strides (`flat_strides`)."""
    b, c = x.shape[:2]
    s = math.prod(x.shape[2:])
    cg = c // num_groups
    strides = flat_strides(x)
    assert strides is not None
    y = torch.empty_like(x)
    assert flat_strides(y) == strides
    plan = launch_plan(b, num_groups, s, cg, x.device)
    split = plan["SPLIT"]
    part = torch.empty(b * num_groups, split, 2, dtype=torch.float32, device=x.device)
    mean = torch.empty(b * num_groups, dtype=torch.float32, device=x.device)
    rstd = torch.empty_like(mean)
    grid = (b * num_groups, split)
    tiles = {key: plan[key] for key in ("BLOCK_C", "BLOCK_S")}
    launch = {key: plan[key] for key in ("num_warps",) if key in plan}
    params = (_optional(weight, x), _optional(bias, x), _optional(scale, x), _optional(shift, x))
    flags = _flags(weight, bias, scale, shift, silu)
    if plan["SINGLE"]:
        _gn_fwd_single[(b * num_groups,)](
            x, y, mean, rstd, *params, *strides, s, c, cg, num_groups, eps, **flags, **tiles, **launch
        )
        return y, mean, rstd
    _gn_stats[grid](x, part, *strides, s, cg, num_groups, plan["S_PER_SPLIT"], split, **tiles, **launch)
    _gn_fwd[grid](
        x, y, part, mean, rstd, *params, *strides, s, c, cg, num_groups, plan["S_PER_SPLIT"], split, eps,
        SPLIT_P2=triton.next_power_of_2(split), **flags, **tiles, **launch,
    )  # fmt: skip
    return y, mean, rstd


def group_norm_backward(
    dy: Tensor,
    x: Tensor,
    mean: Tensor,
    rstd: Tensor,
    num_groups: int,
    weight: Tensor | None,
    bias: Tensor | None,
    scale: Tensor | None,
    shift: Tensor | None,
    silu: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """dx (x's dtype and layout), and the fp32 per-(b, c) sums (Σ_s g, Σ_s g x̂) of shape (B, C, 2)
    from which the caller forms the parameter gradients."""
    b, c = x.shape[:2]
    s = math.prod(x.shape[2:])
    cg = c // num_groups
    strides = flat_strides(x)
    assert strides is not None
    dy, dstrides = with_flat_strides(dy)
    plan = launch_plan(b, num_groups, s, cg, x.device)
    split = plan["SPLIT"]
    part = torch.empty(b * c, split, 2, dtype=torch.float32, device=x.device)
    grid = (b * num_groups, split)
    tiles = {key: plan[key] for key in ("BLOCK_C", "BLOCK_S")}
    launch = {key: plan[key] for key in ("num_warps",) if key in plan}
    params = (_optional(weight, x), _optional(bias, x), _optional(scale, x), _optional(shift, x))
    flags = _flags(weight, bias, scale, shift, silu)
    dx = torch.empty_like(x)
    if plan["SINGLE"]:
        sums = torch.empty(b * c, 2, dtype=torch.float32, device=x.device)
        _gn_bwd_single[(b * num_groups,)](
            x, dy, dx, mean, rstd, *params, sums, *strides, *dstrides, s, c, cg, num_groups, **flags, **tiles, **launch
        )
        return dx, sums.view(b, c, 2)
    _gn_bwd_reduce[grid](
        x, dy, mean, rstd, *params, part, *strides, *dstrides,
        s, c, cg, num_groups, plan["S_PER_SPLIT"], split, **flags, **tiles, **launch,
    )  # fmt: skip
    sums = part.sum(1) if split > 1 else part[:, 0]
    sums = sums.contiguous()
    _gn_bwd_dx[grid](
        x, dy, dx, mean, rstd, *params, sums, *strides, *dstrides,
        s, c, cg, num_groups, plan["S_PER_SPLIT"], **flags, **tiles, **launch,
    )  # fmt: skip
    return dx, sums.view(b, c, 2)
