"""Scores computed from a classifier's predictions on generated images."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def inception_score(probs: Tensor, splits: int = 10) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) ‖ p(y))) per split (Salimans et al. 2016) from class probabilities
    p(y|x) (N, K); mean and std over splits."""
    p = probs.double()
    scores = []
    for part in p.chunk(splits):
        py = part.mean(0, keepdim=True)
        kl = (part * (part.clamp_min(1e-12).log() - py.clamp_min(1e-12).log())).sum(1)
        scores.append(kl.mean().exp())
    s = torch.stack(scores)
    return s.mean().item(), s.std().item() if len(s) > 1 else 0.0


def recognised_share(probs: Tensor, threshold: float = 0.9) -> float:
    """Share of samples whose top class probability is at least ``threshold``."""
    return (probs.max(dim=1).values >= threshold).double().mean().item()


def class_coverage(probs: Tensor) -> dict[str, float]:
    """Mode coverage from the predicted-class histogram: the smallest class share and the
    entropy H = −Σ p_c ln p_c in nats (ln 10 ≈ 2.303 when all ten classes are equally common)."""
    k = probs.shape[1]
    counts = torch.bincount(probs.argmax(dim=1), minlength=k).double()
    share = counts / counts.sum()
    nz = share[share > 0]
    return {
        "min_class_share": share.min().item(),
        "class_entropy": float(-(nz * nz.log()).sum()),
        "max_entropy": math.log(k),
    }
