"""``lit-genvision clip …``: what a trained CLIP checkpoint can do without further training.

zero-shot   classify a split from class prompts alone, and measure image↔text retrieval on its captions
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lit_genvision.checks import check_writable
from lit_genvision.data.captions import DIGIT_WORDS
from lit_genvision.experiments.arguments import add_deprecated_alias, add_shared_arguments, progress_bar, resolve_device
from lit_genvision.experiments.checkpoints import CheckpointError, load_model, run_datamodule
from lit_genvision.methods.contrastive import retrieval_recall, zero_shot_logits
from lit_genvision.models.clip import CLIPModel


def load_clip(ckpt: str, device: str = "auto") -> CLIPModel:
    """The CLIP model of ``ckpt`` in eval mode on ``device``; a one-sentence error for another family."""
    model = load_model(ckpt)
    if not isinstance(model, CLIPModel):
        raise CheckpointError(
            f"checkpoint {ckpt} holds a {type(model).__name__} ({model.family} family); pass a CLIP checkpoint "
            "(lit-genvision fit --config configs/clip/digits.yaml)."
        )
    return model.to(resolve_device(device))


@torch.no_grad()
def split_features(model: CLIPModel, datamodule, split: str) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Unit-norm image embeddings (N, E), caption embeddings (N, E) when the split has captions, and
    labels (N,) when it has labels, in the split's order."""
    datamodule.setup("fit")
    data = datamodule.split(split)
    loader = datamodule.make_loader(data, shuffle=False)
    images, texts, labels = [], [], []
    with progress_bar() as progress:
        task = progress.add_task(f"embedding the {split} split", total=len(data) if hasattr(data, "__len__") else None)
        for batch in loader:
            batch = datamodule.device_transform(batch, training=False)
            images.append(model.net.encode_image(batch["image"].to(model.device)).cpu())
            if "text" in batch:
                texts.append(model.net.encode_text(list(batch["text"])).cpu())
            if "label" in batch:
                labels.append(batch["label"].cpu())
            progress.advance(task, len(batch["image"]))
    return torch.cat(images), torch.cat(texts) if texts else None, torch.cat(labels) if labels else None


def class_prompts(templates: list[str], classes: list[str]) -> list[list[str]]:
    """Per class, each template with ``{}`` (or ``{word}``) replaced by the class name."""
    for t in templates:
        if "{}" not in t and "{word}" not in t:
            raise ValueError(f'prompt {t!r} has no {{}} for the class name; write e.g. "a handwritten {{}}".')
    return [[t.replace("{word}", "{}").format(c) for t in templates] for c in classes]


def zero_shot(args: argparse.Namespace) -> dict[str, Any]:
    """Zero-shot top-1 from class prompts alone (no training on the labels), and retrieval R@1/R@5."""
    if args.json:
        check_writable(args.json, "--json")
    model = load_clip(args.ckpt, args.device)
    datamodule = run_datamodule(args.ckpt)
    image, text, labels = split_features(model, datamodule, args.split)
    result: dict[str, Any] = {"checkpoint": args.ckpt, "split": args.split, "images": len(image)}
    if labels is not None:
        if args.template:
            classes = args.classes or list(DIGIT_WORDS)
            prompts = class_prompts(args.template, classes)
            result["prompts"] = args.template
        elif hasattr(datamodule, "zero_shot_prompts"):
            prompts = datamodule.zero_shot_prompts(args.split)  # the split's own (held-out) templates
            result["prompts"] = f"the {args.split} split's label templates ({len(prompts[0])} per class)"
        else:
            raise ValueError('this data module has no prompt templates; pass --template "a photo of a {}".')
        classes_emb = model.class_embeddings(prompts).cpu()
        predicted = zero_shot_logits(image, classes_emb).argmax(1)
        result["zero_shot_top1"] = (predicted == labels).double().mean().item()
        result["per_class_top1"] = [
            (predicted[labels == k] == k).double().mean().item() for k in range(len(prompts)) if (labels == k).any()
        ]
    if text is not None:
        result |= retrieval_recall(image, text)
    for key, value in result.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        if key == "per_class_top1":
            shown = " ".join(f"{v:.2f}" for v in value)
        print(f"{key:>16}: {shown}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


COMMANDS = {"zero-shot": zero_shot}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("zero-shot", help=zero_shot.__doc__)
    s.add_argument("--ckpt", required=True, help="CLIP checkpoint")
    s.add_argument("--split", default="test", help="the split to classify and retrieve on")
    s.add_argument(
        "--template",
        action="append",
        default=None,
        metavar="TEXT",
        help="a class prompt template with {} for the class name; repeat it to average templates per class "
        "(default: the split's own held-out templates)",
    )
    add_deprecated_alias(s, "--prompts", "--template", "template", nargs="+")
    s.add_argument("--classes", nargs="+", default=None, help="class names (default: zero … nine)")
    add_shared_arguments(s, ("device",))
    s.add_argument("--json", default=None, help="also write the figures to this JSON file")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the ``clip`` subcommand ``args`` name."""
    return COMMANDS[args.command](args)
