"""Reference (specification) implementations of the ops the fused kernels replace.

Each function here defines *what* is computed; a fused kernel with the same signature must agree
with it within the tolerance its test states.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    key_padding_mask: Tensor | None = None,
) -> Tensor:
    """Scaled dot-product attention, softmax(Q Kᵀ / √d) · V.

    Shapes: q (B, H, Nq, d), k and v (B, H, Nk, d) — Nq may differ from Nk (cross-attention).
    ``causal`` masks key j > query i (aligned at the start); ``key_padding_mask`` (B, Nk) is True
    for keys to keep. Returns (B, H, Nq, d).
    """
    if causal and key_padding_mask is None and q.shape[-2] == k.shape[-2]:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)  # lets SDPA pick its flash kernel
    mask = None
    if key_padding_mask is not None:
        mask = key_padding_mask[:, None, None, :].to(torch.bool)  # (B, 1, 1, Nk)
    if causal:
        nq, nk = q.shape[-2], k.shape[-2]
        tri = torch.ones(nq, nk, dtype=torch.bool, device=q.device).tril()
        mask = tri if mask is None else mask & tri
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


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
    """GroupNorm with optional per-sample modulation and SiLU.

    y = GN(x)·γ + β, then y·(1 + scale) + shift with scale, shift of shape (B, C), then SiLU(y)
    if ``silu``. x is (B, C, *spatial), NCHW or channels-last.
    """
    y = F.group_norm(x, num_groups, weight, bias, eps)
    if scale is not None or shift is not None:
        view = (x.shape[0], x.shape[1]) + (1,) * (x.ndim - 2)
        if scale is not None:
            y = y * (1 + scale.reshape(view))
        if shift is not None:
            y = y + shift.reshape(view)
    return F.silu(y) if silu else y
