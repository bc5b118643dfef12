"""The two collectives the stateful quantizers need so that every DDP rank keeps the same codebook.

Each is a no-op unless torch.distributed is initialised (single process, tests, CPU runs).
"""

from __future__ import annotations

import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def all_reduce_(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over ranks in place (EMA statistics, usage counts); returns it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_(tensor: Tensor, src: int = 0) -> Tensor:
    """Overwrite ``tensor`` with rank ``src``'s copy in place (k-means centroids, restarted codes)."""
    if is_distributed():
        dist.broadcast(tensor, src=src)
    return tensor
