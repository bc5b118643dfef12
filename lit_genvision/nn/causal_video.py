"""A causal 3-D convolutional video encoder and decoder (MagViT-2, Yu et al. 2023, arXiv 2310.05737; the causal
form of CogVideoX's VAE and NVIDIA's Cosmos tokenizer): videos (B, C, T, H, W) ↔ latents (B, z, T', h, w) with

    T' = 1 + (T − 1) / r,   h = H / 2^(L−1),   w = W / 2^(L−1)

for a temporal factor r (a power of 2) and L = ``len(channel_mults)`` levels. Everything is causal in time: a
3-D conv pads its k_t − 1 missing past frames by repeating frame 0 (never a future frame), normalisation is
per frame (GroupNorm over a frame's channels and pixels, not across frames), time is halved by keeping
frame 0 and averaging the following frames in pairs, and doubled by keeping frame 0 and repeating each later
frame twice. So latent frame j depends on frames 0 … r·j only, frame 0 is encoded alone (an image is a one-frame
video and frame 0 of a clip encodes exactly as it does alone), and the decoder is causal the same way.

Encoder: conv_in → for each level i: ``depth`` residual blocks to width ``channels``·m_i, then (except at the last
level) a stride-2 spatial conv, and a time halving at the first log2(r) transitions → two middle blocks →
norm → SiLU → conv_out to ``z_channels``. The decoder mirrors it (``depth + 1`` blocks per level, nearest ×2
upsampling + conv). Each residual block's last conv starts at zero, so it starts as the identity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CausalConv3d(nn.Module):
    """A k_t × k × k conv, causal in time: the k_t − 1 frames before frame 0 are copies of frame 0; space is
    zero-padded by k // 2 on each side (the side is kept). (B, C_in, T, H, W) → (B, C_out, T, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, time_kernel: int = 3) -> None:
        super().__init__()
        self.time_kernel = time_kernel
        self.conv = nn.Conv3d(
            in_channels, out_channels, (time_kernel, kernel, kernel), padding=(0, kernel // 2, kernel // 2)
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.time_kernel > 1:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.time_kernel - 1, -1, -1), x], dim=2)
        return self.conv(x)


class FrameNorm(nn.GroupNorm):
    """GroupNorm of each frame on its own (statistics over a frame's channels of a group and its pixels), so no
    frame's normalisation sees another frame."""

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        return super().forward(frames).reshape(b, t, c, h, w).transpose(1, 2)


class CausalResBlock(nn.Module):
    """norm → SiLU → causal conv → norm → SiLU → causal conv (zero-initialised), plus the input (projected by a
    1×1×1 conv when the width changes)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = FrameNorm(groups, in_channels), CausalConv3d(in_channels, out_channels)
        self.norm2, self.conv2 = FrameNorm(groups, out_channels), CausalConv3d(out_channels, out_channels)
        nn.init.zeros_(self.conv2.conv.weight)
        nn.init.zeros_(self.conv2.conv.bias)
        self.skip = nn.Conv3d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


def halve_time(x: Tensor) -> Tensor:
    """Frame 0 kept, frames 1 … T−1 averaged in pairs: T = 1 + 2k frames → 1 + k (causal)."""
    rest = x[:, :, 1:]
    b, c, t, h, w = rest.shape
    pooled = rest.reshape(b, c, t // 2, 2, h, w).mean(3)
    return torch.cat([x[:, :, :1], pooled], dim=2)


def double_time(x: Tensor) -> Tensor:
    """Frame 0 kept, each later frame repeated twice: 1 + k frames → 1 + 2k (the inverse shape of `halve_time`)."""
    return torch.cat([x[:, :, :1], x[:, :, 1:].repeat_interleave(2, dim=2)], dim=2)


def _check_levels(image_size: int, channel_mults: list[int], temporal_factor: int) -> int:
    """log2(r) after checking the sizes fit: the image halves L − 1 times, time log2(r) ≤ L − 1 times."""
    levels = len(channel_mults)
    if levels < 1:
        raise ValueError("channel_mults needs at least one level.")
    if image_size % 2 ** (levels - 1):
        raise ValueError(f"image_size {image_size} must be divisible by 2^{levels - 1} for {levels} levels.")
    halvings = int(math.log2(temporal_factor)) if temporal_factor >= 1 else -1
    if temporal_factor < 1 or 2**halvings != temporal_factor or halvings > levels - 1:
        raise ValueError(
            f"temporal_factor must be a power of 2 of at most 2^{levels - 1} (one halving per level transition), "
            f"got {temporal_factor}."
        )
    return halvings


class _VideoNet(nn.Module):
    """What the encoder and decoder share: their shapes and the frame-count check."""

    pixel_key = "video"

    def __init__(self, channels: int, image_size: int, frames: int, temporal_factor: int) -> None:
        super().__init__()
        if frames < 1 or (frames - 1) % temporal_factor:
            raise ValueError(
                f"frames must be 1 + {temporal_factor}·k for temporal_factor {temporal_factor} (1, "
                f"{1 + temporal_factor}, {1 + 2 * temporal_factor} …), got {frames}."
            )
        self.image_size, self.frames, self.temporal_factor = image_size, frames, temporal_factor
        self.pixel_channels = channels

    @property
    def image_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of the clips it is built for (any 1 + r·k frames pass through)."""
        return (self.pixel_channels, self.frames, self.image_size, self.image_size)

    def check_frames(self, t: int, what: str) -> None:
        if (t - 1) % self.temporal_factor:
            raise ValueError(
                f"{what} has {t} frames; a causal tokenizer with temporal factor {self.temporal_factor} takes "
                f"1 + {self.temporal_factor}·k frames (1, {1 + self.temporal_factor}, "
                f"{1 + 2 * self.temporal_factor} …)."
            )


