"""Codebook statistics every quantizer reports on every forward: perplexity, utilisation, dead codes.

Codebook collapse (few codes used, the rest never chosen again) is the usual failure of vector
quantisation; these numbers make it visible in every training log.

- perplexity exp(H), H = −Σ_k p_k log p_k with p_k the share of the batch's vectors given code k:
  K when all codes are used equally, 1 when one code takes everything.
- utilisation: the share of the K codes used at least once in the last ``window`` training passes.
- dead codes: codes not used in the last ``window`` training passes (the ones a restart re-seeds).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_genvision.methods.quantizers.distributed import all_reduce_

# Above this many codes a per-code buffer is not kept: FSQ/LFQ's implicit codebooks can hold 2^K codes.
MAX_TRACKED_CODES = 2**16


def perplexity(counts: Tensor) -> Tensor:
    """exp(H) of the distribution p = counts / Σ counts, with 0·log 0 = 0. ``counts``: (K,)."""
    p = counts.double() / counts.sum().clamp(min=1)
    return torch.exp(-torch.special.xlogy(p, p).sum()).float()


class CodebookUsage(nn.Module):
    """Per-code "last used at pass s" buffer over a window of training passes.

    ``last_used[k]`` is the training pass at which code k was last chosen (−1: never); ``step`` counts
    training passes. Both are buffers, so they land in checkpoints. For codebooks larger than
    ``MAX_TRACKED_CODES`` nothing is kept and the statistics are over the current batch only.
    """

    last_used: Tensor
    step: Tensor

    def __init__(self, codebook_size: int, window: int = 100) -> None:
        super().__init__()
        if window < 1:
            raise ValueError(f"the usage window must be ≥ 1 pass, got {window}.")
        self.codebook_size = codebook_size
        self.window = window
        self.tracked = codebook_size <= MAX_TRACKED_CODES
        n = codebook_size if self.tracked else 0
        self.register_buffer("last_used", torch.full((n,), -1, dtype=torch.long))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def dead_mask(self) -> Tensor:
        """(K,) bool: codes not chosen in the last ``window`` training passes (never-chosen codes count
        from pass 0)."""
        return (self.step - 1 - self.last_used) >= self.window

    def observe(self, indices: Tensor, update: bool) -> dict[str, Tensor]:
        """Statistics of a batch of flat ``indices`` (M,); with ``update`` (training) first record them.

        Under torch.distributed the per-code counts are summed over ranks before they touch the
        buffers, so every rank holds the same usage state.
        """
        indices = indices.detach().reshape(-1)
        if not self.tracked:
            _, counts = torch.unique(indices, return_counts=True)
            used = torch.tensor(counts.numel(), device=indices.device)
            return {
                "perplexity": perplexity(counts),
                "utilisation": used.float() / self.codebook_size,
                "used_codes": used,
                "dead_codes": self.codebook_size - used,
            }
        counts = torch.bincount(indices, minlength=self.codebook_size)
        if update:
            counts = all_reduce_(counts)
            self.last_used[counts > 0] = self.step
            self.step += 1
        recent = (self.last_used >= 0) & ((self.step - 1 - self.last_used) < self.window)
        used = recent.sum()
        return {
            "perplexity": perplexity(counts),
            "utilisation": used.float() / self.codebook_size,
            "used_codes": used,
            "dead_codes": self.dead_mask().sum(),
        }
