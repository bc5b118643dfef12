"""Two gloo ranks train stateful VQ quantizers on different data and save their final states.

    python tests/methods/quantizer_ddp_job.py OUT_DIR

Run by `test_quantizers_ddp.py`, which also rebuilds the same quantizers in one process.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lit_genvision.methods.quantizers import VectorQuantizer

STEPS = 6
WORLD = 2
KINDS: dict[str, dict] = {
    "ema": {},
    "kmeans": {"kmeans_init": True},
    "kmeans_restart": {"kmeans_init": True, "restart_dead": True},
}


def batch(rank: int, step: int) -> torch.Tensor:
    """Rank ``rank``'s vectors at ``step``: (4, 8, 4), rank 1's shifted so the ranks see different data."""
    g = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randn(4, 8, 4, generator=g) + 2.0 * rank


def build(kind: str) -> VectorQuantizer:
    return VectorQuantizer(4, 16, ema=True, channel_dim=-1, usage_window=2, seed=0, **KINDS[kind]).train()


def worker(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    for kind in KINDS:
        vq = build(kind)
        for step in range(STEPS):
            vq(batch(rank, step))
        torch.save(vq.state_dict(), f"{out}/{kind}_rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    out_dir = sys.argv[1]
    mp.spawn(worker, args=(f"{out_dir}/store", out_dir), nprocs=WORLD)
