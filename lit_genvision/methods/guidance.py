"""Conditioning with per-key dropout and classifier-free guidance (Ho & Salimans 2022).

Convention: guided output = u + s·(c − u), where c and u are the network's conditional and
unconditional (null-condition) outputs. s = 0 is unconditional, s = 1 conditional (no guidance),
s > 1 extrapolates; the paper's w is s − 1. It applies to any prediction (ε, v, x0, velocity).

A model's condition is a dict of batch keys (``label``, a per-sample ``vector``, ``text``,
``semantic_map``, ``boxes`` with ``box_labels``, ``inpaint`` …). A ``Conditioning`` says which keys condition a
model, with what probability p_k each key is dropped in training, and what "dropped" means for it
(its ``NullRule``):

- a class label becomes the null class K (``NullLabel``);
- a per-sample vector becomes zeros plus a ``<key>_null`` flag that the network replaces by a
  learned null embedding (``NullVector``);
- a text prompt becomes the empty prompt "" (``NullText``; Stable Diffusion's and Imagen's null);
- a semantic map becomes all null class K, box labels all padding −1 so that no box is left
  (``NullFill``; the boxes themselves are kept, ``KeepValue``);
- an inpainting input (mask, masked image) becomes mask 1 and image 0: nothing is known, every
  pixel is to be generated (``NullInpaint``).

Training draws, per key and per sample, drop ~ Bernoulli(p_k); guidance runs the network on the
condition and on the fully nulled condition and combines them as above.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from lit_genvision.methods.diffusion import Net


def drop_labels(labels: Tensor, p: float, null_label: int, generator: torch.Generator | None = None) -> Tensor:
    """Replace each label by ``null_label`` with probability p (trains the unconditional model too)."""
    if p <= 0:
        return labels
    gdev = generator.device if generator is not None else labels.device
    drop = (torch.rand(labels.shape, generator=generator, device=gdev) < p).to(labels.device)
    return torch.where(drop, torch.full_like(labels, null_label), labels)


class NullRule(Protocol):
    """What dropping a condition key means: ``rule(key, value, drop)`` returns the cond entries
    that replace ``{key: value}``, with the samples where ``drop`` (B,) is True nulled. ``value``
    is a tensor with the batch first, or a list with one entry per sample (text)."""

    def __call__(self, key: str, value: Any, drop: Tensor) -> dict[str, Any]: ...


@dataclass(frozen=True)
class NullLabel:
    """A class label y ∈ {0 … K−1} is dropped to the null class K: y' = K if drop else y."""

    null_label: int

    def __call__(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        return NullFill(self.null_label)(key, value, drop)


@dataclass(frozen=True)
class NullVector:
    """A per-sample vector v (B, D) is dropped to zeros, and ``<key>_null`` (B,) flags the dropped
    samples so that the network uses its learned null embedding there (zeros alone could be a
    genuine condition). A flag already present is kept: null stays null."""

    def __call__(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        drop = drop.to(value.device)
        flag = drop.view(-1, *([1] * (value.dim() - 1)))
        return {key: torch.where(flag, torch.zeros_like(value), value), f"{key}_null": drop}


@dataclass(frozen=True)
class NullFill:
    """Every entry of a dropped sample's value is set to ``fill``: v'_i = fill if drop_i else v_i,
    for a value of any shape (B, …). A semantic map's null is the null class K (``fill=K``), box
    labels' is the padding −1 (no box), an inpainting mask's is 1 (nothing known)."""

    fill: float

    def __call__(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        flag = drop.to(value.device).view(-1, *([1] * (value.dim() - 1)))
        return {key: torch.where(flag, torch.full_like(value, self.fill), value)}


@dataclass(frozen=True)
class NullText:
    """A prompt is dropped to ``null`` (the empty prompt "" by default), which the text encoder
    encodes like any prompt; the classifier-free guidance convention of Stable Diffusion."""

    null: str = ""

    def __call__(self, key: str, value: list[str], drop: Tensor) -> dict[str, list[str]]:
        return {key: [self.null if d else text for text, d in zip(value, drop.tolist(), strict=True)]}


@dataclass(frozen=True)
class KeepValue:
    """A key that is never nulled itself (a layout's ``boxes``: its ``box_labels`` carry the drop)."""

    def __call__(self, key: str, value: Any, drop: Tensor) -> dict[str, Any]:
        return {key: value}


@dataclass(frozen=True)
class NullInpaint:
    """An inpainting input (B, 1 + C, h, w) = [mask m, masked image E((1 − m)·x)] is dropped to
    m = 1, image = 0: nothing known (the unconditional model generates every pixel)."""

    def __call__(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        null = torch.cat([torch.ones_like(value[:, :1]), torch.zeros_like(value[:, 1:])], dim=1)
        flag = drop.to(value.device).view(-1, 1, 1, 1)
        return {key: torch.where(flag, null, value)}


def _batch_size(value: Any) -> int | None:
    """The number of samples of a cond entry (a tensor's first axis, a list's length), or None."""
    if isinstance(value, Tensor) and value.dim() > 0:
        return len(value)
    if isinstance(value, list):
        return len(value)
    return None


def _device(value: Any) -> torch.device:
    return value.device if isinstance(value, Tensor) else torch.device("cpu")


@dataclass(frozen=True)
class CondKey:
    """One batch key that conditions a model, its training dropout probability and its null rule."""

    key: str
    dropout: float = 0.0
    null: NullRule = field(default_factory=NullVector)


@dataclass(frozen=True)
class Conditioning:
    """The keys that condition a model, in the order their dropout is drawn.

    An empty ``Conditioning`` is falsy: the model is unconditional.
    """

    keys: tuple[CondKey, ...] = ()

    @classmethod
    def labels(cls, num_classes: int, dropout: float = 0.0) -> Conditioning:
        """Class labels 0 … K−1 with K the null class: today's label conditioning."""
        return cls((CondKey("label", dropout, NullLabel(num_classes)),))

    def __bool__(self) -> bool:
        return bool(self.keys)

    def __iter__(self) -> Iterator[CondKey]:
        return iter(self.keys)

    @property
    def batch_keys(self) -> tuple[str, ...]:
        return tuple(k.key for k in self.keys)

    def select(self, batch: Mapping[str, Any]) -> dict[str, Any] | None:
        """The condition of ``batch`` (its conditioning keys, nothing dropped); None if unconditional."""
        return {k.key: batch[k.key] for k in self.keys} if self.keys else None

    def drop(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> dict[str, Any] | None:
        """The training condition: each key k of each sample nulled with probability p_k (see
        ``drop_condition``)."""
        cond = self.select(batch)
        return None if cond is None else drop_condition(cond, self, generator)

    def null(self, cond: Mapping[str, Any], keep: bool = False) -> dict[str, Any]:
        """``cond`` with every conditioning key present nulled for all samples (``keep``: none
        nulled, but with the same entries, so that the two can be concatenated)."""
        out = dict(cond)
        for spec in self.keys:
            value = out.get(spec.key)
            size = _batch_size(value)
            if size is not None:
                drop = torch.full((size,), not keep, dtype=torch.bool, device=_device(value))
                flag = out.get(f"{spec.key}_null")
                if keep and isinstance(flag, Tensor):
                    drop = flag.to(torch.bool)
                out.update(spec.null(spec.key, value, drop))
        return out


def drop_condition(
    cond: Mapping[str, Any], conditioning: Conditioning, generator: torch.Generator | None = None
) -> dict[str, Any]:
    """Null each conditioning key k of each sample independently: drop_i,k ~ Bernoulli(p_k).

    Keys are drawn in ``conditioning`` order, one uniform per sample, and a key with p_k ≤ 0 draws
    nothing — so a label-only conditioning makes exactly ``drop_labels``'s draws. A layout drops
    through its ``box_labels`` alone (all padding −1: no box), so its boxes go with them.
    """
    out = dict(cond)
    for spec in conditioning:
        value = out.get(spec.key)
        size = _batch_size(value)
        if spec.dropout <= 0 or size is None:
            continue
        gdev = generator.device if generator is not None else _device(value)
        drop = (torch.rand((size,), generator=generator, device=gdev) < spec.dropout).to(_device(value))
        flag = out.get(f"{spec.key}_null")
        if isinstance(flag, Tensor):
            drop = drop | flag.to(drop.device, torch.bool)
        out.update(spec.null(spec.key, value, drop))
    return out


def _concat(a: Any, b: Any) -> Any:
    """Two batches of one cond entry, stacked on the batch axis (tensors and lists)."""
    if isinstance(a, Tensor):
        return torch.cat([a, b])
    if isinstance(a, list):
        return a + b
    return a


def classifier_free_guidance(net: Net, scale: float, null_label: int | Conditioning) -> Net:
    """Wrap ``net`` so that it returns u + s·(c − u); both branches run in one batched call of 2B.

    ``null_label``: the null class index K (labels only), or a ``Conditioning``, whose every key
    present in ``cond`` is nulled by its rule in the unconditional branch.
    """
    if isinstance(null_label, Conditioning):
        return _guided(net, scale, null_label)

    def guided(x: Tensor, t: Tensor, cond: dict | None) -> Tensor:
        if scale == 1.0 or not cond or "label" not in cond:
            return net(x, t, cond)
        null = {**cond, "label": torch.full_like(cond["label"], null_label)}
        if scale == 0.0:
            return net(x, t, null)
        both = {k: torch.cat([v, null[k]]) if isinstance(v, Tensor) else v for k, v in cond.items()}
        c, u = net(torch.cat([x, x]), torch.cat([t, t]), both).chunk(2)
        return u + scale * (c - u)

    return guided


def _guided(net: Net, scale: float, conditioning: Conditioning) -> Net:
    """Classifier-free guidance over every key of ``conditioning``."""

    def guided(x: Tensor, t: Tensor, cond: dict | None) -> Tensor:
        if scale == 1.0 or not cond or not any(k in cond for k in conditioning.batch_keys):
            return net(x, t, cond)
        null = conditioning.null(cond)
        if scale == 0.0:
            return net(x, t, null)
        kept = conditioning.null(cond, keep=True)  # same entries as ``null``, nothing nulled
        both = {k: _concat(v, null[k]) for k, v in kept.items()}
        c, u = net(torch.cat([x, x]), torch.cat([t, t]), both).chunk(2)
        return u + scale * (c - u)

    return guided
