"""Latent diffusion's first stage from a checkpoint: ``FirstStage(checkpoint)`` is a ``LatentSpace``
over any platform autoencoder with ``encode``/``decode`` — the KL autoencoder or a VQ tokenizer
(``configs/tokenizer/digits_kl.yaml``, ``digits_fsq.yaml`` …) — loaded frozen, as a config names it:

    space:
      class_path: lit_genvision.models.FirstStage
      init_args: {checkpoint: runs/tokenizer-digits-kl/version_0/checkpoints/last.ckpt}

The scale factor s = 1 / std(E(x)) is measured on the training images at fit start (LDM's
``scale_by_std``) unless given, and is saved with the model. The model records the checkpoint the
autoencoder came from (path, SHA-256, class, config); its weights travel in the model's checkpoint, so a
latent model can be sampled, scored and rebuilt where the first stage's file is absent — or, with
``embed: false``, stay in their own file, which the model then needs and checks (``models.pretrained``).
"""

from __future__ import annotations

from typing import Any

from lit_genvision.methods.space import LatentSpace
from lit_genvision.models.base import PlatformModule
from lit_genvision.models.pretrained import load_part


class FirstStage(LatentSpace):
    """A frozen autoencoder checkpoint as the space a diffusion or flow model runs in.

    Args:
        checkpoint: path of an autoencoder checkpoint written by ``lit-genvision fit`` whose model
            has ``encode(images) -> latents`` and ``decode(latents) -> images`` (``VQModel``).
        scale_factor: s; None measures it on the training images at fit start.
        embed: keep the autoencoder's weights in the latent model's checkpoints (one self-contained file);
            False holds them by reference to ``checkpoint`` (path and SHA-256 checked on every load).
    """

    part_name = "first_stage"

    def __init__(self, checkpoint: str, scale_factor: float | None = None, embed: bool = True) -> None:
        hint = "pass an autoencoder checkpoint such as one of configs/tokenizer/digits_kl.yaml."
        model, info = load_part(checkpoint, self.part_name, PlatformModule, hint, embed=embed)
        if not (callable(getattr(model, "encode", None)) and callable(getattr(model, "decode", None))):
            raise ValueError(
                f"{checkpoint} holds a {type(model).__name__}, which cannot encode images to latents; pass an "
                "autoencoder checkpoint such as one of configs/tokenizer/digits_kl.yaml."
            )
        super().__init__(model, scale_factor)
        #: {"path", "sha256", "class", "config", "embedded"} of the checkpoint, recorded by the owning model.
        self.pretrained_record: dict[str, Any] = info
