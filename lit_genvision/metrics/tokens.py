"""Statistics of a tokenizer over a set of images: how much of its codebook the set uses, and how
evenly — the figures that show codebook collapse.

For the token histogram n_k over the N tokens of the set (per stage of a residual quantizer, then
averaged over stages):

    utilisation = |{k : n_k > 0}| / K,    perplexity = exp(−Σ_k p_k log p_k),  p_k = n_k / N,

with K the codebook size; a collapsed codebook has low utilisation and a perplexity far below K.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Directions of the reconstruction figures for the leaderboard (True: lower is better).
RECONSTRUCTION_DIRECTIONS = {"recon_mse": True, "bits_per_image": True, "utilisation": False, "perplexity": False}


def codebook_statistics(indices: Tensor, codebook_size: int) -> dict[str, float]:
    """Utilisation and perplexity of token ``indices`` (B, h, w) or (B, h, w, N) over a codebook of K codes."""
    stages = indices.reshape(-1, indices.shape[-1]) if indices.dim() == 4 else indices.reshape(-1, 1)
    used, perplexities = [], []
    for s in range(stages.shape[1]):
        counts = torch.bincount(stages[:, s].long(), minlength=codebook_size).double()
        p = counts / counts.sum()
        entropy = -(p[p > 0] * p[p > 0].log()).sum()
        used.append((counts > 0).sum().item() / codebook_size)
        perplexities.append(entropy.exp().item())
    return {"utilisation": sum(used) / len(used), "perplexity": sum(perplexities) / len(perplexities)}
