"""CLIP score (Hessel et al. 2021, "CLIPScore", arXiv 2104.08718; the form of Radford et al.'s CLIP used
by text-to-image papers): for an image I and its prompt T,

    CLIP-S(I, T) = 100 · max(cos(E_I, E_T), 0)

with E_I, E_T a CLIP model's image and text embeddings. A score is only comparable with scores from
the same CLIP weights, so the extractor's name carries the checkpoint's hash and the results store
ranks it within that protocol.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_genvision.methods.contrastive import logit_scale


def clip_score(image_embedding: Tensor, text_embedding: Tensor) -> Tensor:
    """100 · max(cos(E_I, E_T), 0) per row of two (N, E) embedding sets (normalised here)."""
    cos = torch.nn.functional.cosine_similarity(image_embedding.float(), text_embedding.float(), dim=-1)
    return 100 * cos.clamp(min=0)


class CLIPExtractor:
    """Image embeddings and zero-shot class probabilities of a CLIP network (``nn.clip.CLIP``).

    Args:
        net: the CLIP network (frozen, in eval mode).
        name: the extractor's name in the results store; give it the checkpoint's hash.
        class_prompts: per class, the prompts whose mean embedding is that class's text (the
            prompts a class-conditional generator is scored against).
        image_size: the CLIP image tower's input side (generated images are resized to it).
    """

    def __init__(self, net: nn.Module, name: str, class_prompts: list[list[str]], image_size: int) -> None:
        self.net, self.name, self.image_size = net, name, image_size
        self.dim = net.embed_dim
        with torch.no_grad():
            self.class_text = net.class_embeddings(class_prompts)  # (K, E)

    @torch.no_grad()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """images (B, C, H, W) in [-1, 1] → (E_I (B, E), zero-shot class probabilities (B, K))."""
        device = next(self.net.parameters()).device
        x = images.to(device).float()
        if x.shape[-1] != self.image_size:
            x = torch.nn.functional.interpolate(x, size=self.image_size, mode="bilinear", antialias=True)
        e = self.net.encode_image(x)
        logits = logit_scale(self.net.log_scale) * e @ self.class_text.to(device).T
        return e.cpu(), logits.softmax(-1).cpu()

    def label_scores(self, image_embedding: Tensor, labels: Tensor) -> Tensor:
        """CLIP-S of each image against the prompt of the class it was asked to show: (N,)."""
        return clip_score(image_embedding, self.class_text[labels.long()])

    @torch.no_grad()
    def prompt_scores(self, image_embedding: Tensor, prompts: list[str], batch_size: int = 256) -> Tensor:
        """CLIP-S of each image against its own prompt, the text it was generated from: (N,)."""
        if len(prompts) != len(image_embedding):
            raise ValueError(
                f"need one prompt per image, got {len(prompts)} prompts for {len(image_embedding)} images."
            )
        texts = [self.net.encode_text(prompts[i : i + batch_size]).cpu() for i in range(0, len(prompts), batch_size)]
        return clip_score(image_embedding, torch.cat(texts))


__all__ = ["CLIPExtractor", "clip_score"]
