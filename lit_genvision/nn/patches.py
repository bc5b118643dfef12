"""Patches and tubelets, and positions over 1, 2 or 3 axes: the shapes of images and videos.

An image is (B, C, H, W), a video (B, C, T, H, W); an image is a one-frame video.

Tokens (ViT, Dosovitskiy et al. 2021; tubelets: ViViT, Arnab et al. 2021, §3.2)

    patchify   (B, C, H, W)    → (B, h·w, p·p·C)         h = H/p, w = W/p
               (B, C, T, H, W) → (B, f·h·w, t·p·p·C)     f = T/t, t×p×p tubelets
    unpatchify the inverse, given the token grid (h, w) or (f, h, w)

Tokens run row-major over the grid (frame, row, column); within a token the values run
(frame, row, column, channel), channels last. A tubelet of t = 1 is therefore a patch: a one-frame
video gives the tokens of its image.

Fixed positions, added to the tokens (Transformer, Vaswani et al. 2017; MAE, He et al. 2021; DiT)

    pe(i₁, …, i_A) = [sincos_1d(i₁, d₁), …, sincos_1d(i_A, d_A)],   Σ d_a = D       (1)

one share d_a of the width per axis (`sincos_grid`); `sincos_2d` is (1) with two halves, `sincos_3d`
with (D/4, 3D/8, 3D/8) over (T, H, W) (`split_dims`).

Rotary positions, applied to queries and keys (RoPE, Su et al. 2021)

    R_p x = x·cos(pθ) + rotate_half(x)·sin(pθ),   ⟨R_m q, R_n k⟩ = ⟨q, R_{n−m} k⟩       (2)

`RotaryEmbedding` over one axis; `AxialRotaryEmbedding` over A axes, where axis a rotates its own
share d_a of the head dimension by its own coordinate (axial RoPE: FiT, Lu et al. 2024, 2-D; Open-Sora
and CogVideoX, 3-D), so the score depends on the offset along each axis only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor, nn

from lit_genvision.nn.embeddings import sinusoidal_embedding

# ----------------------------------------------------------------------------------------------
# Patches and tubelets
# ----------------------------------------------------------------------------------------------


def token_grid(size: Sequence[int], patch_size: int, tubelet: int = 1) -> tuple[int, ...]:
    """The token grid of a picture of ``size`` (H, W) → (H/p, W/p), or of a clip (T, H, W) →
    (T/t, H/p, W/p); every side must be divisible by its patch side."""
    sides = tuple(size)
    if len(sides) not in (2, 3):
        raise ValueError(f"a token grid needs (H, W) or (T, H, W), got {sides}.")
    patch = ((tubelet,) if len(sides) == 3 else ()) + (patch_size, patch_size)
    if any(s % q for s, q in zip(sides, patch, strict=True)):
        raise ValueError(f"size {sides} must be divisible by the patch {patch} along every axis.")
    return tuple(s // q for s, q in zip(sides, patch, strict=True))


def grid_side(image_size: int, patch_size: int) -> int:
    """S/p, the side of the token grid of a square image of side S cut into p×p patches (S divisible by p)."""
    if image_size % patch_size:
        raise ValueError(f"image_size {image_size} must be divisible by patch_size {patch_size}.")
    return image_size // patch_size


def patchify(x: Tensor, patch_size: int, tubelet: int = 1) -> Tensor:
    """Images (B, C, H, W) → (B, h·w, p·p·C); videos (B, C, T, H, W) → (B, f·h·w, t·p·p·C).

    Tokens row-major over (f, h, w), each flattened over (t, p, p) with channels last (a p×p
    stride-p convolution, or a t×p×p stride-(t, p, p) one, is a linear map of these tokens).
    """
    if x.ndim == 4:
        if tubelet != 1:
            raise ValueError(f"an image (B, C, H, W) has no frames to cut into tubelets of {tubelet}.")
        token_grid(x.shape[-2:], patch_size)  # a clear message before einops'
        return rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size)
    if x.ndim == 5:
        token_grid(x.shape[-3:], patch_size, tubelet)
        return rearrange(
            x, "b c (f pt) (h p1) (w p2) -> b (f h w) (pt p1 p2 c)", pt=tubelet, p1=patch_size, p2=patch_size
        )
    raise ValueError(f"patchify takes images (B, C, H, W) or videos (B, C, T, H, W), got shape {tuple(x.shape)}.")


def unpatchify(
    tokens: Tensor, patch_size: int, channels: int, grid: Sequence[int] | None = None, tubelet: int = 1
) -> Tensor:
    """The inverse of `patchify`: (B, h·w, p·p·C) → (B, C, H, W) for ``grid`` = (h, w), or
    (B, f·h·w, t·p·p·C) → (B, C, T, H, W) for ``grid`` = (f, h, w). No grid: a square image grid,
    h = w = √N."""
    if grid is None:
        side = round(tokens.shape[1] ** 0.5)
        grid = (side, side)
    if len(grid) == 2:
        h, w = grid
        return rearrange(
            tokens, "b (h w) (p1 p2 c) -> b c (h p1) (w p2)", h=h, w=w, p1=patch_size, p2=patch_size, c=channels
        )
    if len(grid) == 3:
        f, h, w = grid
        pattern = "b (f h w) (pt p1 p2 c) -> b c (f pt) (h p1) (w p2)"
        return rearrange(tokens, pattern, f=f, h=h, w=w, pt=tubelet, p1=patch_size, p2=patch_size, c=channels)
    raise ValueError(f"grid must be (h, w) or (f, h, w), got {tuple(grid)}.")


# ----------------------------------------------------------------------------------------------
# Coordinates and shares of the width
# ----------------------------------------------------------------------------------------------


def grid_positions(sizes: Sequence[int], device: torch.device | None = None) -> Tensor:
    """Integer coordinates (N, A) of every cell of an A-axis grid, N = Π sizes, row-major (the token
    order of `patchify`): row n = (i₁, …, i_A) with n = (…(i₁·s₂ + i₂)·s₃ + …) + i_A."""
    axes = [torch.arange(s, device=device) for s in sizes]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(sizes))  # (N, A)


def split_dims(dim: int, axes: int) -> tuple[int, ...]:
    """The default share of a width ``dim`` per axis: (D,), (D/2, D/2), or (D/4, 3D/8, 3D/8) over
    (T, H, W) — time gets a quarter and the two spatial axes equal shares, as in CogVideoX's 3-D
    sin-cos and 3-D RoPE (Yang et al. 2024). Every share must be even (a cos and a sin per frequency)."""
    shares = {1: (dim,), 2: (dim / 2, dim / 2), 3: (dim / 4, 3 * dim / 8, 3 * dim / 8)}.get(axes)
    if shares is None:
        raise ValueError(f"positions over 1, 2 or 3 axes, got {axes}.")
    if any(s != int(s) or int(s) % 2 for s in shares):
        need = {1: 2, 2: 4, 3: 16}[axes]
        raise ValueError(f"{axes} axes need a width divisible by {need} (even shares {shares}), got {dim}.")
    return tuple(int(s) for s in shares)


# ----------------------------------------------------------------------------------------------
# Fixed sin-cos positions
# ----------------------------------------------------------------------------------------------


def sincos_1d(positions: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sin-cos features of (possibly fractional) positions: positions (*S) → (*S, dim).

    pe(p)_i = [cos(p·ω_i), sin(p·ω_i)], ω_i = max_period^(−i/(dim/2)) (Vaswani et al. 2017) — the
    same features as `sinusoidal_embedding`, which it reuses, for positions of any shape.
    """
    return sinusoidal_embedding(positions.reshape(-1), dim, max_period).reshape(*positions.shape, dim)


