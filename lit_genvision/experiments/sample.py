"""``lit-genvision sample``: images from a checkpoint, as a PNG grid, a .npz array, or an
interpolation row between two seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor

from lit_genvision.callbacks.images import save_images, upscale_for_view
from lit_genvision.checks import check_float, check_int, check_writable
from lit_genvision.data.base import to_uint8
from lit_genvision.experiments.checkpoints import load_model
from lit_genvision.experiments.conditions import condition_from_arguments
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.metrics.generation import batch_generator, generate_batches  # noqa: F401  (the seed rule)


def check_sampling_arguments(args: argparse.Namespace) -> None:
    """Refuse invalid values of the options shared by sample and evaluate, before any model is loaded."""
    if args.steps is not None:
        check_int("--steps", args.steps, low=1, hint="omit it to use the checkpoint's sampler steps")
    if getattr(args, "eta", None) is not None:
        check_float("--eta", args.eta, low=0, hint="pass 0 for deterministic DDIM or 1 for DDPM-like noise")
    for name in ("rtol", "atol"):
        if getattr(args, name, None) is not None:
            check_float(f"--{name}", getattr(args, name), low=0, low_open=True, hint="pass a tolerance such as 1e-3")
    if getattr(args, "guidance", None) is not None:
        check_float("--guidance", args.guidance, hint="pass e.g. 0 (unconditional), 1 (conditional) or 3 (guided)")
    if getattr(args, "temperature", None) is not None:
        check_float("--temperature", args.temperature, low=0, low_open=True, hint="pass 1 to sample as trained")
    if getattr(args, "top_k", None) is not None:
        check_int("--top-k", args.top_k, low=1, hint="omit it to sample from every code")
    if getattr(args, "truncation", None) is not None:
        check_float("--truncation", args.truncation, low=0, hint="pass ψ in (0, 1], e.g. 0.7; 1 turns it off")
    check_int("--batch-size", args.batch_size, low=1, hint="pass the number of images generated at once")


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
    """``configure_sampling`` with the options ``add_sampling_arguments`` defined (the argparse edge)."""
    return configure_sampling(
        model,
        sampler=args.sampler,
        guidance=getattr(args, "guidance", None),
        eta=args.eta,
        rtol=args.rtol,
        atol=args.atol,
        temperature=getattr(args, "temperature", None),
        top_k=getattr(args, "top_k", None),
        truncation=getattr(args, "truncation", None),
    )


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by sample and evaluate."""
    p.add_argument(
        "--sampler",
        default=None,
        help="override the model's sampler: ddpm | ddim (diffusion); euler | midpoint | heun | rk4 | dopri5 (flow)",
    )
    p.add_argument("--steps", type=int, default=None, help="sampler steps")
    p.add_argument("--eta", type=float, default=None, help="DDIM η (0: deterministic); given alone it selects DDIM")
    p.add_argument("--rtol", type=float, default=None, help="dopri5 relative tolerance (1e-3); selects dopri5")
    p.add_argument("--atol", type=float, default=None, help="dopri5 absolute tolerance (1e-3); selects dopri5")
    p.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="classifier-free guidance scale s (0 unconditional, 1 conditional, >1 guided)",
    )
    p.add_argument("--temperature", type=float, default=None, help="softmax temperature of a token prior")
    p.add_argument("--top-k", type=int, default=None, help="sample a token prior's codes from the k most likely")
    p.add_argument(
        "--truncation", type=float, default=None, metavar="PSI", help="a StyleGAN's truncation ψ (1: none; 0.7 typical)"
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
    p.add_argument(
        "--prompt",
        action="append",
        default=None,
        metavar="TEXT",
        help="prompt of a text-conditioned model; repeat it to cycle prompts over the samples",
    )
    p.add_argument(
        "--layout", default=None, metavar="JSON", help='boxes [{"box": [x0, y0, x1, y1], "label": k}] in pixels'
    )
    p.add_argument("--semantic-map", default=None, metavar="PNG", help="single-channel PNG of class indices")


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
    options = sampling_from_arguments(model, args)
    labels = parse_labels(
        getattr(args, "label", None), args.interpolate or args.num, getattr(model, "label_count", model.num_classes)
    )
    cond = condition_from_arguments(
        model, args.interpolate or args.num, getattr(args, "prompt", None), getattr(args, "layout", None),
        getattr(args, "semantic_map", None),
    )  # fmt: skip
    with progress_bar() as progress:
        if args.interpolate:
            shape = (1, *model.sample_shape)  # pixels, latents, or z of a GAN or VAE
            a = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed))
            b = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed + 1))
            task = progress.add_task("interpolating", total=1)
            given = {k: v.to(model.device) if isinstance(v, Tensor) else v for k, v in (cond or {}).items()}
            if labels is not None:
                given["label"] = labels.to(model.device)
            cond = model.sample_cond(args.interpolate, given or None)
            images = model.interpolate(a, b, args.interpolate, cond=cond, steps=args.steps, options=options).cpu()
            labels = cond["label"].cpu() if cond and "label" in cond else None
            progress.advance(task)
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
    out = Path(args.out)
    if out.suffix == ".npz":
        save_npz(images, labels, out)
    else:
        save_images(upscale_for_view(images), out, nrow=nrow)
    print(f"Wrote {len(images)} images to {out}")
    return out
