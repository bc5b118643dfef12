"""The conditions a backbone embeds itself: a class label and a per-sample vector."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lit_genvision.nn.conditions.base import Condition, null_fill, null_vector


class Label(Condition):
    """A class label y ∈ {0 … K−1} (B,), embedded by the backbone (``num_classes``); dropped to the null class K.

    Args:
        num_classes: K.
    """

    name = "label"
    keys = ("label",)

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def null(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        return {key: null_fill(value, drop, self.num_classes)}

    def encode(self, cond: dict[str, Any], batch: int, like: Tensor) -> dict[str, Any]:
        """The labels as they are (the backbone's label embedding reads them; absent: its null)."""
        return {"label": cond["label"]} if cond.get("label") is not None else {}


class Vector(Condition):
    """A per-sample vector v (B, D) under the batch key ``vector``, projected and added to the timestep embedding
    by the backbone (``cond_dim``); dropped to zeros flagged by ``vector_null``, where the backbone uses a
    learned null embedding."""

    name = "vector"
    keys = ("vector",)

    def null(self, key: str, value: Tensor, drop: Tensor) -> dict[str, Tensor]:
        return null_vector(key, value, drop)

    def encode(self, cond: dict[str, Any], batch: int, like: Tensor) -> dict[str, Any]:
        return {k: cond[k] for k in ("vector", "vector_null") if cond.get(k) is not None}
