"""``lit-genvision sample``: images (or videos) from a checkpoint, as a PNG grid, a .npz array, or an
interpolation row between two seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress
from torch import Tensor

from lit_genvision.callbacks.images import npz_array, save_images, upscale_for_view
from lit_genvision.checks import check_float, check_writable
from lit_genvision.experiments.arguments import (  # noqa: F401  (shared flags, re-exported for older imports)
    BATCH_SIZE,
    add_deprecated_alias,
    add_sampling_arguments,
    check_sampling_arguments,
    progress_bar,
    resolve_device,
)
from lit_genvision.experiments.checkpoints import load_model, run_classes
from lit_genvision.experiments.conditions import condition_from_arguments, given_prompts, model_classes
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.metrics.generation import batch_generator, generate_batches  # noqa: F401  (the seed rule)

#: The command-line sampling options and the families they apply to (for the one-sentence refusal).
OPTION_OWNERS = {
    "sampler": "a diffusion or flow-matching model",
    "eta": "a diffusion model (DDIM's η)",
    "rtol": "a flow-matching model (dopri5)",
    "atol": "a flow-matching model (dopri5)",
    "temperature": "a token prior (an autoregressive model)",
    "top_k": "a token prior (an autoregressive model)",
    "truncation": "a StyleGAN (truncation around its mean w)",
}


def configure_sampling(
    model,
    *,
    sampler: str | None = None,
    guidance: float | None = None,
    eta: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
    truncation: float | None = None,
) -> SampleOptions:
    """The ``SampleOptions`` of the command line's sampling flags for ``model`` (a flag left out: the model's own
    setting), after refusing in one sentence, naming the flag, each that the model's family does not take.
    Nothing is set on the model."""
    given = {
        "sampler": sampler, "eta": eta, "rtol": rtol, "atol": atol,
        "temperature": temperature, "top_k": top_k, "truncation": truncation,
    }  # fmt: skip
    for name, value in given.items():
        if value is not None and name not in model.accepts:
            flag = "--" + name.replace("_", "-")
            raise ValueError(
                f"{flag} applies to {OPTION_OWNERS[name]}, and this checkpoint holds a "
                f"{type(model).__name__} ({model.family} family); omit {flag}."
            )
    if guidance is not None:
        check_float("--guidance", guidance, hint="pass e.g. 0 (unconditional), 1 (conditional) or 3 (guided)")
        if not model.conditioning:
            raise ValueError(
                "--guidance needs a conditional model (labels, text, a layout …); this checkpoint's network takes "
                "no condition."
            )
    options = SampleOptions(guidance=guidance, **given)
    model.sampling_protocol(None, options)  # an unknown sampler name is refused here, before any work
    return options


def sampling_from_arguments(model, args: argparse.Namespace) -> SampleOptions:
    """``configure_sampling`` with the sampling flags ``args`` has (a command may take only some of them)."""
    return configure_sampling(model, **{name: getattr(args, name, None) for name in OPTION_OWNERS | {"guidance": ""}})


def parse_labels(text: str | None, num: int, num_classes: int | None) -> Tensor | None:
    """The labels of ``--label``: one class K for every sample, or a comma list with one per sample
    (None when ``text`` is None: the model's balanced labels i mod K)."""
    if text is None:
        return None
    if not num_classes:
        raise ValueError(
            "--label needs a class-conditional model (labels, or a prompt per class); this checkpoint has neither."
        )
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


def generate(
    model,
    num: int,
    *,
    batch_size: int,
    steps: int | None,
    options: SampleOptions | None,
    seed: int,
    labels: Tensor | None = None,
    cond: dict | None = None,
    progress: Progress | None = None,
) -> tuple[Tensor, Tensor | None]:
    """``num`` samples and their labels (None for an unconditional model), by the seed rule of
    ``generate_batches``: the same seed gives the same images as ``evaluate`` draws."""
    task = progress.add_task("sampling", total=num) if progress else None
    images, conds = [], []
    for _, x, y, _ in generate_batches(
        model, num, batch_size=batch_size, seed=seed, steps=steps, options=options, labels=labels, cond=cond
    ):
        images.append(x)
        conds.append(y)
        if progress:
            progress.advance(task, len(x))
    return torch.cat(images), None if conds[0] is None else torch.cat(conds)


def save_npz(images: Tensor, labels: Tensor | None, path: Path) -> None:
    """``arr_0``: uint8 N×H×W×C for images (N, C, H, W), as ``save_images`` writes them, or N×T×H×W×C for
    videos (N, C, T, H, W); plus ``labels`` (N,) int64, the class each sample was generated for, when the model
    is class-conditional."""
    if images.ndim not in (4, 5):
        raise ValueError(f"samples must be images (N, C, H, W) or videos (N, C, T, H, W), got {tuple(images.shape)}.")
    arrays = {"arr_0": npz_array(images)}
    if labels is not None:
        arrays["labels"] = labels.numpy().astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="checkpoint written by `lit-genvision fit` (a path or a URL)")
    p.add_argument("--num", type=int, default=64, help="number of images (or videos)")
    add_deprecated_alias(p, "--num-samples", "--num", "num", type=int)
    add_sampling_arguments(p)
    p.add_argument(
        "--out",
        default="samples.png",
        help=".png grid (a video: a row of its frames), .gif (videos playing side by side) or .npz (uint8 arr_0, "
        "N×H×W×C, or N×T×H×W×C for video, and labels (N,) for a class-conditional model)",
    )
    p.add_argument(
        "--interpolate",
        type=int,
        default=0,
        metavar="K",
        help="write a row of K images between the noise of --seed and --seed+1",
    )
    p.add_argument(
        "--layout",
        default=None,
        metavar="JSON",
        help='boxes [{"box": [x0, y0, x1, y1], "label": L}] in pixels; L names the class as the data does (digit '
        'scenes: 3, "3" or "three"; Open Images: "Dog" or its LabelName "/m/0bt9lr")',
    )
    p.add_argument(
        "--semantic-map",
        default=None,
        metavar="PNG",
        help="single-channel PNG of the image's size whose pixel values are class indices as the data module numbers "
        "them (digit scenes: 0 background, d + 1 for digit d)",
    )


