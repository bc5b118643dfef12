"""CLIP's two towers (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language
Supervision", arXiv 2103.00020, §2.4): a Vision Transformer for images and a causal text transformer,
each mapped by a bias-free linear projection to one vector of the same size; the lecture's DALL-E 2
section rests on this shared embedding.

Image tower (ViT, Dosovitskiy et al. 2021, as CLIP uses it): patchify x (B, C, S, S) into N = (S/p)²
tokens, embed each linearly, prepend a learned class token, add learned positions, run a pre-LN
`Transformer` (its final LayerNorm is CLIP's ``ln_post``), take the class token and project it:
E_I = W_i · h_cls. The text tower is `CLIPTextTower` (`nn/text.py`), pooled at the end-of-text token.
`CLIP` holds both and the learnable temperature: logits = exp(t) · E_I · E_Tᵀ with t = log(1/0.07) at
initialisation (the loss and the clamp of t at log 100 are `methods/contrastive.py`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lit_genvision.nn.patches import grid_side, patchify
from lit_genvision.nn.text import TextEncoder
from lit_genvision.nn.transformer import Transformer

#: log(1/0.07): CLIP's initial temperature 0.07 as a log-scale on the logits.
INIT_LOG_SCALE = math.log(1 / 0.07)


class CLIPImageTower(nn.Module):
    """ViT image encoder: image (B, C, S, S) → patch tokens (B, 1 + N, dim) and E_I (B, embed_dim).

    Args:
        image_size: input side S.
        patch_size: patch side p; S must be divisible by it.
        in_channels: image channels C.
        dim: token width (divisible by ``heads``).
        depth: transformer blocks.
        heads: attention heads.
        embed_dim: size of the shared image–text embedding.
        mlp_ratio: the blocks' MLP hidden width / dim.
        kernels: ``auto | torch | triton``, handed to attention.
    """

    def __init__(
        self,
        image_size: int = 16,
        patch_size: int = 4,
        in_channels: int = 1,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
        embed_dim: int = 64,
        mlp_ratio: float = 4.0,
        kernels: str = "auto",
    ) -> None:
        super().__init__()
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.dim, self.embed_dim = dim, embed_dim
        n = grid_side(image_size, patch_size) ** 2
        self.patch_embed = nn.Linear(patch_size * patch_size * in_channels, dim)
        self.cls = nn.Parameter(torch.randn(dim) * dim**-0.5)
        self.pos = nn.Parameter(torch.randn(1 + n, dim) * 0.02)
        self.ln_pre = nn.LayerNorm(dim)  # CLIP's ViT normalises the embedded tokens before the blocks
        self.transformer = Transformer(depth, dim, heads, mlp_ratio=mlp_ratio, kernels=kernels)
        self.proj = nn.Linear(dim, embed_dim, bias=False)

    def tokens(self, x: Tensor) -> Tensor:
        """image (B, C, S, S) → the final tokens (B, 1 + N, dim), the class token first."""
        h = self.patch_embed(patchify(x, self.patch_size))  # (B, N, dim)
        h = torch.cat([self.cls.expand(h.shape[0], 1, -1).to(h.dtype), h], dim=1) + self.pos.to(h.dtype)
        return self.transformer(self.ln_pre(h))  # (B, 1 + N, dim)

    def forward(self, x: Tensor) -> Tensor:
        """image (B, C, S, S) → E_I (B, embed_dim), not normalised."""
        return self.proj(self.tokens(x)[:, 0])


class CLIP(nn.Module):
    """The image tower, a text encoder and the learnable log-temperature t of the logits.

    Args:
        image_tower: `CLIPImageTower`.
        text_tower: any `TextEncoder`: `CLIPTextTower` to train CLIP; a frozen Hugging Face encoder
            (`HFTextEncoder`) gives a locked-text variant (LiT, Zhai et al. 2022). When its pooled width
            differs from the image tower's ``embed_dim``, a trainable bias-free linear map W_t takes it
            there: E_T = W_t · pooled.
        init_log_scale: t at initialisation (log(1/0.07)).
    """

    def __init__(
        self, image_tower: CLIPImageTower, text_tower: TextEncoder, init_log_scale: float = INIT_LOG_SCALE
    ) -> None:
        super().__init__()
        self.image_tower, self.text_tower = image_tower, text_tower
        width = text_tower.pooled_dim
        same = width == image_tower.embed_dim
        self.text_head = None if same else nn.Linear(width, image_tower.embed_dim, bias=False)
        self.log_scale = nn.Parameter(torch.tensor(float(init_log_scale)))

    @property
    def embed_dim(self) -> int:
        return self.image_tower.embed_dim

    def encode_image(self, images: Tensor) -> Tensor:
        """images (B, C, S, S) in [-1, 1] → unit-norm E_I (B, embed_dim)."""
        return F.normalize(self.image_tower(images), dim=-1)

    def encode_text(self, texts: list[str]) -> Tensor:
        """texts (B strings) → unit-norm E_T (B, embed_dim)."""
        return self.text_embedding(self.text_tower.encode(texts).pooled)

    def text_embedding(self, pooled: Tensor) -> Tensor:
        """The text tower's pooled output (B, pooled_dim) → unit-norm E_T (B, embed_dim)."""
        return F.normalize(pooled if self.text_head is None else self.text_head(pooled), dim=-1)

    def class_embeddings(self, prompts: list[list[str]]) -> Tensor:
        """One unit-norm text embedding per class (K, E): the mean of the embeddings of that class's
        prompts, renormalised (CLIP's prompt ensembling, §3.1.4)."""
        return F.normalize(torch.stack([self.encode_text(list(p)).mean(0) for p in prompts]), dim=-1)

    def similarity(self, images: Tensor, texts: list[str]) -> Tensor:
        """cos(E_I, E_T) of each image with the text of the same index: (B,)."""
        return (self.encode_image(images) * self.encode_text(texts)).sum(-1)


__all__ = ["CLIP", "CLIPImageTower", "INIT_LOG_SCALE"]
