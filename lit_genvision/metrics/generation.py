"""The one seed rule by which ``sample``, ``evaluate`` and the training-time scoring callback draw
a run of generated images: batch b from its own generator seeded from (seed, b), ranks taking every
world-th batch, so the generated set does not depend on how the run is batched across processes.

It lives below ``experiments/`` and ``callbacks/`` so that both can use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch import Tensor


class GeneratedBatch(NamedTuple):
    """One batch of a generated run: its index, the images, and what they were asked to show."""

    index: int
    images: Tensor
    labels: Tensor | None
    prompts: list[str] | None


def dist_rank_world() -> tuple[int, int]:
    """(rank, world size) of an initialised process group, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def gather_to_rank0(items: list) -> list:
    """Every rank's list, concatenated on rank 0 (other ranks get their own list back)."""
    rank, world = dist_rank_world()
    if world == 1:
        return items
    out = [None] * world if rank == 0 else None
    torch.distributed.gather_object(items, out, dst=0)
    return [x for part in out for x in part] if rank == 0 else items


def batch_generator(seed: int, batch: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of batch ``batch`` of a run with seed ``seed``: the one seed rule of ``sample``
    and ``evaluate``. Each batch has its own generator, seeded from (seed, batch), so a batch's
    images do not depend on which process draws it or on the batches drawn before it."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + batch)


def _rows(value: Any, first: int, n: int, device: torch.device) -> Any:
    """Rows first … first + n − 1 of a condition entry given for the whole run (a tensor or a list)."""
    part = value[first : first + n]
    return part.to(device) if isinstance(part, Tensor) else list(part)


def generate_batches(
    model,
    num: int,
    *,
    batch_size: int,
    seed: int,
    steps: int | None = None,
    options: Any = None,
    labels: Tensor | None = None,
    cond: dict[str, Any] | None = None,
    rank: int = 0,
    world: int = 1,
) -> Iterator[GeneratedBatch]:
    """The batches of a run of ``num`` samples that this rank draws (every ``world``-th batch):
    (batch index, images (n, C, H, W) on the CPU, the labels (n,) and prompts (n) they were asked
    to show, each None when not asked for).

    Batch b is drawn with ``batch_generator(seed, b)``; its condition is the slice of ``labels``
    (from ``--label``) and of ``cond`` (a condition for every sample of the run: ``--prompt``,
    ``--layout`` …) for samples first … first + n − 1, or else the model's default — balanced labels,
    or class prompts — so sample i of the run has label i mod K however the run is batched or sharded.
    ``options`` (``SampleOptions``) go to every ``sample`` call.
    """
    for b, first in enumerate(range(0, num, batch_size)):
        if b % world != rank:
            continue
        n = min(batch_size, num - first)
        given = {k: _rows(v, first, n, model.device) for k, v in (cond or {}).items()}
        if labels is not None:
            given["label"] = labels[first : first + n].to(model.device)
        batch_cond = model.sample_cond(n, given or None, offset=first)
        g = batch_generator(seed, b, model.device)
        images = model.sample(n, cond=batch_cond, steps=steps, generator=g, options=options).cpu()
        asked = batch_cond or {}
        label = asked.get("label")
        yield GeneratedBatch(b, images, None if label is None else label.cpu(), asked.get("text"))
