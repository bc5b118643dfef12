"""The KL bottleneck of latent diffusion's first stage (Rombach et al. 2022, §3 and appendix G).

Not a quantizer: the encoder's 2·d channels are the moments of a diagonal Gaussian posterior, and
the latent is continuous (CompVis/latent-diffusion, ``DiagonalGaussianDistribution`` and
``AutoencoderKL``):

    (1) (μ, log σ²) = split(h),   h (B, 2d, h, w) → μ, log σ² (B, d, h, w) along the channel axis
    (2) log σ² ← clamp(log σ², −30, 20)                        (LDM: keeps exp() finite)
    (3) z = μ + σ·ε,  ε ~ N(0, I)  in training;   z = μ  in eval (the posterior's mode)
    (4) D_KL = −½ Σ_{c,h,w} (1 + log σ² − μ² − σ²),  one value per image (the VAE's ``kl_divergence``)
    (5) L_KL = w_KL · mean_B D_KL                              (LDM's KL-f4/f8 configs: w_KL = 1e-6)

The tiny w_KL only keeps the latent's scale in check (LDM: a "slight KL-penalty"); the latent
diffusion model later rescales it to unit variance (``methods.space.LatentSpace``).

It speaks the quantizers' interface so ``models.VQModel`` trains it unchanged —
``bottleneck(h) -> (z, indices, aux)`` — with two differences a caller must know:
``indices`` is ``None`` (there are no tokens; a tensor of zeros would pass for a token grid and
silently train a token prior on nothing), and the input has ``in_dim = 2·dim`` channels while
``z`` has ``dim``. ``aux.loss`` is (5) and ``aux.losses == {"kl": (5)}``; the codebook statistics
(perplexity, utilisation, …) are ``None``, so nothing about codes is logged.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from lit_genvision.checks import check_float, check_int
from lit_genvision.methods.quantizers.base import QuantizerAux
from lit_genvision.methods.vae import kl_divergence

#: (2): LDM's clamp of log σ², so σ = exp(½ log σ²) neither underflows nor overflows.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


class Posterior(NamedTuple):
    """What the bottleneck returns, unpacked like a quantizer's ``(z_q, indices, aux)``."""

    z: Tensor
    indices: None
    aux: QuantizerAux


#: (4), summed over all but the batch axis → (B,): the VAE's KL term, one function (kept under this name too).
gaussian_kl = kl_divergence


class DiagonalGaussianBottleneck(nn.Module):
    """A diagonal Gaussian posterior over ``dim`` latent channels, regularised toward N(0, I).

    Args:
        dim: latent channels d (LDM's ``embed_dim``); the input has ``in_dim = 2·dim``.
        kl_weight: w_KL of (5) (LDM: 1e-6).
        channel_dim: the channel axis (1 for (B, C, H, W), −1 for (B, N, C)), as for the quantizers.
    """

    #: No discrete code, so no number of bits: ``VQModel`` refuses its token methods instead.
    bits = float("nan")

    def __init__(self, dim: int, kl_weight: float = 1e-6, *, channel_dim: int = 1) -> None:
        super().__init__()
        check_int("dim", dim, low=1, hint="pass the number of latent channels, e.g. 4")
        check_float("kl_weight", kl_weight, low=0, hint="pass 0 to train without the KL term (LDM: 1e-6)")
        self.dim, self.in_dim, self.kl_weight, self.channel_dim = dim, 2 * dim, kl_weight, channel_dim

    def moments(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """(1), (2): h with ``in_dim`` channels → μ, clamped log σ², each with ``dim`` channels."""
        if h.shape[self.channel_dim] != self.in_dim:
            raise ValueError(
                f"DiagonalGaussianBottleneck expects 2·dim = {self.in_dim} channels (μ and log σ²) at dim "
                f"{self.channel_dim}, got shape {tuple(h.shape)}."
            )
        mean, logvar = h.chunk(2, dim=self.channel_dim)
        return mean, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def mode(self, h: Tensor) -> Tensor:
        """The posterior mean μ: the latent a first stage hands to latent diffusion."""
        return self.moments(h)[0]

    def forward(self, h: Tensor) -> Posterior:
        """h (B, 2d, …) → z (B, d, …) by (3), ``None`` indices, aux with the loss (5)."""
        mean, logvar = self.moments(h)  # (1), (2)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if self.training else mean  # (3)
        kl = self.kl_weight * kl_divergence(mean.float(), logvar.float()).mean()  # (4), (5) in float32
        return Posterior(z, None, QuantizerAux(loss=kl, losses={"kl": kl}))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, kl_weight={self.kl_weight}, channel_dim={self.channel_dim}"
