"""A denoiser behind its conditions: ε_θ(z_t, t, τ_θ(y)) for labels, text, semantic maps, layouts, known regions,
image embeddings — any ``Condition`` (``nn.conditions``).

Latent diffusion's conditioning (Rombach et al. 2022, arXiv 2112.10752, §3.3): an input y is mapped by a
domain-specific encoder τ_θ to tokens τ_θ(y) ∈ R^{M×d_τ}, which reach the backbone's flattened features
φ_i(z_t) through cross-attention,

    Attention(Q, K, V) = softmax(Q Kᵀ / √d)·V,  Q = W_Q·φ_i(z_t),  K = W_K·τ_θ(y),  V = W_V·τ_θ(y),

or, for inputs aligned with the image, are concatenated to z_t as extra channels. τ_θ and ε_θ are trained
jointly by the diffusion (or flow) loss.

``ConditionedNet`` wraps any backbone with the denoiser interface (``UNet``, ``DiT``: ``net(x, t, cond)``).
``encode(cond, x)`` turns a raw condition (a batch's prompts, maps, boxes, masks) into the backbone's inputs
once — ``Encoded`` — and ``forward`` takes either: a training step encodes once per step, ``sample()`` once per
call (not once per sampler step and guidance branch).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lit_genvision.nn.conditions import Condition, KnownRegion, Label, Layout, SemanticMap, Text, merge_encodings
from lit_genvision.nn.renames import rename_on_load
from lit_genvision.nn.text import TextEncoder

#: Raw cond entries handed to the backbone as they are when present (a vector given beside the conditions).
PASSTHROUGH = ("label", "vector", "vector_null")


class Encoded(dict):
    """A condition already encoded into the backbone's inputs (``context``, ``context_mask``, ``vector``,
    ``label``, ``channels``); ``ConditionedNet.forward`` uses it as it is."""


class ConditionedNet(nn.Module):
    """ε_θ(z_t, t, τ_θ(y)): ``backbone`` behind ``conditions``.

    Args:
        backbone: the denoiser, ``backbone(x, t, cond)``, built with ``in_channels`` = C + the channels the
            conditions concatenate, ``out_channels`` = C, ``context_dim`` when something is cross-attended,
            ``cond_dim`` when something gives it a vector, ``num_classes`` for a class label.
        conditions: the conditions, e.g. ``[Text(encoder, pooled=True)]``; a backbone with ``num_classes``
            adds a ``Label`` first.

    The keyword arguments below are the form of earlier revisions' configs, kept so they and their checkpoints
    load; each builds one condition: ``text_encoder`` (+ ``text_pooled``) a ``Text``; ``semantic`` (``cross`` or
    ``concat``) with ``semantic_classes`` a ``SemanticMap`` (``semantic_from: map``, side ``semantic_size``) or a
    ``Layout`` (``semantic_from: boxes``); ``inpainting`` a ``KnownRegion``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        conditions: list[Condition] | None = None,
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
        self.backbone = backbone
        given = list(conditions or []) + _legacy_conditions(
            text_encoder, text_pooled, semantic, semantic_classes, semantic_from, semantic_size,
            semantic_channels, semantic_downsample, inpainting,
        )  # fmt: skip
        if getattr(backbone, "num_classes", None):
            given.insert(0, Label(backbone.num_classes))
        self.conditions = nn.ModuleDict()
        for condition in given:
            name = condition.name
            if name in self.conditions:  # a second condition of one kind (two texts …)
                name = f"{name}_{len(self.conditions)}"
            self.conditions[name] = condition
        total, out = backbone.in_channels, getattr(backbone, "out_channels", None) or backbone.in_channels
        for condition in self.conditions.values():
            if isinstance(condition, KnownRegion):
                condition.sample_channels = out
            condition.bind(backbone)
        extra = sum(c.channels for c in self.conditions.values())
        if total != out + extra:
            need = " + ".join(["C"] + [c.channels_needed for c in self.conditions.values() if c.channels])
            raise ValueError(
                f"the backbone must take in_channels = {need} and give out_channels = C (the channels it denoises), "
                f"got in_channels={total}, out_channels={out}; rebuild it with those."
            )
        self.in_channels = self.out_channels = out
        self.image_size = backbone.image_size
        self.num_classes = getattr(backbone, "num_classes", None)
        rename_on_load(self, self.legacy_keys())

    def legacy_keys(self) -> dict[str, str]:
        """The submodules' names before conditions were objects (``text_encoder``, ``text_proj``,
        ``semantic_encoder``) → today's, for ``nn.renames``."""
        out = {}
        for name, condition in self.conditions.items():
            if isinstance(condition, Text):
                out |= {"text_encoder.": f"conditions.{name}.encoder.", "text_proj.": f"conditions.{name}.proj."}
            elif isinstance(condition, SemanticMap):
                out["semantic_encoder."] = f"conditions.{name}.encoder."
        return out

    @property
    def condition_list(self) -> list[Condition]:
        return list(self.conditions.values())

    @property
    def condition_keys(self) -> tuple[str, ...]:
        """The batch keys this network reads besides ``label`` (in the order their dropout is drawn)."""
        return tuple(k for c in self.conditions.values() if not isinstance(c, Label) for k in c.keys)

    @property
    def text_encoder(self) -> TextEncoder | None:
        """The encoder of the (first) text condition, or None."""
        return next((c.encoder for c in self.conditions.values() if isinstance(c, Text)), None)

    def encode(self, cond: dict[str, Any] | None, like: Tensor) -> Encoded:
        """The backbone's inputs for the raw ``cond`` of ``len(like)`` samples (``like`` is x_t): each condition's
        encoding, merged; ``label``/``vector`` entries given beside them are handed through."""
        cond = dict(cond or {})
        encoded = Encoded({k: cond[k] for k in PASSTHROUGH if k in cond})
        encoded.update(merge_encodings([c.encode(cond, len(like), like) for c in self.conditions.values()]))
        return encoded

    def forward(self, x: Tensor, t: Tensor, cond: dict[str, Any] | None = None) -> Tensor:
        """x (B, C, …), t (B,), a raw cond {text, semantic_map | boxes + box_labels, inpaint, label, …} or an
        ``Encoded`` one."""
        encoded = cond if isinstance(cond, Encoded) else self.encode(cond, x)
        channels = encoded.get("channels")
        inputs = x if channels is None else torch.cat([x, channels], dim=1)
        return self.backbone(inputs, t, {k: v for k, v in encoded.items() if k != "channels"})


def _legacy_conditions(
    text_encoder: TextEncoder | None,
    text_pooled: bool,
    semantic: str | None,
    semantic_classes: int | None,
    semantic_from: str,
    semantic_size: int | None,
    semantic_channels: int,
    semantic_downsample: int,
    inpainting: bool,
) -> list[Condition]:
    """The conditions that earlier revisions' keyword arguments name, in their order (text, map, known region)."""
    out: list[Condition] = []
    if text_encoder is not None:
        out.append(Text(text_encoder, pooled=text_pooled))
    if semantic is not None:
        if semantic_from not in ("map", "boxes"):
            raise ValueError(f"semantic_from must be one of map, boxes, got {semantic_from!r}.")
        if semantic_from == "boxes":
            out.append(Layout(semantic_classes, semantic_size, semantic, semantic_channels, semantic_downsample))
        else:
            out.append(SemanticMap(semantic_classes, semantic, semantic_size, semantic_channels, semantic_downsample))
    if inpainting:
        out.append(KnownRegion())
    return out
