"""``lit-genvision inpaint``: fill the masked pixels of images with an inpainting checkpoint.

Inputs are ``.npz`` files as everywhere: ``--images`` holds ``arr_0`` uint8 N×H×W×C, ``--masks``
holds ``arr_0`` N×H×W (nonzero: the pixel is to be generated). The output holds ``arr_0`` uint8
N×H×W×C in which every known pixel is the input's byte for byte: x = m·x_gen + (1 − m)·x, applied
once more on the uint8 arrays, so no rounding can touch a known pixel.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from lit_genvision.checks import check_writable
from lit_genvision.data.base import to_uint8, to_unit_range
from lit_genvision.experiments.arguments import (
    add_shared_arguments,
    check_sampling_arguments,
    progress_bar,
    resolve_device,
)
from lit_genvision.experiments.checkpoints import load_model
from lit_genvision.experiments.npz import read_array, read_images
from lit_genvision.experiments.sample import sampling_from_arguments
from lit_genvision.methods.repaint import RePaint
from lit_genvision.metrics.generation import batch_generator

#: The shared flags inpainting takes: a denoising model's sampling, the seed rule, the weights and the device.
FLAGS = ("sampler", "steps", "eta", "rtol", "atol", "guidance", "seed", "batch_size", "device", "no_ema")


def read_inputs(images_path: str, masks_path: str, image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The images (N, H, W, C) uint8 and masks (N, H, W) bool, checked against the model's image shape."""
    images = read_images(images_path, "--images", image_shape)
    masks = read_array(masks_path, "--masks", 3, "masks N×H×W (1 where pixels are to be generated)")
    if masks.shape != images.shape[:3]:
        raise ValueError(f"--masks are {masks.shape} but the images need {images.shape[:3]}: one H×W mask per image.")
    return images, masks != 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="checkpoint of an inpainting model (configs/*/digits_inpainting.yaml)")
    p.add_argument("--images", required=True, help=".npz with arr_0 uint8 N×H×W×C")
    p.add_argument("--masks", required=True, help=".npz with arr_0 N×H×W, 1 where pixels are to be generated")
    p.add_argument("--out", required=True, help=".npz to write (arr_0 uint8 N×H×W×C)")
    p.add_argument(
        "--repaint",
        nargs=2,
        type=int,
        metavar=("JUMP", "RESAMPLE"),
        default=None,
        help="RePaint's resampling (Lugmayr et al. 2022): jump back JUMP sampler steps, denoise each stretch "
        "RESAMPLE times (e.g. 5 5; a diffusion model's sampler, best with --sampler ddpm or --eta 1)",
    )
    add_shared_arguments(p, FLAGS)


@torch.no_grad()
def run(args: argparse.Namespace) -> Path:
    """Fill the masked pixels of ``--images`` and write them, every known byte unchanged, to ``--out``."""
    if Path(args.out).suffix.lower() != ".npz":
        raise ValueError(f"--out must end in .npz, got {Path(args.out).name!r}.")
    check_sampling_arguments(args)
    check_writable(args.out, "--out")
    model = load_model(args.ckpt, use_ema=not args.no_ema, generative=True).to(resolve_device(args.device))
    images, masks = read_inputs(args.images, args.masks, tuple(model.image_shape))
    options = sampling_from_arguments(model, args)
    if getattr(args, "repaint", None) is not None:
        options = options.but(repaint=RePaint(*args.repaint))
    filled = []
    with progress_bar() as progress:
        task = progress.add_task("inpainting", total=len(images))
        for b, first in enumerate(range(0, len(images), args.batch_size)):
            x = to_unit_range(torch.from_numpy(images[first : first + args.batch_size]).permute(0, 3, 1, 2))
            m = torch.from_numpy(masks[first : first + args.batch_size]).float()
            g = batch_generator(args.seed, b, model.device)
            out = model.inpaint(x, m, generator=g, steps=args.steps, options=options)
            filled.append(to_uint8(out.cpu()).permute(0, 2, 3, 1).numpy())
            progress.advance(task, len(x))
    result = np.where(masks[..., None], np.concatenate(filled), images)  # known pixels: the input's bytes
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out_path, result)
    changed = masks.mean()
    print(f"Filled {masks.sum()} pixels ({changed:.1%}) of {len(images)} images; wrote {out_path}")
    return out_path
