"""DCGAN generator and discriminator (Radford et al. 2016), sized by resolution, with optional
conditioning through the platform's ``cond`` dict: a class label ``cond["label"]`` and/or a
per-sample vector ``cond["vector"]``. The generator concatenates their embeddings to z; the
discriminator adds a projection term ⟨embed(c), φ(x)⟩ for each (Miyato & Koyama 2018). A critic
for WGAN-GP uses no BatchNorm (``norm: layer`` or ``none``; Gulrajani et al. 2017 §4)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as sn

Norm = Literal["batch", "layer", "none"]


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # layer norm over (C, H, W), per sample: no batch coupling
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be batch, layer or none, got {kind!r}.")


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2016 §4): conv/linear weights ~ N(0, 0.02), norm
    scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.GroupNorm):
            nn.init.normal_(m.weight, 1.0, 0.02)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)


def _condition(cond: dict[str, Tensor] | None, key: str, owner: str) -> Tensor:
    """``cond[key]``, which a conditioned network cannot do without (a GAN learns no null condition)."""
    value = (cond or {}).get(key)
    if value is None:
        raise ValueError(f"this {owner} is conditioned on {key!r}: pass cond={{{key!r}: ...}}.")
    return value


def _levels(image_size: int) -> int:
    levels = int(math.log2(image_size // 4))
    if image_size < 8 or 4 * 2**levels != image_size:
        raise ValueError(f"image_size must be 4·2^k (8, 16, 32, 64, …), got {image_size}.")
    return levels


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) [+ cond] → image (B, C, S, S) in [-1, 1].

    Linear → (width·2^(L−1), 4, 4), then L up-blocks (transposed conv 4×4 stride 2, or nearest
    upsampling + 3×3 conv) each halving the width, BatchNorm and ReLU, then a 3×3 conv and tanh.
    With ``num_classes`` the input is [z, E_y] (E a learned label embedding of ``embed_dim``), with
    ``cond_dim`` also [W·v] (a linear embedding of ``cond["vector"]``).
    """

    def __init__(
        self,
        latent_dim: int = 64,
        image_size: int = 16,
        out_channels: int = 1,
        width: int = 64,
        upsample: Literal["transpose", "nearest"] = "transpose",
        num_classes: int | None = None,
        embed_dim: int = 16,
        cond_dim: int | None = None,
    ) -> None:
        super().__init__()
        levels = _levels(image_size)
        self.latent_dim, self.image_size, self.num_classes = latent_dim, image_size, num_classes
        self.cond_dim = cond_dim
        self.in_channels = out_channels  # the image channels, as for the other generators
        self.label_embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        if cond_dim:  # only then: an unconditioned generator keeps its parameters and names
            self.vector_embed = nn.Linear(cond_dim, embed_dim)
        c0 = width * 2 ** (levels - 1)
        extra = embed_dim * (bool(num_classes) + bool(cond_dim))
        self.stem = nn.Sequential(nn.Linear(latent_dim + extra, c0 * 16), nn.BatchNorm1d(c0 * 16), nn.ReLU())
        self.c0 = c0
        blocks, c = [], c0
        for _ in range(levels):
            up = (
                nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1)
                if upsample == "transpose"
                else nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(c, c // 2, 3, padding=1))
            )
            blocks += [up, nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Conv2d(c, out_channels, 3, padding=1)
        dcgan_init(self)

    def forward(self, z: Tensor, cond: dict[str, Tensor] | None = None) -> Tensor:
        parts = [z]
        if self.label_embed is not None:
            parts.append(self.label_embed(_condition(cond, "label", "generator")))
        if self.cond_dim:
            parts.append(self.vector_embed(_condition(cond, "vector", "generator").to(z.dtype)))
        z = torch.cat(parts, dim=1)
        h = rearrange(self.stem(z), "b (c h w) -> b c h w", c=self.c0, h=4, w=4)
        return self.out(self.blocks(h)).tanh()


class DCGANDiscriminator(nn.Module):
    """image (B, C, S, S) [+ cond] → score (B,): L stride-2 conv blocks (LeakyReLU 0.2) doubling
    the width, then a linear head ψ(φ(x)); conditioned, D = ψ(φ) + ⟨E_y, φ⟩ [+ ⟨W·v, φ⟩], the
    projection discriminator (Miyato & Koyama 2018) for a label and for a vector.

    Args:
        in_channels: image channels.
        image_size: S.
        width: channels of the first block.
        norm: ``batch`` (DCGAN), ``layer`` or ``none`` (WGAN-GP critic).
        spectral_norm: spectral normalisation on every conv and linear (Miyato et al. 2018).
        num_classes: class-conditional with a projection discriminator.
        cond_dim: conditioned on ``cond["vector"]`` (B, cond_dim) by a linear projection.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 16,
        width: int = 64,
        norm: Norm = "batch",
        spectral_norm: bool = False,
        num_classes: int | None = None,
        cond_dim: int | None = None,
    ) -> None:
        super().__init__()
        levels = _levels(image_size)
        wrap = sn if spectral_norm else (lambda m: m)
        layers, c = [], in_channels
        for i in range(levels):
            out = width * 2**i
            layers += [
                wrap(nn.Conv2d(c, out, 4, stride=2, padding=1)),
                _norm(norm if i else "none", out),
                nn.LeakyReLU(0.2),
            ]
            c = out
        self.body = nn.Sequential(*layers, nn.Flatten())  # (B, c·4·4)
        feat = c * 16
        self.head = wrap(nn.Linear(feat, 1))
        self.num_classes = num_classes
        self.label_embed = wrap(nn.Embedding(num_classes, feat)) if num_classes else None
        self.cond_dim = cond_dim
        if cond_dim:
            self.vector_embed = wrap(nn.Linear(cond_dim, feat, bias=False))
        dcgan_init(self)

    def forward(self, x: Tensor, cond: dict[str, Tensor] | None = None) -> Tensor:
        h = self.body(x)
        out = self.head(h).squeeze(1)
        if self.label_embed is not None:
            out = out + (self.label_embed(_condition(cond, "label", "discriminator")) * h).sum(1)
        if self.cond_dim:
            out = out + (self.vector_embed(_condition(cond, "vector", "discriminator").to(h.dtype)) * h).sum(1)
        return out
