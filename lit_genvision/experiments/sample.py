"""``lit-genvision sample``: images from a checkpoint, as a PNG grid, a .npz array, or an
interpolation row between two seeds."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor

from lit_genvision.callbacks.images import save_images, upscale_for_view
from lit_genvision.checks import check_float, check_int, check_writable
from lit_genvision.data.base import to_uint8
from lit_genvision.experiments.checkpoints import load_model
from lit_genvision.methods.interpolation import interpolate_noise


def check_sampling_arguments(args: argparse.Namespace) -> None:
    """Refuse invalid values of the options shared by sample and evaluate, before any model is loaded."""
    if args.steps is not None:
        check_int("--steps", args.steps, low=1, hint="omit it to use the checkpoint's sampler steps")
    check_float("--eta", args.eta, low=0, hint="pass 0 for deterministic DDIM or 1 for DDPM-like noise")
    check_float("--rtol", args.rtol, low=0, low_open=True, hint="pass a tolerance such as 1e-3")
    check_float("--atol", args.atol, low=0, low_open=True, hint="pass a tolerance such as 1e-3")
    if getattr(args, "guidance", None) is not None:
        check_float("--guidance", args.guidance, hint="pass e.g. 0 (unconditional), 1 (conditional) or 3 (guided)")
    check_int("--batch-size", args.batch_size, low=1, hint="pass the number of images generated at once")


def configure_sampling(model, args: argparse.Namespace):
    """Apply --guidance to the model and build the sampler named by --sampler (None: the model's own)."""
    if getattr(args, "guidance", None) is not None:
        check_float("--guidance", args.guidance, hint="pass e.g. 0 (unconditional), 1 (conditional) or 3 (guided)")
        if not model.num_classes:
            raise ValueError(
                "--guidance needs a class-conditional model; this checkpoint's network has no num_classes."
            )
        model.guidance_scale = args.guidance
    return model.make_sampler(args.sampler, eta=args.eta, rtol=args.rtol, atol=args.atol)


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by sample and evaluate."""
    p.add_argument(
        "--sampler",
        default=None,
        help="override the model's sampler: ddpm | ddim (diffusion); euler | midpoint | heun | rk4 | dopri5 (flow)",
    )
    p.add_argument("--steps", type=int, default=None, help="sampler steps")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM η (0: deterministic)")
    p.add_argument("--rtol", type=float, default=1e-3, help="dopri5 relative tolerance")
    p.add_argument("--atol", type=float, default=1e-3, help="dopri5 absolute tolerance")
    p.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="classifier-free guidance scale s (0 unconditional, 1 conditional, >1 guided)",
    )
    p.add_argument("--seed", type=int, default=0, help="batch b is drawn with a generator seeded from (seed, b)")
    p.add_argument(
        "--label",
        default=None,
        metavar="K[,K...]",
        help="class of a class-conditional model: one for every sample, or a comma list with one per sample "
        "(default: balanced labels, sample i gets i mod the number of classes)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is visible; use --device cpu.")
    return torch.device(name)


def batch_generator(seed: int, batch: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of batch ``batch`` of a run with seed ``seed``: the one seed rule of ``sample``
    and ``evaluate``. Each batch has its own generator, seeded from (seed, batch), so a batch's
    images do not depend on which process draws it or on the batches drawn before it."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + batch)


def parse_labels(text: str | None, num: int, num_classes: int | None) -> Tensor | None:
    """The labels of ``--label``: one class K for every sample, or a comma list with one per sample
    (None when ``text`` is None: the model's balanced labels i mod K)."""
    if text is None:
        return None
    if not num_classes:
        raise ValueError("--label needs a class-conditional model; this checkpoint's network has no num_classes.")
    try:
        labels = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--label must be a class index or a comma list of class indices, got {text!r}.") from None
    bad = [k for k in labels if not 0 <= k < num_classes]
    if bad:
        raise ValueError(f"--label must be between 0 and {num_classes - 1} for this model, got {bad[0]}.")
    if len(labels) == 1:
        labels = labels * num
    elif len(labels) != num:
        raise ValueError(f"--label lists {len(labels)} labels but {num} samples are asked for; give one or {num}.")
    return torch.tensor(labels, dtype=torch.long)


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


def generate(
    model,
    num: int,
    *,
    batch_size: int,
    steps: int | None,
    sampler: object | None,
    seed: int,
    labels: Tensor | None = None,
    progress: Progress | None = None,
) -> tuple[Tensor, Tensor | None]:
    """``num`` samples and their labels (None for an unconditional model), by the seed rule of
    ``generate_batches``: the same seed gives the same images as ``evaluate`` draws."""
    task = progress.add_task("sampling", total=num) if progress else None
    images, conds = [], []
    for _, x, y in generate_batches(
        model, num, batch_size=batch_size, seed=seed, steps=steps, sampler=sampler, labels=labels
    ):
        images.append(x)
        conds.append(y)
        if progress:
            progress.advance(task, len(x))
    return torch.cat(images), None if conds[0] is None else torch.cat(conds)


def save_npz(images: Tensor, labels: Tensor | None, path: Path) -> None:
    """``arr_0``: uint8 (N, H, W, C) as ``save_images`` writes it, plus ``labels`` (N,) int64, the
    class each sample was generated for, when the model is class-conditional."""
    arrays = {"arr_0": to_uint8(images).permute(0, 2, 3, 1).numpy()}
    if labels is not None:
        arrays["labels"] = labels.numpy().astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="checkpoint written by `lit-genvision fit`")
    p.add_argument("--num", type=int, default=64, help="number of images")
    add_sampling_arguments(p)
    p.add_argument(
        "--out",
        default="samples.png",
        help=".png grid or .npz (uint8 arr_0, N×H×W×C, and labels (N,) for a class-conditional model)",
    )
    p.add_argument(
        "--interpolate",
        type=int,
        default=0,
        metavar="K",
        help="write a row of K images between the noise of --seed and --seed+1",
    )
    p.add_argument("--batch-size", type=int, default=256)


def run(args: argparse.Namespace) -> Path:
    # Every argument, and the output path, is checked before the model is loaded or anything sampled.
    if args.num < 1:
        raise ValueError(f"--num must be at least 1, got {args.num}.")
    if args.interpolate and args.interpolate < 2:
        raise ValueError(f"--interpolate needs at least 2 images, got {args.interpolate}.")
    check_sampling_arguments(args)
    if Path(args.out).suffix.lower() not in {".png", ".jpg", ".jpeg", ".npz"}:
        raise ValueError(f"--out must end in .png, .jpg or .npz, got {Path(args.out).name!r}.")
    check_writable(args.out, "--out")
    device = resolve_device(args.device)
    model = load_model(args.ckpt, use_ema=not args.no_ema, generative=True).to(device)
    sampler = configure_sampling(model, args)
    labels = parse_labels(getattr(args, "label", None), args.interpolate or args.num, model.num_classes)
    with progress_bar() as progress:
        if args.interpolate:
            shape = (1, *model.image_shape)
            a = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed))
            b = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed + 1))
            noise = interpolate_noise(a, b, args.interpolate).to(model.device)
            # Interpolation needs a deterministic map from noise to image (DDIM η = 0, or any ODE solver).
            task = progress.add_task("interpolating", total=1)
            given = {"label": labels.to(model.device)} if labels is not None else None
            cond = model.sample_cond(args.interpolate, given)
            # None for a family whose only map from noise to image is deterministic (GAN, VAE).
            deterministic = sampler or model.deterministic_sampler()
            images = model.sample(
                args.interpolate, cond=cond, steps=args.steps, noise=noise, sampler=deterministic
            ).cpu()
            labels = cond["label"].cpu() if cond else None
            progress.advance(task)
            nrow = args.interpolate
        else:
            images, labels = generate(
                model,
                args.num,
                batch_size=args.batch_size,
                steps=args.steps,
                sampler=sampler,
                seed=args.seed,
                labels=labels,
                progress=progress,
            )
            nrow = None
    out = Path(args.out)
    if out.suffix == ".npz":
        save_npz(images, labels, out)
    else:
        save_images(upscale_for_view(images), out, nrow=nrow)
    print(f"Wrote {len(images)} images to {out}")
    return out
