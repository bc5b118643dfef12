"""Lookup-free quantisation (MAGVIT-v2, Yu et al. 2023, arXiv 2310.05737).

The codebook is implicit, {−1, 1}^K (size 2^K), and nothing is looked up:

    (1) ẑ_i = sign(z_i) ∈ {−1, 1}   (z_i = 0 ↦ −1), straight-through: ∂ẑ/∂z = I
    (2) index = Σ_i 2^i · [z_i > 0]   (bit i is channel i)
    (3) p(c | z) = softmax_c(−‖z − c‖² / τ) over the 2^K codes c
    (4) L_entropy = E_z[H(p(· | z))] − γ · H(E_z[p(· | z)])   low per-sample entropy (confident
        assignments), high codebook entropy (every code used)
    (5) L = w_entropy · L_entropy + β ‖z − sg[ẑ]‖²

Since ‖c‖² = K for every code, (3) = softmax_c(2 z·c / τ), which factorises over the bits with
p(bit_i = 1 | z) = sigmoid(4 z_i / τ). The per-sample entropy is therefore exact bitwise; the
codebook entropy of the batch average is computed over all 2^K codes when K ≤ ``exact_entropy_bits``
(memory M · 2^K), otherwise approximated by the sum of the per-bit entropies of the averaged bit
probabilities (an upper bound).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_genvision.methods.quantizers.base import Quantizer


def all_codes(bits: int, device: torch.device | None = None) -> Tensor:
    """The implicit codebook (2^K, K) in index order: row k is the code of index k under (2)."""
    k = torch.arange(2**bits, device=device)
    return ((k[:, None] >> torch.arange(bits, device=device)) & 1).float() * 2 - 1


def binary_entropy(p: Tensor) -> Tensor:
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p))


def lfq_entropy_terms(z: Tensor, temperature: float = 1.0, exact_entropy_bits: int = 16) -> tuple[Tensor, Tensor]:
    """(3)–(4) for z (M, K) → (mean per-sample entropy, codebook entropy), in nats."""
    bits = z.shape[1]
    if bits <= exact_entropy_bits:
        logits = 2 * z @ all_codes(bits, z.device).t() / temperature  # (M, 2^K) = −‖z − c‖²/τ + const
        log_p = F.log_softmax(logits, dim=1)
        p = log_p.exp()
        per_sample = -(p * log_p).sum(1).mean()
        avg = p.mean(0)
        return per_sample, -torch.special.xlogy(avg, avg).sum()
    p_bit = torch.sigmoid(4 * z / temperature)  # (M, K)
    return binary_entropy(p_bit).sum(1).mean(), binary_entropy(p_bit.mean(0)).sum()


class LookupFreeQuantizer(Quantizer):
    """LFQ over ``dim`` = K channels, equations (1)–(5) above.

    Args:
        dim: K, the number of bits per position.
        entropy_weight: w_entropy of (5) (MAGVIT-v2 uses 0.1).
        commitment_weight: β of (5).
        diversity_gamma: γ of (4).
        temperature: τ of (3).
        exact_entropy_bits: compute the codebook entropy over all 2^K codes up to this K.
        usage_window: the window, in training passes, of utilisation and dead codes.
        channel_dim: the channel axis of z (1: (B, C, H, W); −1: (B, N, C)).
    """

    def __init__(
        self,
        dim: int,
        *,
        entropy_weight: float = 0.1,
        commitment_weight: float = 0.25,
        diversity_gamma: float = 1.0,
        temperature: float = 1.0,
        exact_entropy_bits: int = 16,
        usage_window: int = 100,
        channel_dim: int = 1,
    ) -> None:
        if dim > 62:
            raise ValueError(f"LFQ indices are int64: at most 62 bits, got {dim}.")
        super().__init__(dim, 2**dim, channel_dim=channel_dim, usage_window=usage_window)
        self.entropy_weight, self.commitment_weight = entropy_weight, commitment_weight
        self.diversity_gamma, self.temperature = diversity_gamma, temperature
        self.exact_entropy_bits = exact_entropy_bits

    def quantize_flat(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        signs = torch.where(x > 0, 1.0, -1.0).to(x.dtype)  # (1)
        indices = ((x > 0).long() << torch.arange(self.dim, device=x.device)).sum(1)  # (2)
        losses = {"commitment": self.commitment_weight * F.mse_loss(x, signs)}
        if self.entropy_weight > 0:
            per_sample, codebook = lfq_entropy_terms(x, self.temperature, self.exact_entropy_bits)
            losses["entropy"] = self.entropy_weight * (per_sample - self.diversity_gamma * codebook)  # (4)
        return x + (signs - x).detach(), indices, losses

    def codes_flat(self, indices: Tensor) -> Tensor:
        bits = (indices[..., None] >> torch.arange(self.dim, device=indices.device)) & 1
        return bits.float() * 2 - 1
