"""Conditioning with per-key dropout and classifier-free guidance (Ho & Salimans 2022).

Convention: guided output = u + s·(c − u), where c and u are the network's conditional and
unconditional (null-condition) outputs. s = 0 is unconditional, s = 1 conditional (no guidance),
s > 1 extrapolates; the paper's w is s − 1. It applies to any prediction (ε, v, x0, velocity).

A model's condition is a dict of batch keys (``label``, a per-sample ``vector``, ``text``,
``semantic_map``, ``boxes`` with ``box_labels``, ``inpaint`` …). A ``Conditioning`` says which keys condition a
model, with what probability p_k each key is dropped in training, and what "dropped" means for it
(its ``NullRule``: the ``null`` of the condition that reads the key, ``nn.conditions``).

Training draws, per key and per sample, drop ~ Bernoulli(p_k); guidance runs the network on the
condition and on the fully nulled condition, as one batch of both, and combines them as above.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from lit_genvision.methods.diffusion import Net
from lit_genvision.nn.conditions.base import null_fill, null_text, null_vector


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
    is a tensor with the batch first, or a list with one entry per sample (text). A condition's
    ``null`` method (``nn.conditions``) is one."""

    def __call__(self, key: str, value: Any, drop: Tensor) -> dict[str, Any]: ...


@dataclass(frozen=True)
class NullLabel:
    """A class label y ∈ {0 … K−1} is dropped to the null class K: y' = K if drop else y."""

    null_label: int

    def __call__(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        return {key: null_fill(value, drop, self.null_label)}


@dataclass(frozen=True)
class NullVector:
    """A per-sample vector is dropped to zeros flagged by ``<key>_null`` (``nn.conditions.null_vector``)."""

    def __call__(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        return null_vector(key, value, drop)


@dataclass(frozen=True)
class NullFill:
    """Every entry of a dropped sample's value is set to ``fill`` (``nn.conditions.null_fill``)."""

    fill: float

    def __call__(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        return {key: null_fill(value, drop, self.fill)}


@dataclass(frozen=True)
class NullText:
    """A prompt is dropped to ``null`` (the empty prompt "" by default; ``nn.conditions.null_text``)."""

    null: str = ""

    def __call__(self, key: str, value: list[str], drop: Tensor) -> dict[str, list[str]]:
        return {key: null_text(value, drop, self.null)}


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


def concat_conditions(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two conditions with the same entries as one batch of both (``a``'s samples first)."""
    return {k: _concat(v, b[k]) for k, v in a.items()}


def guided(net: Net, scale: float) -> Net:
    """``net`` called on a batch of both branches, ``cond`` holding the conditional then the null condition of B
    samples each: u + s·(c − u) for x (B, …), with c, u the two halves of net([x, x], [t, t], cond)."""

    def step(x: Tensor, t: Tensor, both: Any) -> Tensor:
        c, u = net(torch.cat([x, x]), torch.cat([t, t]), both).chunk(2)
        return u + scale * (c - u)

    return step


def classifier_free_guidance(net: Net, scale: float, null_label: int | Conditioning) -> Net:
    """Wrap ``net`` so that each call ``net(x, t, cond)`` returns u + s·(c − u), both branches built from ``cond``
    at every call and run as one batch of 2B (``guided``): for a network that reads its raw condition. (A model's
    ``guided_net`` builds the branches once per sample and encodes them once.)

    ``null_label``: the null class K of a label-only model, or a ``Conditioning``, whose every key present in
    ``cond`` is nulled by its rule in the unconditional branch.
    """
    conditioning = null_label if isinstance(null_label, Conditioning) else Conditioning.labels(null_label)
    both_branches = guided(net, scale)

    def call(x: Tensor, t: Tensor, cond: dict | None) -> Tensor:
        if scale == 1.0 or not cond or not any(k in cond for k in conditioning.batch_keys):
            return net(x, t, cond)
        null = conditioning.null(cond)
        if scale == 0.0:
            return net(x, t, null)
        return both_branches(x, t, concat_conditions(conditioning.null(cond, keep=True), null))

    return call
