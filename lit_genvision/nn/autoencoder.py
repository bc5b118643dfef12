"""Convolutional encoder and decoder stacks for autoencoders and VAEs (the lecture's
"image to 2-dimensional vector" model up to the larger CelebA stacks)."""

from __future__ import annotations

from collections.abc import Sequence

from einops import rearrange
from torch import Tensor, nn


def _block(cin: int, cout: int, transpose: bool) -> nn.Sequential:
    conv = (
        nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
        if transpose
        else nn.Conv2d(cin, cout, 3, stride=2, padding=1)
    )
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


class ConvEncoder(nn.Module):
    """(B, C, S, S) → (B, out_dim): stride-2 conv blocks (each halves S), then a linear layer.

    Args:
        in_channels: image channels.
        image_size: S, divisible by 2^len(channels).
        channels: widths of the conv blocks.
        out_dim: output size (the latent size, or twice it for z_mean and z_log_var).
    """

    def __init__(
        self, in_channels: int = 1, image_size: int = 16, channels: Sequence[int] = (32, 64), out_dim: int = 2
    ) -> None:
        super().__init__()
        if image_size % 2 ** len(channels):
            raise ValueError(
                f"image_size {image_size} must be divisible by 2^{len(channels)} for {len(channels)} blocks."
            )
        widths = [in_channels, *channels]
        self.convs = nn.Sequential(*(_block(a, b, False) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        self.final = image_size // 2 ** len(channels)
        self.linear = nn.Linear(channels[-1] * self.final**2, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.convs(x).flatten(1))


class ConvDecoder(nn.Module):
    """(B, latent_dim) → (B, C, S, S): a linear layer to a small feature map, transposed-conv
    blocks (each doubles the side), and a 3×3 conv to the output channels (no activation: the
    reconstruction loss decides whether the output is read through tanh or a sigmoid)."""

    def __init__(
        self, out_channels: int = 1, image_size: int = 16, channels: Sequence[int] = (64, 32), latent_dim: int = 2
    ) -> None:
        super().__init__()
        if image_size % 2 ** len(channels):
            raise ValueError(
                f"image_size {image_size} must be divisible by 2^{len(channels)} for {len(channels)} blocks."
            )
        self.start, self.width = image_size // 2 ** len(channels), channels[0]
        self.linear = nn.Linear(latent_dim, channels[0] * self.start**2)
        widths = [*channels, channels[-1]]
        self.deconvs = nn.Sequential(*(_block(a, b, True) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        self.out = nn.Conv2d(channels[-1], out_channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = rearrange(self.linear(z), "b (c h w) -> b c h w", c=self.width, h=self.start, w=self.start)
        return self.out(self.deconvs(h))
