"""A denoiser behind condition encoders: ε_θ(z_t, t, τ_θ(y)) for text, semantic maps, layouts, inpainting.

Latent diffusion's conditioning (Rombach et al. 2022, arXiv 2112.10752, §3.3): an input y is mapped
by a domain-specific encoder τ_θ to tokens τ_θ(y) ∈ R^{M×d_τ}, which reach the backbone's flattened
features φ_i(z_t) through cross-attention,

    Attention(Q, K, V) = softmax(Q Kᵀ / √d)·V,  Q = W_Q·φ_i(z_t),  K = W_K·τ_θ(y),  V = W_V·τ_θ(y),

or, for inputs aligned with the image, are concatenated to z_t as extra channels. τ_θ and ε_θ are
trained jointly by the diffusion (or flow) loss. ``ConditionedNet`` wraps any backbone with the
U-Net interface (``UNet``, ``DiT``: ``net(x, t, cond)``) and turns the *raw* condition of a batch
into what the backbone reads (``context``/``context_mask``, ``vector``, extra input channels):

- ``text``: a list of B prompts → ``TextEncoder.encode`` → tokens projected to the backbone's
  ``context_dim``, with the padding mask (padded tokens are never attended to); ``text_pooled`` also
  hands the pooled embedding to the backbone as ``vector``. Absent: the empty prompt "" (the null).
- ``semantic_map`` (B, H, W) class indices 0 … K−1, K = null — or a layout, ``boxes`` (B, M, 4) as
  fractions [x0, y0, x1, y1] with ``box_labels`` (B, M) (−1 = padding), rasterised to such a map by
  `layout_to_map` — one-hot encoded and either concatenated to z_t at its resolution (area-pooled
  class fractions: LDM's concat option) or encoded by `SemanticEncoder` into tokens (cross-attention).
- ``inpaint`` (B, 1 + C, h, w): the mask m (1 = to generate) and the masked image's latent
  E((1 − m)·x), concatenated to z_t (LDM's 9-channel inpainting form for C = 4). Absent: m = 1
  everywhere and a zero image (nothing known).

The wrapper exposes the backbone's sampling interface (``in_channels`` = the channels it denoises,
``image_size``, ``num_classes``) and ``condition_keys``, the batch keys it reads.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_genvision.nn.text import TextEncoder
from lit_genvision.nn.transformer import sincos_2d

SEMANTIC_MODES = ("cross", "concat")
SEMANTIC_SOURCES = ("map", "boxes")


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
    resolution ``downsample`` times → tokens (B, h·w, out_dim) with 2-D sin-cos positions.

    LDM's semantic-synthesis models encode the map with a small trainable convolutional stack; the
    tokens then enter every cross-attention block like text tokens.
    """

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


