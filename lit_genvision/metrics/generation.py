"""The one seed rule by which ``sample``, ``evaluate`` and the training-time scoring callback draw
a run of generated images: batch b from its own generator seeded from (seed, b), ranks taking every
world-th batch, so the generated set does not depend on how the run is batched across processes.

It lives below ``experiments/`` and ``callbacks/`` so that both can use it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


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


def generate_batches(
    model,
    num: int,
    *,
    batch_size: int,
    seed: int,
    steps: int | None = None,
    sampler: object | None = None,
    labels: Tensor | None = None,
    rank: int = 0,
    world: int = 1,
) -> Iterator[tuple[int, Tensor, Tensor | None]]:
    """(batch index, images (n, C, H, W) on the CPU, labels (n,) or None) for the batches of a run
    of ``num`` samples that this rank draws (every ``world``-th batch).

    Batch b is drawn with ``batch_generator(seed, b)``; its condition is the slice of ``labels``
    (from ``--label``) or the model's balanced labels for samples first … first + n − 1, so sample i
    of the run has label i mod K however the run is batched or sharded.
    """
    for b, first in enumerate(range(0, num, batch_size)):
        if b % world != rank:
            continue
        n = min(batch_size, num - first)
        if labels is not None:
            cond = {"label": labels[first : first + n].to(model.device)}
        else:
            cond = model.sample_cond(n, None, offset=first)
        g = batch_generator(seed, b, model.device)
        images = model.sample(n, cond=cond, steps=steps, generator=g, sampler=sampler).cpu()
        yield b, images, cond["label"].cpu() if cond else None
