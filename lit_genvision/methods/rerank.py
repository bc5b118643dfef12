"""Best-of-K reranking of sampled embeddings (unCLIP, Ramesh et al. 2022, §2.2): the prior draws K candidate
image embeddings per caption and keeps the one with the highest cosine to the caption's text embedding,

    ẑ_i = argmax_{k ≤ K} cos(z_i^(k), z_t)

(the paper samples K = 2). Candidates and reference may be of any scale: the cosine normalises them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def best_of(candidates: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
    """candidates (K, B, D), reference (B, D) → (the chosen candidate of each row (B, D), its index k (B,))."""
    if candidates.ndim != 3 or candidates.shape[1:] != reference.shape:
        raise ValueError(
            f"best_of takes candidates (K, B, D) and a reference (B, D); got {tuple(candidates.shape)} and "
            f"{tuple(reference.shape)}."
        )
    cos = F.cosine_similarity(candidates, reference.unsqueeze(0).to(candidates), dim=-1)  # (K, B)
    k = cos.argmax(0)  # (B,)
    return candidates[k, torch.arange(candidates.shape[1], device=candidates.device)], k


__all__ = ["best_of"]