class ConditionedNet(nn.Module):
    """ε_θ(z_t, t, τ_θ(y)): ``backbone`` (a ``UNet`` or ``DiT``) behind the condition encoders τ_θ.

    Args:
        backbone: the denoiser, ``backbone(x, t, cond)``; built with ``in_channels`` = C + the
            concatenated channels (1 + C for inpainting, K + 1 for a concatenated map), with
            ``out_channels`` = C, and with ``context_dim`` when text or a map is cross-attended.
        text_encoder: τ_θ for ``text`` (a ``TextEncoder``: our CLIP text tower trained jointly or
            frozen, a Hugging Face encoder by path, a learned embedding); None: no text.
        text_pooled: also hand the pooled text embedding to the backbone as ``vector`` (its
            ``cond_dim`` must equal the encoder's ``pooled_dim``).
        semantic: ``cross`` (a `SemanticEncoder` into cross-attention) or ``concat`` (one-hot class
            fractions concatenated to z_t); None: no map.
        semantic_classes: K, the map's classes (background included); K is the null class.
        semantic_from: ``map`` reads ``semantic_map``; ``boxes`` rasterises ``boxes``/``box_labels``
            (`layout_to_map`, background class 0) at ``semantic_size``.
        semantic_size: side of the rasterised layout (default: the image side, ``image_size`` of the
            data the map comes from; required for ``boxes``).
        semantic_channels, semantic_downsample: width and halvings of the `SemanticEncoder`.
        inpainting: read ``inpaint`` (B, 1 + C, h, w): mask and masked image, concatenated to z_t.
    """

    def __init__(
        self,
        backbone: nn.Module,
        text_encoder: TextEncoder | None = None,
        text_pooled: bool = False,
        semantic: str | None = None,
        semantic_classes: int | None = None,
        semantic_from: str = "map",
        semantic_size: int | None = None,
        semantic_channels: int = 64,
        semantic_downsample: int = 2,
        inpainting: bool = False,
    ) -> None:
        super().__init__()
        self.backbone, self.text_encoder, self.text_pooled = backbone, text_encoder, text_pooled
        self.semantic, self.semantic_from, self.semantic_size = semantic, semantic_from, semantic_size
        self.inpainting = inpainting
        context_dim = getattr(backbone, "context_dim", None)
        if semantic is not None and semantic not in SEMANTIC_MODES:
            raise ValueError(f"semantic must be one of {', '.join(SEMANTIC_MODES)} (or null), got {semantic!r}.")
        if semantic_from not in SEMANTIC_SOURCES:
            raise ValueError(f"semantic_from must be one of {', '.join(SEMANTIC_SOURCES)}, got {semantic_from!r}.")
        if semantic is not None and not semantic_classes:
            raise ValueError("a semantic condition needs semantic_classes (K, background included); pass it.")
        if semantic is not None and semantic_from == "boxes" and not semantic_size:
            raise ValueError("a layout (semantic_from: boxes) needs semantic_size, the side of its map; pass it.")
        cross = text_encoder is not None or semantic == "cross"
        if cross and not context_dim:
            raise ValueError("text and a cross-attended map need cross-attention; build the backbone with context_dim.")
        self.semantic_classes = semantic_classes
        self.text_proj = None
        if text_encoder is not None:
            same = text_encoder.dim == context_dim
            self.text_proj = nn.Identity() if same else nn.Linear(text_encoder.dim, context_dim)
            if text_pooled and getattr(backbone, "cond_dim", None) != text_encoder.pooled_dim:
                raise ValueError(
                    f"text_pooled hands the pooled text ({text_encoder.pooled_dim} wide) to the backbone as "
                    f"its vector; build the backbone with cond_dim={text_encoder.pooled_dim}."
                )
        self.semantic_encoder = None
        if semantic == "cross":
            self.semantic_encoder = SemanticEncoder(
                semantic_classes, context_dim, semantic_channels, semantic_downsample
            )
        extra = semantic_classes + 1 if semantic == "concat" else 0
        total = backbone.in_channels
        out = getattr(backbone, "out_channels", None) or total
        # Inpainting adds 1 + C channels for C denoised ones: total = C + extra + inpainting·(1 + C).
        channels = (total - extra - 1) // 2 if inpainting else total - extra
        if channels < 1 or out != channels:
            need = f"in_channels = C{' + 1 + C' if inpainting else ''}{f' + {extra}' if extra else ''}"
            raise ValueError(
                f"the backbone must take {need} and give out_channels = C (the channels it denoises), "
                f"got in_channels={total}, out_channels={out}; rebuild it with those."
            )
        self.in_channels = channels
        self.out_channels = channels
        self.image_size = backbone.image_size
        self.num_classes = getattr(backbone, "num_classes", None)

    @property
    def condition_keys(self) -> tuple[str, ...]:
        """The batch keys this network reads besides ``label`` (in the order their dropout is drawn)."""
        keys: list[str] = []
        if self.text_encoder is not None:
            keys.append("text")
        if self.semantic is not None:
            keys += ["semantic_map"] if self.semantic_from == "map" else ["boxes", "box_labels"]
        if self.inpainting:
            keys.append("inpaint")
        return tuple(keys)

    def semantic_map(self, cond: dict[str, Any], batch: int, device: torch.device) -> Tensor:
        """The (B, H, W) map of ``cond`` (rasterised from a layout if need be), or all null class K."""
        k = self.semantic_classes
        if self.semantic_from == "boxes":
            if cond.get("box_labels") is None or cond.get("boxes") is None:
                size = self.semantic_size
                return torch.full((batch, size, size), k, dtype=torch.long, device=device)
            return layout_to_map(cond["boxes"].to(device), cond["box_labels"].to(device), self.semantic_size, k)
        value = cond.get("semantic_map")
        if value is None:
            size = self.semantic_size or self.image_size
            return torch.full((batch, size, size), k, dtype=torch.long, device=device)
        return value.to(device).long()

    def backbone_inputs(self, x: Tensor, cond: dict[str, Any] | None) -> tuple[Tensor, dict[str, Any]]:
        """(the backbone's input: z_t with the concatenated channels, the backbone's cond)."""
        cond = dict(cond or {})
        batch, device = x.shape[0], x.device
        out: dict[str, Any] = {k: cond[k] for k in ("label", "vector", "vector_null") if k in cond}
        inputs, contexts, masks = [x], [], []
        if self.text_encoder is not None:
            texts = cond.get("text")
            if texts is None:
                texts = [""] * batch
            if isinstance(texts, str) or len(texts) != batch:
                raise ValueError(f"cond['text'] must be a list of {batch} prompts, one per sample.")
            enc = self.text_encoder.encode(list(texts))
            contexts.append(self.text_proj(enc.tokens.to(x.dtype)))
            masks.append(enc.mask.to(device))
            if self.text_pooled:
                out["vector"] = enc.pooled.to(x.dtype)
        if self.semantic is not None:
            semantic_map = self.semantic_map(cond, batch, device)  # (B, H, W)
            if self.semantic == "cross":
                tokens = self.semantic_encoder(semantic_map)  # (B, N, context_dim)
                contexts.append(tokens)
                masks.append(torch.ones(tokens.shape[:2], dtype=torch.bool, device=device))
            else:
                onehot = F.one_hot(semantic_map, self.semantic_classes + 1).permute(0, 3, 1, 2).to(x.dtype)
                inputs.append(F.interpolate(onehot, size=x.shape[-2:], mode="area"))  # class fractions per cell
        if self.inpainting:
            known = cond.get("inpaint")
            if known is None:  # nothing known: generate everything
                known = torch.cat([torch.ones_like(x[:, :1]), torch.zeros_like(x)], dim=1)
            inputs.append(known.to(x.dtype))
        if contexts:
            out["context"] = torch.cat(contexts, dim=1)  # (B, M_text + M_map, context_dim)
            out["context_mask"] = torch.cat(masks, dim=1)
        return torch.cat(inputs, dim=1), out

    def forward(self, x: Tensor, t: Tensor, cond: dict[str, Any] | None = None) -> Tensor:
        """x (B, C, h, w), t (B,), the raw cond {text, semantic_map | boxes + box_labels, inpaint, label, …}."""
        inputs, backbone_cond = self.backbone_inputs(x, cond)
        return self.backbone(inputs, t, backbone_cond)
