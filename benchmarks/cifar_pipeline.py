"""CIFAR-10 input pipeline: images/s of CIFAR10DataModule (uint8 in memory, one gather per batch,
batched flip/crop on the device) against torchvision.datasets.CIFAR10 + DataLoader with the same
augmentation (RandomCrop(32, padding=4, reflect) + RandomHorizontalFlip + ToTensor + Normalize),
on the same files, measured side by side. Real CIFAR-10 cannot be downloaded here, so the script
writes a full-size (50,000 + 10,000 images) copy in the official python-batch format first.

    python benchmarks/cifar_pipeline.py [--root /tmp/cifar-bench] [--batch 512] [--workers 0 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import save  # noqa: E402
from fixtures.formats import write_cifar_python  # noqa: E402

from lit_genvision.data import CIFAR10DataModule  # noqa: E402


def epoch_rate(loader, transform=None, limit: int | None = None) -> float:
    n, t0 = 0, time.perf_counter()
    for i, batch in enumerate(loader):
        if transform is not None:
            batch = transform(batch)
        n += len(batch["image"] if isinstance(batch, dict) else batch[0])
        if limit and i + 1 >= limit:
            break
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--root", type=Path, default=Path("/tmp/cifar-bench"))
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--workers", type=int, nargs="*", default=[0, 2])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if not (args.root / "cifar-10-batches-py" / "test_batch").is_file():
        shutil.rmtree(args.root, ignore_errors=True)
        write_cifar_python(args.root, per_batch=10_000)

    import torchvision
    import torchvision.transforms as T

    dm = CIFAR10DataModule(
        root=str(args.root), batch_size=args.batch, val_size=0, pin_memory=False, augment_crop=4, augment_flip=True
    )
    dm.setup()

    ours = [
        epoch_rate(dm.train_dataloader(), lambda b: dm.device_transform(b, training=True)) for _ in range(args.repeats)
    ]
    rows = [
        {
            "pipeline": "CIFAR10DataModule (uint8 in memory, batched flip/crop)",
            "workers": 0,
            "images_per_s": statistics.median(ours),
            "runs": ours,
        }
    ]
    tf = T.Compose(
        [
            T.RandomCrop(32, padding=4, padding_mode="reflect"),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize((0.5,) * 3, (0.5,) * 3),
        ]
    )

    import torchvision.datasets.cifar as tv_cifar

    tv_cifar.check_integrity = lambda *a, **k: True  # the generated copy has the real format, not the real MD5s
    ds = torchvision.datasets.CIFAR10(str(args.root), train=True, transform=tf, download=False)
    for w in args.workers:
        loader = torch.utils.data.DataLoader(
            ds, batch_size=args.batch, shuffle=True, num_workers=w, persistent_workers=w > 0
        )
        runs = [epoch_rate(loader) for _ in range(args.repeats)]
        rows.append(
            {
                "pipeline": "torchvision CIFAR10 + DataLoader + transforms",
                "workers": w,
                "images_per_s": statistics.median(runs),
                "runs": runs,
            }
        )
    best_tv = max(r["images_per_s"] for r in rows[1:])
    for r in rows:
        print(f"{r['pipeline']:58s} workers {r['workers']}  {r['images_per_s']:10.0f} img/s")
    print(f"speed-up over the best torchvision setting: {rows[0]['images_per_s'] / best_tv:.1f}×")
    save(
        "cifar_pipeline",
        {"batch": args.batch, "rows": rows, "speedup_vs_best_torchvision": rows[0]["images_per_s"] / best_tv},
    )


if __name__ == "__main__":
    main()
