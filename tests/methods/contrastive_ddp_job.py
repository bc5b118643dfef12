"""Two gloo ranks train a tiny two-tower CLIP under DDP, each on its half of one global batch, and save the loss
and the (DDP-averaged) parameter gradients of one backward pass, for each way of computing the loss.

    python tests/methods/contrastive_ddp_job.py OUT_DIR

Run by `test_contrastive.py`, which computes the same loss and gradients in one process on the global batch.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import Tensor, nn

from lit_genvision.methods.contrastive import INIT_LOG_SCALE, clip_loss

WORLD = 2
LOCAL_BATCH = 4
IMAGE_DIM, TEXT_DIM, EMBED_DIM = 6, 5, 3
VARIANTS: dict[str, dict[str, bool]] = {
    "global": {"gather": True, "gather_with_grad": True, "local_loss": False},
    "local": {"gather": True, "gather_with_grad": True, "local_loss": True},
    "global_nograd": {"gather": True, "gather_with_grad": False, "local_loss": False},
    "local_nograd": {"gather": True, "gather_with_grad": False, "local_loss": True},
    "no_gather": {"gather": False},  # the control: each rank sees only its own B − 1 negatives
}


class TwoTowers(nn.Module):
    """A linear image tower, a linear text tower and CLIP's learned log temperature."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Linear(IMAGE_DIM, EMBED_DIM)
        self.text = nn.Linear(TEXT_DIM, EMBED_DIM)
        # a scale of about 3 rather than CLIP's 14: no row's softmax saturates, so every gradient is sizeable
        self.log_scale = nn.Parameter(torch.tensor(INIT_LOG_SCALE - 1.5))

    def forward(self, image: Tensor, text: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return F.normalize(self.image(image), dim=-1), F.normalize(self.text(text), dim=-1), self.log_scale


def build() -> TwoTowers:
    torch.manual_seed(0)
    return TwoTowers()


def global_batch() -> tuple[Tensor, Tensor]:
    """(W·B, IMAGE_DIM) images and (W·B, TEXT_DIM) captions; pair i is row i."""
    g = torch.Generator().manual_seed(7)
    n = WORLD * LOCAL_BATCH
    return torch.randn(n, IMAGE_DIM, generator=g), torch.randn(n, TEXT_DIM, generator=g)


def local_batch(rank: int) -> tuple[Tensor, Tensor]:
    rows = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
    image, text = global_batch()
    return image[rows], text[rows]


def loss_and_grads(model: nn.Module, image: Tensor, text: Tensor, **kwargs: bool) -> dict[str, Tensor]:
    """One forward and backward; the loss and every parameter's gradient as plain tensors."""
    loss = clip_loss(*model(image, text), **kwargs)
    loss.backward()
    params = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    return {"loss": loss.detach()} | {f"grad.{n}": p.grad.detach().clone() for n, p in params.named_parameters()}


def worker(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    results = {}
    for name, kwargs in VARIANTS.items():
        model = nn.parallel.DistributedDataParallel(build())
        results[name] = loss_and_grads(model, *local_batch(rank), **kwargs)
    torch.save(results, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    out_dir = sys.argv[1]
    mp.spawn(worker, args=(f"{out_dir}/store", out_dir), nprocs=WORLD)
