"""The frozen image tower of a trained CLIP checkpoint: images → unit-norm CLIP image embeddings, what DALL-E 2's
prior denoises and its decoders are conditioned on (unCLIP, Ramesh et al. 2022, §2). Loaded through
``models.pretrained`` (``weights_only``, trusted classes only), always in eval mode, recorded by its owner."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_genvision.models.clip import CLIPModel
from lit_genvision.models.pretrained import by_reference, load_part


class CLIPImageEncoder(nn.Module):
    """E_I: images (B, C, H, W) in [-1, 1] → unit-norm embeddings (B, D) of a frozen CLIP. Images of another side
    than the CLIP's are resized to it first (bicubic, antialiased: a 64-pixel decoder's images through a 224-pixel
    CLIP, as DALLE2-pytorch's CLIP adapters do).

    Args:
        checkpoint: path of a CLIP checkpoint (``configs/clip/*.yaml``).
        embed: keep the CLIP's weights in the owning model's checkpoints (one self-contained file); False holds
            them by reference to ``checkpoint`` (path and SHA-256 checked on every load).
    """

    part_name = "image_encoder"

    def __init__(self, checkpoint: str, embed: bool = True) -> None:
        super().__init__()
        hint = "pass the checkpoint of a CLIPModel (configs/clip/*.yaml)."
        model, info = load_part(checkpoint, self.part_name, CLIPModel, hint, embed=embed)
        self.clip = model.net  # frozen, always in eval mode
        if not embed:
            by_reference(self.clip)
        self.dim = self.clip.embed_dim
        #: {"path", "sha256", "class", "config", "embedded"} of the CLIP checkpoint, recorded by the owning model.
        self.pretrained_record: dict[str, Any] = info

    def train(self, mode: bool = True) -> CLIPImageEncoder:
        """The frozen CLIP stays in eval mode whatever the model around it does."""
        super().train(mode)
        self.clip.eval()
        return self

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        tower = self.clip.image_tower
        if images.shape[1] != tower.in_channels:
            raise ValueError(
                f"this CLIP reads {tower.in_channels}-channel images and got {images.shape[1]}-channel ones; train the "
                "decoder or prior on images of the CLIP's channels, or pass a CLIP trained on these."
            )
        side = tower.image_size
        if images.shape[-2:] != (side, side):
            images = F.interpolate(images, size=(side, side), mode="bicubic", antialias=True, align_corners=False)
            images = images.clamp(-1, 1)
        return self.clip.encode_image(images)


__all__ = ["CLIPImageEncoder"]
