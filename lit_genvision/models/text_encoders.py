"""A text encoder taken from a trained CLIP checkpoint, frozen: Stable Diffusion's choice of τ_θ for text.

``CLIPTextEncoder(checkpoint)`` loads a ``CLIPModel`` written by ``lit-genvision fit`` (``weights_only``,
trusted classes only; see ``models.pretrained``), keeps its text tower frozen and in eval mode, and
encodes prompts through the one ``TextEncoder`` interface: per-token features (B, M, d) for
cross-attention, the padding mask, and the pooled embedding in CLIP's joint space (B, E), unit norm,
the vector a CLIP score compares with images. The tower's weights travel in the checkpoint of the
model that uses it, and the owner records the CLIP checkpoint (path, sha256) in its hyperparameters,
so a run built on it can be rebuilt where the CLIP file is absent.
"""

from __future__ import annotations

from typing import Any

from lit_genvision.models.clip import CLIPModel
from lit_genvision.models.pretrained import by_reference, load_part
from lit_genvision.nn.text import TextEncoder, TextEncoding


class CLIPTextEncoder(TextEncoder):
    """The frozen text tower of a CLIP checkpoint.

    Args:
        checkpoint: path of a CLIP checkpoint (``configs/clip/*.yaml``).
        embed: keep the tower's weights in the owning model's checkpoints (one self-contained file); False
            holds them by reference to ``checkpoint`` (path and SHA-256 checked on every load).
    """

    part_name = "text_encoder"

    def __init__(self, checkpoint: str, embed: bool = True) -> None:
        super().__init__()
        hint = "pass the checkpoint of a CLIPModel (configs/clip/*.yaml)."
        model, info = load_part(checkpoint, self.part_name, CLIPModel, hint, embed=embed)
        self.clip = model.net  # frozen: no gradient, always in eval mode (``load_pretrained``)
        if not embed:
            by_reference(self.clip)  # the network is what this module holds of the CLIP
        tower = self.clip.text_tower
        self.dim = tower.dim
        self.pooled_dim = self.clip.embed_dim  # the joint space
        #: {"path", "sha256", "class", "config", "embedded"} of the CLIP checkpoint, recorded by the owning model.
        self.pretrained_record: dict[str, Any] = info

    @property
    def tokenizer(self):
        """The CLIP tower's own tokenizer (already trained: nothing to set up at fit start)."""
        return getattr(self.clip.text_tower, "tokenizer", None)

    def encode(self, texts: list[str]) -> TextEncoding:
        """texts (B,) → the tower's tokens (B, M, d) and mask, and the unit-norm CLIP text embedding (B, E)."""
        enc = self.clip.text_tower.encode(texts)
        return TextEncoding(enc.tokens, enc.mask, self.clip.text_embedding(enc.pooled))
