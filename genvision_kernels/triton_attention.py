"""Fused attention in Triton: FlashAttention-2 forward and backward.

Dao, "FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning" (2023),
Algorithms 1 and 2. A program keeps a tile of Q resident and streams K/V through it with the online
softmax (running max m, running normaliser ℓ, rescale factor e^{m_old − m_new}); it writes O and
the log-sum-exp L = m + log ℓ for the backward pass, which recomputes P = exp(S − L) tile by tile:

    dV = Pᵀ dO,   dP = dO Vᵀ,   dS = P ∘ (dP − δ),  δ_i = Σ_d dO_id O_id,
    dQ = dS K · scale,   dK = dSᵀ Q · scale.

The backward runs two kernels — one program per K/V tile accumulating dK, dV over every Q tile, and
one program per Q tile accumulating dQ — so no atomics are needed and results are deterministic.

Beyond the public tutorial kernel: non-causal *and* causal backward, query length ≠ key length
(cross-attention), lengths that are not multiples of the block sizes (masked tails), a key-padding
mask, and head dims that are not powers of two. Scores live in base 2 (exp2 is one instruction);
L is stored in base 2 as well. A query row whose keys are all masked gets output 0 and zero
gradients (L = +∞), as the torch reference does.

Every matrix product accumulates in fp32; fp32 inputs use IEEE products unless torch's own switch
allows TF32 (`precision`).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from genvision_kernels.triton_runtime import interpreting


@triton.jit
def _keep(rows, cols, col_ok, kpm_row, CAUSAL: tl.constexpr, HAS_KPM: tl.constexpr):
    """(queries × keys) mask of the scores that count: real keys, j ≤ i when causal, unpadded keys."""
    keep = col_ok[None, :]
    if CAUSAL:
        keep = keep & (cols[None, :] <= rows[:, None])
    if HAS_KPM:
        kp = tl.load(kpm_row + cols, mask=col_ok, other=0)
        keep = keep & (kp[None, :] != 0)
    return keep


@triton.jit
def _attn_fwd(
    Q, K, V, Out, LSE, KPM,
    sm_scale,
    stride_qb, stride_qh, stride_qn,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_on,
    stride_mb,
    H, N_Q, N_K, HEAD_DIM,
    CAUSAL: tl.constexpr, HAS_KPM: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    start_m = tl.program_id(0)
    off_bh = tl.program_id(1).to(tl.int64)  # batch offsets can pass 2³¹ elements
    off_b = off_bh // H
    off_h = off_bh % H
    rows = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    mask_d = offs_d < HEAD_DIM
    row_ok = rows < N_Q

    q_ptrs = Q + off_b * stride_qb + off_h * stride_qh + rows[:, None] * stride_qn + offs_d[None, :]
    q = tl.load(q_ptrs, mask=row_ok[:, None] & mask_d[None, :], other=0.0)
    k_base = K + off_b * stride_kb + off_h * stride_kh
    v_base = V + off_b * stride_vb + off_h * stride_vh
    qk_scale = sm_scale * 1.4426950408889634  # scores in base 2

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    hi = N_K
    if CAUSAL:
        hi = tl.minimum(N_K, (start_m + 1) * BLOCK_M)  # key j ≤ query i: later tiles are all masked
    for start_n in range(0, hi, BLOCK_N):
        cols = start_n + offs_n
        col_ok = cols < N_K
        k = tl.load(
            k_base + cols[:, None] * stride_kn + offs_d[None, :], mask=col_ok[:, None] & mask_d[None, :], other=0.0
        )
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale
        keep = _keep(rows, cols, col_ok, KPM + off_b * stride_mb, CAUSAL, HAS_KPM)
        s = tl.where(keep, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with no key yet: keep exp2 finite
        p = tl.exp2(s - m_safe[:, None])
        alpha = tl.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(
            v_base + cols[:, None] * stride_vn + offs_d[None, :], mask=col_ok[:, None] & mask_d[None, :], other=0.0
        )
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new

    empty = l_i == 0.0
    l_safe = tl.where(empty, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(empty, float("inf"), m_i + tl.log2(l_safe))
    o_ptrs = Out + off_b * stride_ob + off_h * stride_oh + rows[:, None] * stride_on + offs_d[None, :]
    tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=row_ok[:, None] & mask_d[None, :])
    tl.store(LSE + off_bh * N_Q + rows, lse, mask=row_ok)


@triton.jit
def _attn_bwd_dkdv(
    Q, K, V, DO, LSE, DELTA, KPM, DK, DV,
    sm_scale,
    stride_qb, stride_qh, stride_qn,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_dob, stride_doh, stride_don,
    stride_dkb, stride_dkh, stride_dkn,
    stride_dvb, stride_dvh, stride_dvn,
    stride_mb,
    H, N_Q, N_K, HEAD_DIM,
    CAUSAL: tl.constexpr, HAS_KPM: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    start_n = tl.program_id(0)
    off_bh = tl.program_id(1).to(tl.int64)  # batch offsets can pass 2³¹ elements
    off_b = off_bh // H
    off_h = off_bh % H
    cols = start_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mask_d = offs_d < HEAD_DIM
    col_ok = cols < N_K
    kv_mask = col_ok[:, None] & mask_d[None, :]

    k = tl.load(
        K + off_b * stride_kb + off_h * stride_kh + cols[:, None] * stride_kn + offs_d[None, :], mask=kv_mask, other=0.0
    )
    v = tl.load(
        V + off_b * stride_vb + off_h * stride_vh + cols[:, None] * stride_vn + offs_d[None, :], mask=kv_mask, other=0.0
    )
    keep_col = col_ok
    if HAS_KPM:
        kp = tl.load(KPM + off_b * stride_mb + cols, mask=col_ok, other=0)
        keep_col = keep_col & (kp != 0)
    q_base = Q + off_b * stride_qb + off_h * stride_qh
    do_base = DO + off_b * stride_dob + off_h * stride_doh
    qk_scale = sm_scale * 1.4426950408889634

    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    lo = 0
    if CAUSAL:
        lo = (start_n * BLOCK_N // BLOCK_M) * BLOCK_M  # queries before this tile see none of its keys
    for start_m in range(lo, N_Q, BLOCK_M):
        rows = start_m + offs_m
        row_ok = rows < N_Q
        q_mask = row_ok[:, None] & mask_d[None, :]
        q = tl.load(q_base + rows[:, None] * stride_qn + offs_d[None, :], mask=q_mask, other=0.0)
        do = tl.load(do_base + rows[:, None] * stride_don + offs_d[None, :], mask=q_mask, other=0.0)
        lse = tl.load(LSE + off_bh * N_Q + rows, mask=row_ok, other=float("inf"))
        delta = tl.load(DELTA + off_bh * N_Q + rows, mask=row_ok, other=0.0)
        s_t = tl.dot(k, tl.trans(q), input_precision=PRECISION) * qk_scale  # (keys, queries)
        keep = keep_col[:, None]
        if CAUSAL:
            keep = keep & (cols[:, None] <= rows[None, :])
        p_t = tl.where(keep, tl.exp2(s_t - lse[None, :]), 0.0)
        dv += tl.dot(p_t.to(do.dtype), do, input_precision=PRECISION)
        dp_t = tl.dot(v, tl.trans(do), input_precision=PRECISION)
        ds_t = p_t * (dp_t - delta[None, :])
        dk += tl.dot(ds_t.to(q.dtype), q, input_precision=PRECISION)

    dk = dk * sm_scale
    dk_ptrs = DK + off_b * stride_dkb + off_h * stride_dkh + cols[:, None] * stride_dkn + offs_d[None, :]
    dv_ptrs = DV + off_b * stride_dvb + off_h * stride_dvh + cols[:, None] * stride_dvn + offs_d[None, :]
    tl.store(dk_ptrs, dk.to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(dv_ptrs, dv.to(DV.dtype.element_ty), mask=kv_mask)


@triton.jit
def _attn_bwd_dq(
    Q, K, V, DO, LSE, DELTA, KPM, DQ,
    sm_scale,
    stride_qb, stride_qh, stride_qn,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_dob, stride_doh, stride_don,
    stride_dqb, stride_dqh, stride_dqn,
    stride_mb,
    H, N_Q, N_K, HEAD_DIM,
    CAUSAL: tl.constexpr, HAS_KPM: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    start_m = tl.program_id(0)
    off_bh = tl.program_id(1).to(tl.int64)  # batch offsets can pass 2³¹ elements
    off_b = off_bh // H
    off_h = off_bh % H
    rows = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    mask_d = offs_d < HEAD_DIM
    row_ok = rows < N_Q
    q_mask = row_ok[:, None] & mask_d[None, :]

    q = tl.load(
        Q + off_b * stride_qb + off_h * stride_qh + rows[:, None] * stride_qn + offs_d[None, :], mask=q_mask, other=0.0
    )
    do = tl.load(
        DO + off_b * stride_dob + off_h * stride_doh + rows[:, None] * stride_don + offs_d[None, :],
        mask=q_mask,
        other=0.0,
    )
    lse = tl.load(LSE + off_bh * N_Q + rows, mask=row_ok, other=float("inf"))
    delta = tl.load(DELTA + off_bh * N_Q + rows, mask=row_ok, other=0.0)
    k_base = K + off_b * stride_kb + off_h * stride_kh
    v_base = V + off_b * stride_vb + off_h * stride_vh
    qk_scale = sm_scale * 1.4426950408889634

    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    hi = N_K
    if CAUSAL:
        hi = tl.minimum(N_K, (start_m + 1) * BLOCK_M)
    for start_n in range(0, hi, BLOCK_N):
        cols = start_n + offs_n
        col_ok = cols < N_K
        kv_mask = col_ok[:, None] & mask_d[None, :]
        k = tl.load(k_base + cols[:, None] * stride_kn + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(v_base + cols[:, None] * stride_vn + offs_d[None, :], mask=kv_mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale
        keep = _keep(rows, cols, col_ok, KPM + off_b * stride_mb, CAUSAL, HAS_KPM)
        p = tl.where(keep, tl.exp2(s - lse[:, None]), 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)

    dq = dq * sm_scale
    dq_ptrs = DQ + off_b * stride_dqb + off_h * stride_dqh + rows[:, None] * stride_dqn + offs_d[None, :]
    tl.store(dq_ptrs, dq.to(DQ.dtype.element_ty), mask=q_mask)


def _strides(t: Tensor) -> tuple[int, int, int]:
    return t.stride(0), t.stride(1), t.stride(2)


def _head_dim_block(d: int) -> int:
    return max(16, triton.next_power_of_2(d))


def forward_blocks(head_dim: int, dtype: torch.dtype, device: torch.device) -> dict[str, int]:
    """Forward tile sizes and launch parameters per device.

    On CUDA, 16-bit inputs: 128-query × 64-key tiles for d ≤ 64, 64 × 64 up to d = 128 and 64 × 32
    beyond (the register and shared-memory budget of one SM shrinks the tiles as the head grows).
    fp32 inputs get 32 × 32 tiles: IEEE fp32 products run without tensor cores and larger tiles
    spill registers. Under the interpreter: small tiles, so tests at small lengths still cross
    several tiles and their tails.
    """
    if interpreting() or device.type != "cuda":
        return {"BLOCK_M": 32, "BLOCK_N": 16}
    if dtype == torch.float32:
        return {"BLOCK_M": 32, "BLOCK_N": 32, "num_warps": 4 if head_dim <= 64 else 8, "num_stages": 2}
    if head_dim <= 64:
        return {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 4, "num_stages": 3}
    if head_dim <= 128:
        return {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2}
    return {"BLOCK_M": 64, "BLOCK_N": 32, "num_warps": 8, "num_stages": 1}


def backward_blocks(head_dim: int, dtype: torch.dtype, device: torch.device) -> dict[str, int]:
    """The backward keeps two accumulators per program (dK and dV): smaller tiles than forward."""
    if interpreting() or device.type != "cuda":
        return {"BLOCK_M": 16, "BLOCK_N": 32}
    if dtype == torch.float32:
        block_n = 32 if head_dim <= 128 else 16
        return {"BLOCK_M": 32, "BLOCK_N": block_n, "num_warps": 4 if head_dim <= 64 else 8, "num_stages": 2}
    if head_dim <= 64:
        return {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2}
    if head_dim <= 128:
        return {"BLOCK_M": 32, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2}
    return {"BLOCK_M": 32, "BLOCK_N": 32, "num_warps": 8, "num_stages": 1}


def precision(dtype: torch.dtype) -> str:
    """fp32 products follow torch's own switch: IEEE under ``torch.set_float32_matmul_precision("highest")``
    (the default), TF32 tensor cores under "high" or "medium". 16-bit inputs ignore it."""
    if dtype == torch.float32 and torch.get_float32_matmul_precision() == "highest":
        return "ieee"
    return "tf32"


def _mask_arg(key_padding_mask: Tensor | None, q: Tensor) -> tuple[Tensor, int]:
    if key_padding_mask is None:
        return torch.empty(1, dtype=torch.int8, device=q.device), 0
    kpm = key_padding_mask.to(torch.int8).contiguous()
    return kpm, kpm.stride(0)


def attention_forward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    causal: bool,
    key_padding_mask: Tensor | None,
    sm_scale: float,
    input_precision: str,
) -> tuple[Tensor, Tensor]:
    """O and base-2 log-sum-exp (B, H, Nq) for (B, H, N, d) inputs whose last dim is contiguous."""
    b, h, n_q, d = q.shape
    n_k = k.shape[2]
    o = torch.empty_like(q, memory_format=torch.contiguous_format)
    lse = torch.empty(b, h, n_q, dtype=torch.float32, device=q.device)
    kpm, stride_mb = _mask_arg(key_padding_mask, q)
    cfg = forward_blocks(d, q.dtype, q.device)
    grid = (triton.cdiv(n_q, cfg["BLOCK_M"]), b * h)
    _attn_fwd[grid](
        q, k, v, o, lse, kpm, sm_scale,
        *_strides(q), *_strides(k), *_strides(v), *_strides(o), stride_mb,
        h, n_q, n_k, d,
        CAUSAL=causal, HAS_KPM=key_padding_mask is not None, PRECISION=input_precision,
        BLOCK_D=_head_dim_block(d), **cfg,
    )  # fmt: skip
    return o, lse


def attention_backward(
    do: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    o: Tensor,
    lse: Tensor,
    causal: bool,
    key_padding_mask: Tensor | None,
    sm_scale: float,
    input_precision: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """dQ, dK, dV; δ = rowsum(dO ∘ O) is computed once up front in fp32."""
    b, h, n_q, d = q.shape
    n_k = k.shape[2]
    if do.stride(-1) != 1:
        do = do.contiguous()
    delta = (do.float() * o.float()).sum(-1).contiguous()  # (B, H, Nq)
    dq = torch.empty_like(q, memory_format=torch.contiguous_format)
    dk = torch.empty_like(k, memory_format=torch.contiguous_format)
    dv = torch.empty_like(v, memory_format=torch.contiguous_format)
    kpm, stride_mb = _mask_arg(key_padding_mask, q)
    cfg = backward_blocks(d, q.dtype, q.device)
    flags = dict(CAUSAL=causal, HAS_KPM=key_padding_mask is not None, PRECISION=input_precision)
    common = (*_strides(q), *_strides(k), *_strides(v), *_strides(do))
    _attn_bwd_dkdv[(triton.cdiv(n_k, cfg["BLOCK_N"]), b * h)](
        q, k, v, do, lse, delta, kpm, dk, dv, sm_scale,
        *common, *_strides(dk), *_strides(dv), stride_mb,
        h, n_q, n_k, d, BLOCK_D=_head_dim_block(d), **flags, **cfg,
    )  # fmt: skip
    _attn_bwd_dq[(triton.cdiv(n_q, cfg["BLOCK_M"]), b * h)](
        q, k, v, do, lse, delta, kpm, dq, sm_scale,
        *common, *_strides(dq), stride_mb,
        h, n_q, n_k, d, BLOCK_D=_head_dim_block(d), **flags, **cfg,
    )  # fmt: skip
    return dq, dk, dv
