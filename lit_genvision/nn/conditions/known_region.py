"""The known region of a sample: what an inpainting model keeps (and, later, the given frames of a video).

The condition is [m↓, E((1 − m)·x)] (B, 1 + C, h, w): the mask m (1 = to generate) at the sample's resolution
and the encoding of the image with the unknown pixels zeroed, concatenated to z_t — LDM's 9-channel
inpainting form for C = 4 (Rombach et al. 2022). The model derives it from a batch's images and masks drawn
by its mask generator; at sampling, from the given image and mask.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_genvision.nn.conditions.base import Condition


def known_region_input(encode: Callable[[Tensor], Tensor], images: Tensor, masks: Tensor) -> Tensor:
    """[m↓, E((1 − m)·x)] (B, 1 + C, h, w) of images in [-1, 1] and masks (B, 1, H, W), 1 = to generate; a cell of
    the sample is to be generated if any of its pixels is (max-pooling)."""
    masked = images * (1 - masks)  # unknown pixels → 0, the middle of [-1, 1]
    latent = encode(masked)  # (B, C, h, w)
    small = masks if masks.shape[-2:] == latent.shape[-2:] else F.adaptive_max_pool2d(masks, latent.shape[-2:])
    return torch.cat([small.to(latent.dtype), latent], dim=1)


def as_mask(masks: Tensor, images: Tensor) -> Tensor:
    """Masks (N, H, W) or (N, 1, H, W), nonzero = to generate, as float (N, 1, H, W) on the images' device."""
    if masks.dim() == 3:
        masks = masks[:, None]
    if masks.shape[0] != images.shape[0] or masks.shape[-2:] != images.shape[-2:] or masks.shape[1] != 1:
        raise ValueError(
            f"masks must be N×H×W matching the images ({images.shape[0]}×{images.shape[-2]}×{images.shape[-1]}), "
            f"got {tuple(masks.shape)}; pass one mask per image, 1 where pixels are to be generated."
        )
    return (masks != 0).to(device=images.device, dtype=images.dtype)


class KnownRegion(Condition):
    """Inpainting's condition under the key ``inpaint``: mask and masked image, concatenated to z_t. Dropped to
    m = 1 and image 0 — nothing known, every pixel to be generated (the unconditional model)."""

    name = "known_region"
    keys = ("inpaint",)
    derived = True

    def __init__(self) -> None:
        super().__init__()
        self.sample_channels = 0

    @property
    def channels(self) -> int:
        return 1 + self.sample_channels

    @property
    def channels_needed(self) -> str:
        return "1 + C (the mask and the known image)"

    def bind(self, backbone: nn.Module) -> None:
        """The channels it adds are 1 + C for the C the backbone denoises (``ConditionedNet`` sets them)."""

    def null(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        null = torch.cat([torch.ones_like(value[:, :1]), torch.zeros_like(value[:, 1:])], dim=1)
        flag = drop.to(value.device).view(-1, 1, 1, 1)
        return {key: torch.where(flag, null, value)}

    def encode(self, cond: dict[str, Any], batch: int, like: Tensor) -> dict[str, Any]:
        known = cond.get("inpaint")
        if known is None:  # nothing known: generate everything
            known = torch.cat([torch.ones_like(like[:, :1]), torch.zeros_like(like)], dim=1)
        return {"channels": known.to(like.dtype)}

    def derive(self, batch: dict[str, Any], **context: Any) -> dict[str, Any]:
        """``inpaint`` from ``batch``'s given ``mask`` and ``image`` (sampling), or from its images and masks
        drawn by ``context["masks"]`` (training); ``context["encode"]`` is the space's encoder."""
        if "inpaint" in batch:
            return {}
        encode = context["encode"]
        if "mask" in batch and "image" in batch:  # the known pixels of an inpainting asked for
            images = batch["image"]
            masks = as_mask(batch["mask"], images)
            return {"image": images, "mask": masks, "inpaint": known_region_input(encode, images, masks)}
        images = batch["image"]
        masks = context["masks"](len(images), images.shape[-2], images.shape[-1], device=images.device)
        return {"inpaint": known_region_input(encode, images, masks.to(images.dtype))}
