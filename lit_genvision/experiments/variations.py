"""``lit-genvision variations``: what DALL-E 2's image embedding gives for free (unCLIP, Ramesh et al. 2022, §3), on a
pipeline checkpoint (``lit-genvision compose unclip``):

    lit-genvision variations --ckpt PIPE.ckpt --images in.npz --num 4 --out variations.npz   # §3.1, η = 1
    lit-genvision variations --ckpt PIPE.ckpt --images a.npz --interpolate b.npz --num 8 --out row.png   # §3.2
    lit-genvision variations --ckpt PIPE.ckpt --images a.npz --text-diff "a 1" "a 7" --out diff.png       # §3.3

Variations: each image's CLIP embedding e, the DDIM inversion x_T of the image under e, then ``--num`` draws of DDIM
with ``--eta`` from x_T under e (η = 0 and ``--guidance 1`` give the image back). Interpolation: the first image of
``--images`` to the first of ``--interpolate`` by slerp in CLIP space, one x_T for the row. Text diffs: the first
image moved toward the second text from the first, θ = 0 … ``--max-theta`` (0.5 keeps the image's look).
Inputs are ``.npz`` with ``arr_0`` uint8 N×H×W×C; the output is ``.npz`` (uint8 N×H×W×C, image-major) or a PNG
grid (one row per input image; the row of the interpolation or the diff).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from lit_genvision.callbacks.images import save_images, upscale_for_view
from lit_genvision.checks import check_writable
from lit_genvision.data.base import to_uint8, to_unit_range
from lit_genvision.experiments.arguments import add_shared_arguments, resolve_device
from lit_genvision.experiments.checkpoints import load_model
from lit_genvision.experiments.npz import read_images
from lit_genvision.metrics.generation import batch_generator
from lit_genvision.models.unclip import UnCLIPModel

#: The shared flags it takes; --eta is DDIM's η of the variations (1 when not given; 0 with --guidance 1 reconstructs).
FLAGS = ("steps", "eta", "guidance", "seed", "device")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="an unclip pipeline checkpoint (lit-genvision compose unclip)")
    p.add_argument("--images", required=True, help=".npz with arr_0 uint8 N×H×W×C")
    p.add_argument("--out", required=True, help=".npz (uint8 N×H×W×C) or .png grid to write")
    p.add_argument("--num", type=int, default=4, help="variations per image, or images along the interpolation")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--interpolate", metavar="B.npz", help="interpolate from the first image to this file's first")
    how.add_argument("--text-diff", nargs=2, metavar=("FROM", "TO"), help="move the first image from text FROM to TO")
    p.add_argument("--max-theta", type=float, default=0.5, help="the text diff's largest slerp weight θ (≤ 0.5)")
    add_shared_arguments(p, FLAGS)


def _tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    return to_unit_range(torch.from_numpy(images).permute(0, 3, 1, 2)).to(device)


@torch.no_grad()
def run(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    if out.suffix.lower() not in {".npz", ".png"}:
        raise ValueError(f"--out must end in .npz or .png, got {out.name!r}.")
    if args.num < 1:
        raise ValueError(f"--num must be at least 1, got {args.num}.")
    if not 0 < args.max_theta <= 1:
        raise ValueError(f"--max-theta must be in (0, 1] (0.5 keeps the image's look), got {args.max_theta}.")
    check_writable(out, "--out")
    model = load_model(args.ckpt, generative=True).to(resolve_device(args.device))
    if not isinstance(model, UnCLIPModel):
        raise ValueError(
            f"{args.ckpt} holds a {model.family} model; pass a pipeline from `lit-genvision compose unclip`."
        )
    images = _tensor(read_images(args.images, "--images", tuple(model.image_shape)), model.device)
    g = batch_generator(args.seed, 0, model.device)
    if args.interpolate:
        b = _tensor(read_images(args.interpolate, "--interpolate", tuple(model.image_shape)), model.device)
        made = model.interpolate_images(images, b, args.num, steps=args.steps, guidance=args.guidance, generator=g)
    elif args.text_diff:
        thetas = np.linspace(0, args.max_theta, args.num).tolist()
        made = model.text_diff(images, *args.text_diff, thetas, steps=args.steps, guidance=args.guidance)
    else:
        eta = 1.0 if args.eta is None else args.eta  # the paper's variations: η > 0
        made = model.variations(images, args.num, eta=eta, steps=args.steps, guidance=args.guidance, generator=g)
    made = made.cpu()
    if out.suffix.lower() == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, to_uint8(made).permute(0, 2, 3, 1).numpy())
    else:
        save_images(upscale_for_view(made), out, nrow=args.num)  # a row per input, or the one row
    print(f"Wrote {len(made)} images to {out}")
    return out