def sincos_grid(sizes: Sequence[int], dims: Sequence[int], max_period: float = 10_000.0) -> Tensor:
    """Fixed sin-cos positions of a row-major grid over A axes, eq. (1): (Π sizes, Σ dims) in float32.

    Axis a gets ``dims[a]`` channels (even), the axes' shares concatenated in axis order.
    """
    if len(dims) != len(sizes) or any(d % 2 for d in dims):
        raise ValueError(f"one even share per axis: sizes {tuple(sizes)}, dims {tuple(dims)}.")
    coords = grid_positions(sizes).float()  # (N, A)
    return torch.cat([sincos_1d(coords[:, a], d, max_period) for a, d in enumerate(dims)], dim=-1)  # (N, D)


def sincos_2d(h: int, w: int, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Fixed 2-D sin-cos position embedding of an h × w grid (MAE, He et al. 2021; used by DiT).

    pe(i, j) = [sincos_1d(i, dim/2), sincos_1d(j, dim/2)] for row i, column j; rows are flattened
    row-major (token i·w + j), matching ``rearrange(x, "b c h w -> b (h w) c")``. Returns
    (h·w, dim) in float32. (MAE concatenates [sin, cos] per axis and the column half first: the same
    features in another channel order.)
    """
    if dim % 4:
        raise ValueError(f"sincos_2d needs dim divisible by 4 (two axes × cos, sin), got {dim}.")
    return sincos_grid((h, w), (dim // 2, dim // 2), max_period)


def sincos_3d(
    t: int, h: int, w: int, dim: int, dims: Sequence[int] | None = None, max_period: float = 10_000.0
) -> Tensor:
    """Fixed 3-D sin-cos position embedding of a t × h × w token grid (f·h·w, dim), frame-major.

    pe(f, i, j) = [sincos_1d(f, d_T), sincos_1d(i, d_H), sincos_1d(j, d_W)], eq. (1), with
    (d_T, d_H, d_W) = ``dims`` or `split_dims` (D/4, 3D/8, 3D/8): each axis its own share, as CogVideoX
    does. (Latte, Ma et al. 2024, and Open-Sora add a full-width temporal table to the spatial one
    instead.) The spatial shares are those of `sincos_2d`, so for one frame

        sincos_3d(1, h, w, D)[:, d_T:] == sincos_2d(h, w, D − d_T)
        sincos_3d(1, h, w, D)[:, :d_T] == sincos_1d(0, d_T) = [1, …, 1, 0, …, 0]  (every token alike)

    i.e. an image is a one-frame video whose positions are its 2-D ones after a constant block.
    """
    dims = tuple(dims) if dims is not None else split_dims(dim, 3)
    if sum(dims) != dim:
        raise ValueError(f"the shares {dims} must add up to dim {dim}.")
    return sincos_grid((t, h, w), dims, max_period)


# ----------------------------------------------------------------------------------------------
# Rotary position embedding (RoPE), over 1 to 3 axes
# ----------------------------------------------------------------------------------------------


class AxialRotaryEmbedding(nn.Module):
    """cos and sin tables of axial RoPE over A axes (eq. 2 per axis; FiT, Lu et al. 2024; Open-Sora).

    Channel pairs (x_i, x_{i+d/2}) of a head of size d are rotated by the angle p·θ_i ("rotate
    half" pairing of GPT-NeoX and Llama). The d/2 frequencies are cut into one block per axis:
    axis a owns the d_a/2 pairs i ∈ [o_a, o_a + d_a/2), o_a = Σ_{b<a} d_b/2 (channels
    `axis_channels`), with θ_i = base^(−2(i − o_a)/d_a) and p its coordinate along a. Axis a's
    share is thus a 1-D RoPE of width d_a at that axis's position, and

        ⟨R_m q, R_n k⟩ = ⟨q, R_{n−m} k⟩ depends on the offsets n_a − m_a only.

    With one axis this is `RotaryEmbedding`.

    Args:
        head_dim: d, the width of a head (even).
        axes_dims: the share d_a of each axis (even, summing to d); default `split_dims` (d, A = 1).
        base: the frequency base (10 000).
    """

    inv_freq: Tensor
    axis: Tensor

    def __init__(self, head_dim: int, axes_dims: Sequence[int] | None = None, base: float = 10_000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RotaryEmbedding needs an even head_dim, got {head_dim}.")
        dims = tuple(axes_dims) if axes_dims is not None else (head_dim,)
        if sum(dims) != head_dim or any(d <= 0 or d % 2 for d in dims):
            raise ValueError(f"axes_dims {dims} must be even shares adding up to head_dim {head_dim}.")
        self.head_dim, self.axes_dims = head_dim, dims
        inv_freq = [base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d) for d in dims]  # (d_a/2,) θ per axis
        axis = [torch.full((d // 2,), a, dtype=torch.long) for a, d in enumerate(dims)]  # the axis of each θ_i
        self.register_buffer("inv_freq", torch.cat(inv_freq), persistent=False)  # (d/2,)
        self.register_buffer("axis", torch.cat(axis), persistent=False)  # (d/2,)

    @property
    def axes(self) -> int:
        """A, the number of axes."""
        return len(self.axes_dims)

    def axis_channels(self, a: int) -> Tensor:
        """The channels of axis a's share, (d_a,): its pairs' first members, then their partners d/2 on."""
        first = (self.axis == a).nonzero().flatten().cpu()  # (d_a/2,)
        return torch.cat([first, first + self.head_dim // 2])

    def forward(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """positions (*S, A), absolute, per axis → cos, sin of shape (*S, head_dim), fp32."""
        if positions.shape[-1] != self.axes:
            raise ValueError(f"positions need a last axis of {self.axes} coordinates, got {tuple(positions.shape)}.")
        pos = positions.float()[..., self.axis.to(positions.device)]  # (*S, d/2) p_{a(i)}
        angles = pos * self.inv_freq.to(positions.device)  # (*S, d/2) p·θ_i
        angles = torch.cat([angles, angles], dim=-1)  # (*S, d) each θ_i serves x_i and x_{i+d/2}
        return angles.cos(), angles.sin()

    def grid(
        self, sizes: Sequence[int], offset: Sequence[int] | None = None, device: torch.device | None = None
    ) -> tuple[Tensor, Tensor]:
        """cos, sin (N, head_dim) for the row-major token grid of ``sizes`` (the order of `patchify`),
        its coordinates shifted by ``offset`` (frames already generated, say)."""
        pos = grid_positions(sizes, device=device or self.inv_freq.device)  # (N, A)
        if offset is not None:
            pos = pos + torch.as_tensor(offset, device=pos.device)
        return self(pos)


class RotaryEmbedding(AxialRotaryEmbedding):
    """cos and sin tables of rotary position embedding over one axis (RoFormer, Su et al. 2021, eq. 34).

    Channel pairs (x_i, x_{i+d/2}) of a head of size d are rotated by the angle p·θ_i at
    position p, θ_i = base^(−2i/d), i = 0 … d/2 − 1 (the "rotate half" pairing of GPT-NeoX and
    Llama). Since rotations compose, ⟨R_m q, R_n k⟩ = ⟨q, R_{n−m} k⟩ depends on m − n only.
    """

    def __init__(self, head_dim: int, base: float = 10_000.0) -> None:
        super().__init__(head_dim, None, base)

    def forward(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """positions (N,) or (B, N), absolute → cos, sin of shape (*positions.shape, head_dim), fp32."""
        return super().forward(positions[..., None])

    def at(self, n: int, offset: int = 0, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
        """cos, sin for the absolute positions offset … offset + n − 1 (offset: a KV cache's length)."""
        return self(torch.arange(offset, offset + n, device=device or self.inv_freq.device))


def _rotate_half(x: Tensor) -> Tensor:
    """(x₁, x₂) → (−x₂, x₁) over the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """R_p x = x·cos(pθ) + rotate_half(x)·sin(pθ) (RoPE, Su et al. 2021), eq. (2).

    x: (B, H, N, d) queries or keys; cos, sin: (N, d) or (B, N, d) from `RotaryEmbedding` or
    `AxialRotaryEmbedding`. Computed in fp32 and returned in x's dtype.
    """
    if cos.ndim == 3:  # (B, N, d) → (B, 1, N, d), broadcast over heads
        cos, sin = cos[:, None], sin[:, None]
    xf = x.float()
    return (xf * cos + _rotate_half(xf) * sin).to(x.dtype)


__all__ = [
    "AxialRotaryEmbedding",
    "RotaryEmbedding",
    "apply_rotary",
    "grid_positions",
    "grid_side",
    "patchify",
    "sincos_1d",
    "sincos_2d",
    "sincos_3d",
    "sincos_grid",
    "split_dims",
    "token_grid",
    "unpatchify",
]
