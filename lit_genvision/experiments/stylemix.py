"""``lit-genvision stylemix``: the StyleGAN paper's style-mixing figure (Karras et al. 2019, Fig. 3).

The grid's first row shows the column sources, its first column the row sources (the corner is
blank, white); cell (r, c) is drawn with the ``--crossover`` band's styles (``coarse`` 4²–8²,
``middle``, ``fine``: the last resolution, or 64² and up) from row source r and every other layer's
from column source c. Row sources come from ``--seed``, column sources from ``--seed + 1``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lit_genvision.callbacks.images import save_images, upscale_for_view
from lit_genvision.checks import check_int, check_writable
from lit_genvision.experiments.arguments import add_shared_arguments, check_sampling_arguments, resolve_device
from lit_genvision.experiments.checkpoints import load_model
from lit_genvision.experiments.sample import configure_sampling
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.models.stylegan import BANDS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="checkpoint of a StyleGAN (configs/gan/digits_stylegan2.yaml)")
    p.add_argument("--rows", type=int, default=4, help="row sources (they give the crossover band's styles)")
    p.add_argument("--cols", type=int, default=4, help="column sources (they give every other layer's styles)")
    p.add_argument("--crossover", choices=BANDS, default="coarse", help="the band taken from the row sources")
    p.add_argument("--out", default="stylemix.png", help=".png grid, or .npz of the grid's images (row-major)")
    add_shared_arguments(
        p, ("truncation", "seed", "device", "no_ema"), seed="row sources from this seed, column sources from seed + 1"
    )


@torch.no_grad()
def stylemix_grid(
    model, rows: int, cols: int, crossover: str, seed: int = 0, options: SampleOptions | None = None
) -> torch.Tensor:
    """The figure's (rows + 1)·(cols + 1) images, row-major, in [-1, 1] (truncated as ``options`` say)."""
    options = options or SampleOptions()
    z_rows = torch.randn(rows, *model.sample_shape, generator=torch.Generator().manual_seed(seed))
    z_cols = torch.randn(cols, *model.sample_shape, generator=torch.Generator().manual_seed(seed + 1))
    mixed = model.style_mix(z_rows, z_cols, crossover, options).cpu()  # (rows·cols, C, H, W)
    row_images, col_images = (
        model.sample(rows, options=options.but(noise=z_rows.to(model.device))).cpu(),
        model.sample(cols, options=options.but(noise=z_cols.to(model.device))).cpu(),
    )
    blank = torch.ones_like(row_images[:1])
    lines = [torch.cat([blank, col_images])]
    for r in range(rows):
        lines.append(torch.cat([row_images[r : r + 1], mixed[r * cols : (r + 1) * cols]]))
    return torch.cat(lines)


def run(args: argparse.Namespace) -> Path:
    """Draw the style-mixing figure of ``--ckpt`` and write it to ``--out``."""
    check_int("--rows", args.rows, low=1, hint="pass the number of row sources, e.g. 4")
    check_int("--cols", args.cols, low=1, hint="pass the number of column sources, e.g. 4")
    check_sampling_arguments(args)
    out = Path(args.out)
    if out.suffix.lower() not in {".png", ".jpg", ".jpeg", ".npz"}:
        raise ValueError(f"--out must end in .png, .jpg or .npz, got {out.name!r}.")
    check_writable(args.out, "--out")
    model = load_model(args.ckpt, use_ema=not args.no_ema, generative=True).to(resolve_device(args.device))
    if not hasattr(model, "style_mix"):
        raise ValueError(
            f"stylemix needs a StyleGAN checkpoint (configs/gan/*stylegan2*.yaml), and {args.ckpt} holds a "
            f"{type(model).__name__} ({model.family} family)."
        )
    options = configure_sampling(model, truncation=args.truncation)
    images = stylemix_grid(model, args.rows, args.cols, args.crossover, args.seed, options)
    if out.suffix == ".npz":
        save_images(images, out)
    else:
        save_images(upscale_for_view(images), out, nrow=args.cols + 1)
    print(f"Wrote the {args.rows}×{args.cols} {args.crossover} style-mixing grid to {out}")
    return out