def run(args: argparse.Namespace) -> Path:
    """Sample as ``args`` say and write the images (or videos) to ``--out``."""
    # Every argument, and the output path, is checked before the model is loaded or anything sampled.
    if args.num < 1:
        raise ValueError(f"--num must be at least 1, got {args.num}.")
    if args.interpolate and args.interpolate < 2:
        raise ValueError(f"--interpolate needs at least 2 images, got {args.interpolate}.")
    check_sampling_arguments(args)
    out = Path(args.out)
    if out.suffix.lower() not in {".png", ".jpg", ".jpeg", ".gif", ".npz"}:
        raise ValueError(f"--out must end in .png, .jpg, .gif or .npz, got {out.name!r}.")
    check_writable(out, "--out")
    prompts = given_prompts(args.prompt, args.prompt_file)
    device = resolve_device(args.device)
    model = load_model(args.ckpt, use_ema=not args.no_ema, generative=True).to(device)
    if len(model.image_shape) != 4 and out.suffix.lower() == ".gif":
        raise ValueError(f"--out {out.name}: a .gif shows videos and this {model.family} model draws images; use .png.")
    options = sampling_from_arguments(model, args)
    num = args.interpolate or args.num
    labels = parse_labels(args.label, num, getattr(model, "label_count", model.num_classes))
    classes = None
    if args.layout is not None and "box_labels" in model.conditioning.batch_keys:
        classes = model_classes(*(run_classes(args.ckpt) or (None, None)), model)
    flag = "--prompt-file" if args.prompt_file else "--prompt"
    cond = condition_from_arguments(model, num, prompts, args.layout, args.semantic_map, classes, flag)
    with progress_bar() as progress:
        if args.interpolate:
            images, labels = _interpolation(model, args, options, labels, cond, progress)
            nrow = args.interpolate
        else:
            images, labels = generate(
                model,
                args.num,
                batch_size=args.batch_size,
                steps=args.steps,
                options=options,
                seed=args.seed,
                labels=labels,
                cond=cond,
                progress=progress,
            )
            nrow = None
    if out.suffix == ".npz":
        save_npz(images, labels, out)
    else:
        save_images(upscale_for_view(images), out, nrow=nrow)
    print(f"Wrote {len(images)} {'videos' if images.ndim == 5 else 'images'} to {out}")
    return out


def _interpolation(
    model, args: argparse.Namespace, options: SampleOptions, labels: Tensor | None, cond: dict | None, progress
) -> tuple[Tensor, Tensor | None]:
    """The row of ``--interpolate`` K images between the noise of ``--seed`` and ``--seed + 1``, and their labels."""
    shape = (1, *model.sample_shape)  # pixels, latents, or z of a GAN or VAE
    a = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed))
    b = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed + 1))
    task = progress.add_task("interpolating", total=1)
    given = {k: v.to(model.device) if isinstance(v, Tensor) else v for k, v in (cond or {}).items()}
    if labels is not None:
        given["label"] = labels.to(model.device)
    cond = model.sample_cond(args.interpolate, given or None)
    images = model.interpolate(a, b, args.interpolate, cond=cond, steps=args.steps, options=options).cpu()
    progress.advance(task)
    return images, cond["label"].cpu() if cond and "label" in cond else None
