"""Training throughput (images/s) of model configs on this machine: one optimizer step of the
config's model on random data of its shape, median over repeats.

    python benchmarks/train_throughput.py [--configs configs/diffusion/digits.yaml ...] [--batch 32]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_time, save  # noqa: E402

from lit_genvision.cli import GenVisionCLI  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = [
    "configs/diffusion/digits.yaml",
    "configs/diffusion/cifar10.yaml",
    "configs/classifier/digits.yaml",
    "configs/classifier/cifar10.yaml",
]


def step_fn(config: str, batch: int | None):
    cli = GenVisionCLI(args=["--config", str(ROOT / config), "--trainer.logger", "false"], run=False)
    model, dm = cli.model, cli.datamodule
    b = batch or dm.batch_size
    shape = getattr(dm, "image_shape", (3, 32, 32))
    images = torch.rand(b, *shape) * 2 - 1
    batch_dict = {"image": images, "label": torch.randint(0, 10, (b,))}
    model.log = lambda *a, **k: None  # no trainer attached
    model.log_dict = lambda *a, **k: None
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss = model.training_step(batch_dict, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    params = sum(p.numel() for p in model.parameters())
    return step, b, params


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--configs", nargs="*", default=DEFAULT)
    p.add_argument("--batch", type=int, default=None, help="override the config's batch size")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    rows = []
    for config in args.configs:
        batch = args.batch
        if batch is None and "cifar10" in config:
            batch = 32  # the configs' GPU batch sizes take minutes per step on a CPU
        step, b, params = step_fn(config, batch)
        med, times = median_time(step, repeats=args.repeats)
        rows.append(
            {
                "config": config,
                "batch": b,
                "params": params,
                "median_step_s": med,
                "images_per_s": b / med,
                "step_times_s": times,
            }
        )
        print(
            f"{config:38s} batch {b:4d}  params {params / 1e6:6.2f}M  {med * 1000:8.1f} ms/step  {b / med:8.1f} img/s"
        )
    save("train_throughput", {"rows": rows})


if __name__ == "__main__":
    main()
