"""How well a DALL-E 2 prior maps captions to CLIP image embeddings (DALLE2-pytorch's prior evaluation, its
``prior.md``), on held-out (image, caption) pairs with the CLIP that defines the space:

    text_image       mean cos(z_t, z_i)            the baseline "prior": the text embedding itself
    pred_image       mean cos(ẑ_i, z_i)            the prior's embedding against the true image's: must beat
                                                   the baseline
    pred_text        mean cos(ẑ_i, z_t)
    pred_shuffled    mean cos(ẑ_i, z_i[π(i)])      against the image of another caption (π a derangement):
                                                   must stay clearly below pred_image
    zero_shot        share of ẑ_i whose nearest class embedding (CLIP's zero-shot classifier, cosine) is the
                     image's label; ``text_zero_shot`` and ``image_zero_shot`` the same for z_t and z_i
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def derangement(n: int, generator: torch.Generator | None = None) -> Tensor:
    """A permutation π of 0 … n − 1 with π(i) ≠ i for every i (n ≥ 2): a random shift of a random order."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 items, got {n}.")
    order = torch.randperm(n, generator=generator)
    shift = int(torch.randint(1, n, (1,), generator=generator))
    out = torch.empty(n, dtype=torch.long)
    out[order] = order.roll(shift)
    return out


def zero_shot_accuracy(embeddings: Tensor, class_embeddings: Tensor, labels: Tensor) -> float:
    """Share of rows of ``embeddings`` (N, D) whose most similar class embedding (K, D) is ``labels`` (N,)."""
    sims = F.normalize(embeddings, dim=-1) @ F.normalize(class_embeddings, dim=-1).T  # (N, K)
    return float((sims.argmax(-1) == labels.to(sims.device)).float().mean())


def prior_figures(
    predicted: Tensor,
    image: Tensor,
    text: Tensor,
    labels: Tensor | None = None,
    class_embeddings: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """The figures of the module's docstring for predicted ẑ_i, true z_i and text z_t embeddings (N, D) each;
    the zero-shot shares only with ``labels`` (N,) and ``class_embeddings`` (K, D)."""
    if not (predicted.shape == image.shape == text.shape) or predicted.ndim != 2:
        raise ValueError(
            f"prior_figures takes three (N, D) embeddings of the same pairs; got {tuple(predicted.shape)}, "
            f"{tuple(image.shape)} and {tuple(text.shape)}."
        )

    def cos(a: Tensor, b: Tensor) -> float:
        return float(F.cosine_similarity(a, b, dim=-1).mean())

    out = {
        "text_image": cos(text, image),
        "pred_image": cos(predicted, image),
        "pred_text": cos(predicted, text),
        "pred_shuffled": cos(predicted, image[derangement(len(image), generator)]),
    }
    if labels is not None and class_embeddings is not None:
        for name, e in (("zero_shot", predicted), ("text_zero_shot", text), ("image_zero_shot", image)):
            out[name] = zero_shot_accuracy(e, class_embeddings, labels)
    return out


__all__ = ["derangement", "prior_figures", "zero_shot_accuracy"]