class CausalVideoEncoder(_VideoNet):
    """Videos (B, C, T, H, W) in [-1, 1] → latents (B, z_channels, 1 + (T − 1)/r, H/2^(L−1), W/2^(L−1)).

    Args:
        in_channels: C.
        image_size: H = W.
        frames: T of the training clips (1 + r·k); the tokenizer takes any 1 + r·k.
        channels: base width; level i has ``channels``·``channel_mults[i]``.
        channel_mults: width multipliers, one per level (L levels, L − 1 spatial halvings).
        depth: residual blocks per level.
        z_channels: output channels.
        temporal_factor: r, a power of 2 (time halved at the first log2 r level transitions).
        norm_groups: GroupNorm groups (per frame).
    """

    def __init__(
        self, in_channels: int = 1, image_size: int = 32, frames: int = 9, channels: int = 32,
        channel_mults: list[int] = (1, 2, 2), depth: int = 1, z_channels: int = 32, temporal_factor: int = 4,
        norm_groups: int = 8,
    ) -> None:  # fmt: skip
        super().__init__(in_channels, image_size, frames, temporal_factor)
        halvings = _check_levels(image_size, list(channel_mults), temporal_factor)
        self.in_channels, self.z_channels = in_channels, z_channels
        widths = [channels * m for m in channel_mults]
        self.conv_in = CausalConv3d(in_channels, widths[0])
        self.blocks = nn.ModuleList()
        self.down = nn.ModuleList()
        self.time_down: list[bool] = []
        width = widths[0]
        for i, out in enumerate(widths):
            self.blocks.append(
                nn.Sequential(*[CausalResBlock(width if j == 0 else out, out, norm_groups) for j in range(depth)])
            )
            width = out
            last = i == len(widths) - 1
            self.down.append(
                nn.Identity() if last else nn.Conv3d(out, out, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
            )
            self.time_down.append(not last and i < halvings)
        self.mid = nn.Sequential(CausalResBlock(width, width, norm_groups), CausalResBlock(width, width, norm_groups))
        self.norm_out = FrameNorm(norm_groups, width)
        self.conv_out = CausalConv3d(width, z_channels)

    def forward(self, x: Tensor) -> Tensor:
        self.check_frames(x.shape[2], "the video")
        h = self.conv_in(x)
        for blocks, down, halve in zip(self.blocks, self.down, self.time_down, strict=True):
            h = down(blocks(h))
            if halve:
                h = halve_time(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class CausalVideoDecoder(_VideoNet):
    """Latents (B, z_channels, T', h, w) → videos (B, C, 1 + r·(T' − 1), h·2^(L−1), w·2^(L−1)), read as [-1, 1];
    the mirror of `CausalVideoEncoder` (same arguments, ``out_channels`` for C)."""

    def __init__(
        self, out_channels: int = 1, image_size: int = 32, frames: int = 9, channels: int = 32,
        channel_mults: list[int] = (1, 2, 2), depth: int = 1, z_channels: int = 32, temporal_factor: int = 4,
        norm_groups: int = 8,
    ) -> None:  # fmt: skip
        super().__init__(out_channels, image_size, frames, temporal_factor)
        halvings = _check_levels(image_size, list(channel_mults), temporal_factor)
        self.out_channels, self.z_channels = out_channels, z_channels
        widths = [channels * m for m in channel_mults]
        width = widths[-1]
        self.conv_in = CausalConv3d(z_channels, width)
        self.mid = nn.Sequential(CausalResBlock(width, width, norm_groups), CausalResBlock(width, width, norm_groups))
        self.blocks = nn.ModuleList()
        self.up = nn.ModuleList()
        self.time_up: list[bool] = []
        levels = len(widths)
        for i in reversed(range(levels)):
            out = widths[i]
            self.blocks.append(
                nn.Sequential(*[CausalResBlock(width if j == 0 else out, out, norm_groups) for j in range(depth + 1)])
            )
            width = out
            first = i == 0
            up = nn.Sequential(nn.Upsample(scale_factor=(1, 2, 2), mode="nearest"), CausalConv3d(out, out))
            self.up.append(nn.Identity() if first else up)
            self.time_up.append(not first and i - 1 < halvings)  # mirrors the encoder's transition i − 1 → i
        self.norm_out = FrameNorm(norm_groups, width)
        self.conv_out = CausalConv3d(width, out_channels)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for blocks, up, double in zip(self.blocks, self.up, self.time_up, strict=True):
            h = up(blocks(h))
            if double:
                h = double_time(h)
        return self.conv_out(F.silu(self.norm_out(h)))


__all__ = ["CausalConv3d", "CausalVideoDecoder", "CausalVideoEncoder", "FrameNorm", "double_time", "halve_time"]
