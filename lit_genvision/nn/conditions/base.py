"""What a condition is: the batch keys it reads, what "dropped" means for each, how it is derived from a batch
when the data does not carry it, and how it is encoded into what a denoiser reads.

A denoiser (``UNet``, ``DiT``) reads its conditions through four inputs (``ConditionedNet`` merges them):

    context (B, M, d) + context_mask (B, M)   tokens it cross-attends to (True = a real token)
    vector (B, D) [+ vector_null (B,)]        a per-sample vector added to the timestep embedding
    label (B,)                                a class index (K = the null class)
    channels (B, c, *spatial)                 maps concatenated to x_t

``Condition.encode(cond, batch, like)`` turns the raw condition (what a batch or a user gives: prompts, maps,
boxes, masks) into those inputs; ``Condition.null(key, value, drop)`` says what a dropped sample's raw value
becomes — the unconditional model of classifier-free guidance (Ho & Salimans 2022), trained by dropping each
key of each sample with probability p_k. The null rules below are the shared vocabulary of those nulls.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

#: The backbone inputs a condition may produce (``encode``); ``channels`` is concatenated to x_t.
ENCODED_KEYS = ("context", "context_mask", "vector", "vector_null", "label", "channels")


def _flag(drop: Tensor, value: Tensor) -> Tensor:
    """drop (B,) as a boolean view that broadcasts against ``value`` (B, …), on its device."""
    return drop.to(device=value.device, dtype=torch.bool).view(-1, *([1] * (value.dim() - 1)))


def null_fill(value: Tensor, drop: Tensor, fill: float) -> Tensor:
    """v'_i = fill if drop_i else v_i, for a value of any shape (B, …): a class label's null class K, a map's
    null class, box labels' padding −1."""
    return torch.where(_flag(drop, value), torch.full_like(value, fill), value)


def null_text(value: list[str], drop: Tensor, null: str = "") -> list[str]:
    """A dropped prompt becomes ``null`` ("" by default: Stable Diffusion's and Imagen's null prompt)."""
    return [null if d else text for text, d in zip(value, drop.tolist(), strict=True)]


def null_vector(key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
    """A dropped vector becomes zeros and ``<key>_null`` (B,) flags it, so the network uses its learned null
    embedding there (zeros alone could be a genuine condition)."""
    drop = drop.to(value.device)
    return {key: torch.where(_flag(drop, value), torch.zeros_like(value), value), f"{key}_null": drop}


class Condition(nn.Module):
    """One condition of a denoiser. Subclasses set ``name`` and ``keys`` and implement ``null`` and ``encode``.

    Attributes:
        name: the condition's name: the key of a model's ``cond_dropout`` for it.
        keys: the batch keys it reads, in the order their dropout is drawn.
        dropout_keys: the keys on which training draws its dropout (a layout drops through its labels alone).
        derived: True when the model builds the condition from the batch (``derive``), not the data module.
        channels: channels it concatenates to x_t (0: none).
    """

    name: ClassVar[str] = "condition"
    keys: tuple[str, ...] = ()
    derived: ClassVar[bool] = False

    @property
    def dropout_keys(self) -> tuple[str, ...]:
        return self.keys

    @property
    def channels(self) -> int:
        return 0

    @property
    def channels_needed(self) -> str:
        """The channels it concatenates, as a backbone's builder should read them (for error messages)."""
        return f"{self.channels} ({self.name})"

    def bind(self, backbone: nn.Module) -> None:
        """Build what depends on the backbone (a projection to its ``context_dim`` …); called once by
        ``ConditionedNet`` before any weight is loaded. The default needs nothing."""

    def null(self, key: str, value: Any, drop: Tensor) -> dict[str, Any]:
        """The cond entries that replace ``{key: value}`` with the samples where ``drop`` (B,) is True nulled."""
        raise NotImplementedError

    def encode(self, cond: dict[str, Any], batch: int, like: Tensor) -> dict[str, Any]:
        """The backbone inputs (see ``ENCODED_KEYS``) of the raw ``cond`` for ``batch`` samples, in ``like``'s
        dtype and device (``like`` is x_t); a key absent from ``cond`` is the null for every sample."""
        raise NotImplementedError

    def derive(self, batch: dict[str, Any], **context: Any) -> dict[str, Any]:
        """The condition built from ``batch`` when it is ``derived`` (e.g. the known region of an inpainting
        from its images and masks); ``context`` gives what the model holds (``encode``: the space's encoder,
        ``masks``: its mask generator). Others derive nothing."""
        return {}


def merge_encodings(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One set of backbone inputs from each condition's: contexts (and their masks) concatenated along the
    tokens, channels along the channel axis; a vector or a label may come from one condition only."""
    out: dict[str, Any] = {}
    contexts, masks, channels = [], [], []
    for part in parts:
        if "context" in part:
            contexts.append(part["context"])
            masks.append(part["context_mask"])
        if "channels" in part:
            channels.append(part["channels"])
        for key in ("vector", "vector_null", "label"):
            if key in part:
                if key in out:
                    raise ValueError(f"two conditions both give the backbone a {key}; give it one of them.")
                out[key] = part[key]
    if contexts:
        out["context"] = torch.cat(contexts, dim=1)  # (B, M_1 + M_2 + …, d)
        out["context_mask"] = torch.cat(masks, dim=1)
    if channels:
        out["channels"] = torch.cat(channels, dim=1)
    return out
