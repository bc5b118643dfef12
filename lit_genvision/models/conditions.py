"""What a conditioned generator prepares at fit start, before its method runs: a text encoder's tokenizer
trained on the data's captions, and a latent space's scale factor measured on the training images.

Shared by every family that conditions a network through ``nn.ConditionedNet`` (diffusion and flow
matching in pixel or latent space) and by CLIP, whose text tower is trained the same way. (The conditions
themselves — keys, nulls, derivation, encoding — are ``nn.conditions``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from lit_genvision.data.base import to_unit_range
from lit_genvision.nn.text_tokenizer import BPETokenizer

#: Training images over which a latent space's scale factor s = 1 / std(E(x)) is measured.
SCALE_IMAGES = 2048


def ensure_tokenizer(trainer: Any, encoder: nn.Module, vocab_size: int | None = None) -> BPETokenizer | None:
    """Train ``encoder``'s BPE tokenizer on the training captions when it has none yet.

    The captions come from the data module's ``caption_corpus("train")``; the tokenizer is saved as
    ``tokenizer.json`` in the run's log directory (and travels inside the checkpoint as the encoder's
    extra state). Returns the new tokenizer, or None when the encoder needed none.
    """
    if not hasattr(encoder, "set_tokenizer") or encoder.tokenizer is not None:
        return None
    datamodule = getattr(trainer, "datamodule", None)
    corpus = getattr(datamodule, "caption_corpus", None)
    if corpus is None:
        raise ValueError(
            f"the text encoder has no tokenizer and {type(datamodule).__name__} cannot list its training captions; "
            "pass a tokenizer JSON as the encoder's tokenizer argument."
        )
    tokenizer = BPETokenizer.train(
        corpus("train"), vocab_size=vocab_size or encoder.vocab_size, max_length=encoder.max_length
    )
    encoder.set_tokenizer(tokenizer)
    log_dir = getattr(trainer, "log_dir", None)
    if log_dir and trainer.is_global_zero:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        tokenizer.save(Path(log_dir) / "tokenizer.json")
    return tokenizer


def training_images(datamodule: Any, limit: int = SCALE_IMAGES, batch_size: int = 256) -> list[Tensor]:
    """Up to ``limit`` training images in [-1, 1], in the split's stored order (no augmentation, and
    no draw from the training stream's random numbers), as batches."""
    dataset = datamodule.split("train")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=type(datamodule).collate_fn)
    out, seen = [], 0
    for batch in loader:
        images = batch["image"]
        out.append(to_unit_range(images) if images.dtype == torch.uint8 else images.float())
        seen += len(images)
        if seen >= limit:
            break
    return out


def ensure_scale(trainer: Any, space: nn.Module, device: torch.device) -> float | None:
    """Measure a latent space's scale factor (LDM's ``scale_by_std``: s = 1 / std of E(x)), or a CLIP space's
    per-dimension statistics, on the training images when it has none yet; returns the figure, or None when
    nothing was measured."""
    if not callable(getattr(space, "fit_scale", None)) or space.is_scaled:  # a latent or CLIP-embedding space
        return None
    datamodule = getattr(trainer, "datamodule", None)
    if datamodule is None or not hasattr(datamodule, "split"):
        raise ValueError("the latent space has no scale_factor and there is no data module to measure it on; pass one.")
    return space.fit_scale(images.to(device) for images in training_images(datamodule))
