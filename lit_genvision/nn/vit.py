"""The ViT-VQGAN encoder and decoder (Yu et al. 2021, "Vector-quantized Image Modeling with Improved
VQGAN", arXiv 2110.04627, §3.1): a Vision Transformer over non-overlapping p×p patches replaces the
VQGAN's CNN.

Encoder: patchify x (B, C, S, S) into N = (S/p)² tokens of p·p·C values, project each linearly to
``dim`` (ViT, Dosovitskiy et al. 2021: the same map as a p×p stride-p conv), add fixed 2-D sin-cos
positions (`sincos_2d`), run ``depth`` `TransformerBlock` s and a final LayerNorm (`Transformer`),
project to ``z_channels`` and lay the tokens out as a grid (B, z_channels, S/p, S/p) — the shape the
conv encoder gives, so the same quantizers and `VQModel` take either tokenizer. The decoder is the
inverse: grid → tokens → linear to ``dim`` → positions → blocks → LayerNorm → linear to p·p·C →
unpatchify. With ``tanh_head`` the output projection is the paper's two-layer feed-forward network with
a tanh between its layers; either way no activation follows the last linear map.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from lit_genvision.nn.patches import grid_side, patchify, sincos_2d, unpatchify
from lit_genvision.nn.transformer import Transformer


def _head(dim: int, out: int, tanh_head: bool) -> nn.Module:
    """A linear map dim → out, or ViT-VQGAN's two-layer feed-forward output with tanh in the middle."""
    return nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, out)) if tanh_head else nn.Linear(dim, out)


class _PatchTransformer(nn.Module):
    """Shared by encoder and decoder: fixed 2-D sin-cos positions and a `Transformer` over the grid."""

    pos: Tensor

    def __init__(
        self, image_size: int, patch_size: int, dim: int, depth: int, heads: int, mlp_ratio: float, kernels: str
    ) -> None:
        super().__init__()
        self.image_size, self.patch_size = image_size, patch_size
        self.latent_size = grid_side(image_size, patch_size)
        self.register_buffer("pos", sincos_2d(self.latent_size, self.latent_size, dim)[None], persistent=False)
        self.transformer = Transformer(depth, dim, heads, mlp_ratio=mlp_ratio, kernels=kernels)

    def _blocks(self, tokens: Tensor) -> Tensor:
        """tokens (B, N, dim) + positions → blocks → LayerNorm: (B, N, dim)."""
        return self.transformer(tokens + self.pos.to(tokens.dtype))


class ViTEncoder(_PatchTransformer):
    """ViT-VQGAN encoder (Yu et al. 2021): image (B, C, S, S) → z (B, z_channels, S/p, S/p).

    Args:
        image_size: input side S.
        patch_size: patch side p (ViT-VQGAN: 8); S must be divisible by it.
        in_channels: image channels C.
        dim: token width (divisible by 4 for the 2-D sin-cos positions, and by ``heads``).
        depth: transformer blocks.
        heads: attention heads.
        z_channels: output channels of the grid.
        mlp_ratio: the blocks' MLP hidden width / dim.
        tanh_head: the paper's output head (linear → tanh → linear) instead of one linear map.
        kernels: ``auto | torch | triton``, handed to attention.
    """

    def __init__(
        self,
        image_size: int = 16,
        patch_size: int = 2,
        in_channels: int = 1,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        z_channels: int = 16,
        mlp_ratio: float = 4.0,
        tanh_head: bool = False,
        kernels: str = "auto",
    ) -> None:
        super().__init__(image_size, patch_size, dim, depth, heads, mlp_ratio, kernels)
        self.in_channels, self.z_channels = in_channels, z_channels
        self.patch_embed = nn.Linear(patch_size * patch_size * in_channels, dim)
        self.head = _head(dim, z_channels, tanh_head)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patch_embed(patchify(x, self.patch_size))  # (B, N, dim)
        z = self.head(self._blocks(tokens))  # (B, N, z_channels)
        return rearrange(z, "b (h w) c -> b c h w", h=self.latent_size)  # (B, z_channels, S/p, S/p)


class ViTDecoder(_PatchTransformer):
    """ViT-VQGAN decoder (Yu et al. 2021): z (B, z_channels, S/p, S/p) → image (B, C, S, S), no final
    activation. Arguments as `ViTEncoder`'s (``out_channels``: the image channels)."""

    def __init__(
        self,
        image_size: int = 16,
        patch_size: int = 2,
        out_channels: int = 1,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        z_channels: int = 16,
        mlp_ratio: float = 4.0,
        tanh_head: bool = False,
        kernels: str = "auto",
    ) -> None:
        super().__init__(image_size, patch_size, dim, depth, heads, mlp_ratio, kernels)
        self.out_channels, self.z_channels = out_channels, z_channels
        self.z_embed = nn.Linear(z_channels, dim)
        self.head = _head(dim, patch_size * patch_size * out_channels, tanh_head)  # registered last: the last layer

    def forward(self, z: Tensor) -> Tensor:
        tokens = self.z_embed(rearrange(z, "b c h w -> b (h w) c"))  # (B, N, dim)
        patches = self.head(self._blocks(tokens))  # (B, N, p·p·C)
        return unpatchify(patches, self.patch_size, self.out_channels)  # (B, C, S, S)


__all__ = ["ViTDecoder", "ViTEncoder"]
