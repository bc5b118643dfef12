"""Quantizers for discrete latents, one interface: ``z -> (z_q, indices, aux)``.

- ``VectorQuantizer``: VQ-VAE codebook (loss or EMA updates, k-means init, dead-code restart,
  ViT-VQGAN cosine codes and low-dimensional lookup).
- ``ResidualVectorQuantizer``: the lecture's r_i = r_{i−1} − q_i over N stages, quantizer dropout.
- ``FiniteScalarQuantizer``: FSQ, per-channel bounded rounding, implicit codebook ∏ L_i.
- ``LookupFreeQuantizer``: LFQ, sign bits, implicit codebook 2^K, entropy loss.
- ``DiagonalGaussianBottleneck``: not a quantizer — latent diffusion's KL bottleneck (continuous
  latents, ``None`` indices) behind the same call, so ``VQModel`` trains a KL first stage too.

Channels sit at ``channel_dim`` (1 for (B, C, H, W), −1 for (B, N, C)); see ``base.py``.
"""

from lit_genvision.methods.quantizers.base import Quantized, Quantizer, QuantizerAux
from lit_genvision.methods.quantizers.fsq import FiniteScalarQuantizer
from lit_genvision.methods.quantizers.kl import DiagonalGaussianBottleneck, gaussian_kl
from lit_genvision.methods.quantizers.lfq import LookupFreeQuantizer, lfq_entropy_terms
from lit_genvision.methods.quantizers.rvq import ResidualVectorQuantizer
from lit_genvision.methods.quantizers.stats import CodebookUsage, perplexity
from lit_genvision.methods.quantizers.vq import VectorQuantizer, kmeans, nearest_code

__all__ = [
    "CodebookUsage",
    "DiagonalGaussianBottleneck",
    "FiniteScalarQuantizer",
    "LookupFreeQuantizer",
    "Quantized",
    "Quantizer",
    "QuantizerAux",
    "ResidualVectorQuantizer",
    "VectorQuantizer",
    "gaussian_kl",
    "kmeans",
    "lfq_entropy_terms",
    "nearest_code",
    "perplexity",
]
