"""Maps aligned with the image: a semantic map of class indices, or a layout of labelled boxes rasterised into
one — either concatenated to z_t as per-cell class fractions (LDM's concat option) or encoded by a small
convolutional τ_θ into tokens for cross-attention (LDM's semantic-synthesis models, Rombach et al. 2022)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_genvision.nn.conditions.base import Condition, null_fill
from lit_genvision.nn.patches import sincos_2d

SEMANTIC_MODES = ("cross", "concat")


def layout_to_map(boxes: Tensor, labels: Tensor, size: int, null_class: int, background: int = 0) -> Tensor:
    """Rasterise a layout to a semantic map: (B, M, 4) boxes [x0, y0, x1, y1] as fractions of the side
    and (B, M) class labels (−1 = padding) → (B, size, size) long.

    Pixel (r, c) has centre ((c + ½)/S, (r + ½)/S) and belongs to a box when x0 ≤ x < x1 and
    y0 ≤ y < y1 (the convention of ``data/scenes.py``). Boxes are painted in order, so a later box
    lies over an earlier one (scenes list the largest first); the rest is ``background``. A sample
    without any box (every label −1) is the null map: ``null_class`` everywhere.
    """
    centres = (torch.arange(size, device=boxes.device, dtype=torch.float32) + 0.5) / size  # (S,)
    b = boxes.float()
    inside_x = (centres >= b[..., 0:1]) & (centres < b[..., 2:3])  # (B, M, S) over columns
    inside_y = (centres >= b[..., 1:2]) & (centres < b[..., 3:4])  # (B, M, S) over rows
    inside = inside_y[..., :, None] & inside_x[..., None, :]  # (B, M, S, S)
    valid = labels >= 0  # (B, M)
    inside = inside & valid[..., None, None]
    out = torch.full((len(boxes), size, size), background, dtype=torch.long, device=boxes.device)
    for m in range(boxes.shape[1]):  # later boxes over earlier ones
        out = torch.where(inside[:, m], labels[:, m, None, None].long(), out)
    empty = ~valid.any(dim=1)  # (B,) no box at all: the null layout
    return torch.where(empty[:, None, None], torch.full_like(out, null_class), out)


class SemanticEncoder(nn.Module):
    """τ_θ for a semantic map: one-hot (K + 1 classes with the null) → convolutions that halve the
    resolution ``downsample`` times → tokens (B, h·w, out_dim) with 2-D sin-cos positions."""

    def __init__(self, num_classes: int, out_dim: int, channels: int = 64, downsample: int = 2) -> None:
        super().__init__()
        self.num_classes = num_classes  # K; class K is the null
        layers: list[nn.Module] = [nn.Conv2d(num_classes + 1, channels, 3, padding=1), nn.SiLU()]
        for _ in range(downsample):
            layers += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.SiLU()]
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Linear(channels, out_dim)
        self.channels = channels

    def forward(self, semantic_map: Tensor) -> Tensor:
        """(B, H, W) class indices → tokens (B, h·w, out_dim)."""
        onehot = F.one_hot(semantic_map.long(), self.num_classes + 1).permute(0, 3, 1, 2).float()  # (B, K+1, H, W)
        h = self.convs(onehot)  # (B, c, h, w)
        _, c, hh, ww = h.shape
        tokens = h.flatten(2).transpose(1, 2) + sincos_2d(hh, ww, c).to(h)  # (B, h·w, c)
        return self.proj(tokens)  # (B, h·w, out_dim)


class SemanticMap(Condition):
    """A semantic map (B, H, W) of class indices 0 … K−1 under ``semantic_map``; K is the null class.

    Args:
        classes: K, background included.
        mode: ``cross`` (a `SemanticEncoder` into cross-attention; the backbone needs ``context_dim``) or
            ``concat`` (K + 1 one-hot class fractions per cell concatenated to z_t).
        size: the map's side when absent (default: the backbone's ``image_size``).
        channels: width of the `SemanticEncoder`.
        downsample: halvings of the `SemanticEncoder`.
    """

    name = "semantic_map"
    keys: tuple[str, ...] = ("semantic_map",)

    def __init__(
        self, classes: int, mode: str = "cross", size: int | None = None, channels: int = 64, downsample: int = 2
    ) -> None:
        super().__init__()
        if mode not in SEMANTIC_MODES:
            raise ValueError(f"semantic must be one of {', '.join(SEMANTIC_MODES)} (or null), got {mode!r}.")
        if not classes:
            raise ValueError("a semantic condition needs semantic_classes (K, background included); pass it.")
        self.classes, self.mode, self.size = classes, mode, size
        self.encoder_channels, self.downsample = channels, downsample
        self.encoder: SemanticEncoder | None = None

    @property
    def channels(self) -> int:
        return self.classes + 1 if self.mode == "concat" else 0

    def bind(self, backbone: nn.Module) -> None:
        self.size = self.size or backbone.image_size
        if self.mode == "cross":
            context_dim = getattr(backbone, "context_dim", None)
            if not context_dim:
                raise ValueError("a cross-attended map needs cross-attention; build the backbone with context_dim.")
            self.encoder = SemanticEncoder(self.classes, context_dim, self.encoder_channels, self.downsample)

    def null(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        return {key: null_fill(value, drop, self.classes)}

    def semantic_map(self, cond: dict[str, Any], batch: int, device: torch.device) -> Tensor:
        """The (B, H, W) map of ``cond``, or the null class K everywhere."""
        value = cond.get("semantic_map")
        if value is None:
            return torch.full((batch, self.size, self.size), self.classes, dtype=torch.long, device=device)
        return value.to(device).long()

    def encode(self, cond: dict[str, Any], batch: int, like: Tensor) -> dict[str, Any]:
        semantic_map = self.semantic_map(cond, batch, like.device)  # (B, H, W)
        if self.mode == "cross":
            tokens = self.encoder(semantic_map)  # (B, N, context_dim)
            mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=like.device)
            return {"context": tokens, "context_mask": mask}
        onehot = F.one_hot(semantic_map, self.classes + 1).permute(0, 3, 1, 2).to(like.dtype)
        return {"channels": F.interpolate(onehot, size=like.shape[-2:], mode="area")}  # class fractions per cell


class Layout(SemanticMap):
    """A layout: ``boxes`` (B, M, 4) as fractions [x0, y0, x1, y1] with ``box_labels`` (B, M) (−1 = padding),
    rasterised at ``size`` by `layout_to_map` (background class 0) and then read as a semantic map. Dropping
    turns every label into padding (no box: the null map); the boxes go with them.
    """

    name = "layout"
    keys = ("boxes", "box_labels")

    def __init__(self, classes: int, size: int, mode: str = "concat", channels: int = 64, downsample: int = 2) -> None:
        if not size:
            raise ValueError("a layout (semantic_from: boxes) needs semantic_size, the side of its map; pass it.")
        super().__init__(classes, mode, size, channels, downsample)

    @property
    def dropout_keys(self) -> tuple[str, ...]:
        return ("box_labels",)

    def null(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        return {key: value if key == "boxes" else null_fill(value, drop, -1)}

    def semantic_map(self, cond: dict[str, Any], batch: int, device: torch.device) -> Tensor:
        if cond.get("box_labels") is None or cond.get("boxes") is None:
            return torch.full((batch, self.size, self.size), self.classes, dtype=torch.long, device=device)
        return layout_to_map(cond["boxes"].to(device), cond["box_labels"].to(device), self.size, self.classes)
