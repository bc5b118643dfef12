"""``lit-genvision caption``: re-caption a dataset with a trained captioner (the lecture's Sora section).

Writes a parquet file of (``key``, ``text``) that the data modules read back with ``captions=FILE``:
``DigitsDataModule`` keys its digits by their index in scikit-learn's order (``id``), LAION by the
sample's ``key``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import yaml
from lightning.pytorch.cli import instantiate_module

from lit_genvision.checks import check_writable
from lit_genvision.data.base import ImageDataModule
from lit_genvision.data.captions import caption_digit, write_captions
from lit_genvision.experiments.arguments import add_shared_arguments, progress_bar, resolve_device
from lit_genvision.experiments.checkpoints import CheckpointError, load_model, run_datamodule
from lit_genvision.models.captioner import CaptionerModel
from lit_genvision.models.pretrained import check_class_paths


def data_module(spec: str | None, ckpt: str) -> ImageDataModule:
    """The data to caption: the captioner's own run's data module, or the ``data:`` section of a YAML config."""
    if not spec:
        return run_datamodule(ckpt)
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"--data {spec} is not a file; pass a YAML config with a data: section.")
    data = (yaml.safe_load(path.read_text()) or {}).get("data")
    if not isinstance(data, dict) or "class_path" not in data:
        raise ValueError(
            f"{spec} has no data: section with a class_path; pass a config such as configs/clip/digits.yaml."
        )
    check_class_paths({"class_path": data["class_path"], "init_args": data.get("init_args")}, f"the data of {spec}")
    return instantiate_module(ImageDataModule, {"_class_path": data["class_path"], **(data.get("init_args") or {})})


def sample_keys(batch: dict[str, Any]) -> list[str]:
    """The keys a caption file is read back by: a digit's ``id``, a LAION sample's ``key``."""
    if "id" in batch:
        return [str(int(i)) for i in batch["id"]]
    if "key" in batch:
        return [str(k) for k in batch["key"]]
    raise ValueError(
        "the data module's batches carry neither id nor key; caption a data module that names its samples."
    )


@torch.no_grad()
def run(args: argparse.Namespace) -> Path:
    """Caption ``--splits`` of the data with the captioner of ``--ckpt`` and write (key, text) to ``--out``."""
    check_writable(args.out, "--out")
    model = load_model(args.ckpt, use_ema=not args.no_ema)
    if not isinstance(model, CaptionerModel):
        raise CheckpointError(
            f"checkpoint {args.ckpt} holds a {type(model).__name__}; pass a captioner checkpoint "
            "(lit-genvision fit --config configs/captioner/digits.yaml)."
        )
    model = model.to(resolve_device(args.device))
    datamodule = data_module(args.data, args.ckpt)
    datamodule.setup("fit")
    keys: list[str] = []
    texts: list[str] = []
    named = right = 0
    splits = {split: datamodule.split(split) for split in args.splits}
    with progress_bar() as progress:
        sized = all(hasattr(data, "__len__") for data in splits.values())  # a LAION stream has no length
        task = progress.add_task("captioning", total=sum(len(d) for d in splits.values()) if sized else None)
        for data in splits.values():
            for batch in datamodule.make_loader(data, shuffle=False):
                batch = datamodule.device_transform(batch, training=False)
                captions = model.caption(batch["image"], beam_width=args.beam)
                keys += sample_keys(batch)
                texts += captions
                if "label" in batch:
                    digits = [caption_digit(c) for c in captions]
                    right += sum(int(d == int(k)) for d, k in zip(digits, batch["label"], strict=True))
                    named += len(digits)
                progress.advance(task, len(captions))
    out = write_captions(args.out, keys, texts)
    print(f"wrote {len(texts)} captions to {out}")
    for key, text in list(zip(keys, texts, strict=True))[:5]:
        print(f"  {key}: {text}")
    if named:
        print(f"captions naming the labelled digit: {right / named:.4f} ({right}/{named})")
    return Path(out)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="captioner checkpoint")
    p.add_argument(
        "--data", default=None, help="a YAML config whose data: section to caption (default: the captioner's)"
    )
    p.add_argument("--splits", nargs="+", default=["train", "val", "test"], help="splits to caption")
    p.add_argument("--out", required=True, help="the parquet file to write (key, text)")
    p.add_argument("--beam", type=int, default=None, help="beam width (default: the model's; 1 is greedy)")
    add_shared_arguments(p, ("device", "no_ema"))
