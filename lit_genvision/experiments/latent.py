"""``lit-genvision latent …``: the lecture's latent-space tools for autoencoders and VAEs.

embed             2-D scatter of a split's latent codes coloured by label (PCA when dim > 2)
attribute-vector  v = mean(z | attribute) − mean(z | not attribute), saved as safetensors
traverse          decode z + f·v for factors f from −k to k (rows: several start images)
blend             decode z = α z_A + (1 − α) z_B for α from 1 to 0
reconstruct       originals over their reconstructions
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from lit_genvision.callbacks.images import save_images, upscale_for_view
from lit_genvision.checks import check_writable
from lit_genvision.experiments.arguments import progress_bar
from lit_genvision.experiments.checkpoints import CheckpointError, load_model, run_datamodule
from lit_genvision.methods.vae import attribute_vector


def _model(ckpt: str):
    model = load_model(ckpt)
    if not hasattr(model, "encode") or not hasattr(model, "decode"):
        raise CheckpointError(f"checkpoint {ckpt} holds a {type(model).__name__}, which has no latent space; "
                              "pass an autoencoder or VAE checkpoint.")  # fmt: skip
    return model


@torch.no_grad()
def encode_split(model, datamodule, split: str, limit: int | None = None) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """(images (N, C, H, W) in [-1, 1], latent codes (N, D), other batch fields) of a split."""
    data = datamodule.split(split)
    size = len(data) if hasattr(data, "__len__") else None
    images, codes, fields = [], [], {}
    with progress_bar() as progress:
        task = progress.add_task(f"encoding the {split} split", total=min(limit, size) if limit and size else size)
        for batch in datamodule.make_loader(data, shuffle=False):
            batch = datamodule.device_transform(batch, training=False)
            images.append(batch["image"])
            codes.append(model.encode(batch["image"]))
            for k, v in batch.items():
                if k != "image" and isinstance(v, Tensor):
                    fields.setdefault(k, []).append(v)
            progress.advance(task, len(batch["image"]))
            if limit and sum(len(c) for c in codes) >= limit:
                break
    n = limit or sum(len(c) for c in codes)
    return torch.cat(images)[:n], torch.cat(codes)[:n], {k: torch.cat(v)[:n] for k, v in fields.items()}


def select(spec: str, fields: dict[str, Tensor], datamodule) -> Tensor:
    """Boolean mask of a selection: ``label=7`` (a class) or an attribute name such as ``Smiling``."""
    if "=" in spec:
        key, value = spec.split("=", 1)
        if key not in fields:
            raise ValueError(f"{spec!r}: the data has no {key!r} field (it has {', '.join(fields) or 'none'}).")
        return fields[key] == int(value)
    names = list(getattr(datamodule, "attribute_names", []))
    if spec not in names:
        raise ValueError(f"unknown attribute {spec!r}; use label=K or one of: {', '.join(names) or '(none)'}.")
    return fields["attributes"][:, names.index(spec)] > 0


def embed(args: argparse.Namespace) -> Path:
    """2-D scatter of a split's latent codes coloured by label (PCA when dim > 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model, dm = _model(args.ckpt), run_datamodule(args.ckpt)
    _, z, fields = encode_split(model, dm, args.split, args.max)
    if z.shape[1] > 2:  # principal components
        zc = z - z.mean(0)
        z = zc @ torch.linalg.svd(zc, full_matrices=False).Vh[:2].T
    fig, ax = plt.subplots(figsize=(6, 6))
    colour = fields.get("label")
    sc = ax.scatter(z[:, 0], z[:, 1], c=colour if colour is not None else "k", cmap="tab10", s=6)
    if colour is not None:
        fig.colorbar(sc, ax=ax, ticks=range(10), label="label")
    ax.set_title(f"latent codes of the {args.split} split" + (" (PCA)" if model_dim(model) > 2 else ""))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    print(f"Wrote {out}")
    return out


def model_dim(model) -> int:
    return int(getattr(model, "latent_dim", 0) or model.decoder.linear.in_features)


def vector(args: argparse.Namespace) -> Path:
    """v = mean(z | attribute) − mean(z | not attribute), saved as safetensors."""
    model, dm = _model(args.ckpt), run_datamodule(args.ckpt)
    _, z, fields = encode_split(model, dm, args.split)
    has = select(args.attribute, fields, dm)
    without = select(args.against, fields, dm) if args.against else None
    v = attribute_vector(z, has, without)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {"vector": v.contiguous()}, str(out), metadata={"attribute": args.attribute, "against": args.against or "rest"}
    )
    print(f"Wrote the {args.attribute} vector (‖v‖ = {v.norm():.3f}, from {int(has.sum())} images) to {out}")
    return out


def traverse(args: argparse.Namespace) -> Path:
    """Decode z + f·v for factors f from --low to --high (rows: several start images)."""
    model, dm = _model(args.ckpt), run_datamodule(args.ckpt)
    images, z, fields = encode_split(model, dm, args.split)
    v = load_file(args.vector)["vector"]
    starts = z[select(args.start, fields, dm)][: args.rows] if args.start else z[: args.rows]
    factors = torch.linspace(args.low, args.high, args.num)
    grid = model.decode((starts[:, None] + factors[None, :, None] * v).flatten(0, 1))
    return _write(grid, args.out, args.num)


def blend(args: argparse.Namespace) -> Path:
    """Decode z = α z_A + (1 − α) z_B for α from 1 to 0."""
    model, dm = _model(args.ckpt), run_datamodule(args.ckpt)
    images, z, _ = encode_split(model, dm, args.split, max(args.a, args.b) + 1)
    alphas = torch.linspace(1, 0, args.num)[:, None]
    row = model.decode(alphas * z[args.a] + (1 - alphas) * z[args.b])
    return _write(torch.cat([images[args.a : args.a + 1], row, images[args.b : args.b + 1]]), args.out, args.num + 2)


def reconstruct(args: argparse.Namespace) -> Path:
    """Originals over their reconstructions."""
    model, dm = _model(args.ckpt), run_datamodule(args.ckpt)
    images, z, _ = encode_split(model, dm, args.split, args.num)
    return _write(torch.cat([images, model.decode(z)]), args.out, args.num)


def _write(images: Tensor, out: str, nrow: int) -> Path:
    path = save_images(upscale_for_view(images.clamp(-1, 1)), out, nrow=nrow)
    print(f"Wrote {path}")
    return path


#: What each subcommand writes to ``--out``.
OUT_HELP = {
    "embed": "the scatter plot to write (.png, .pdf, .svg …)",
    "attribute-vector": "the .safetensors file to write",
    "traverse": "the grid to write (.png or .npz)",
    "blend": "the row to write (.png or .npz)",
    "reconstruct": "the grid to write (.png or .npz)",
}

COMMANDS = {
    "embed": embed,
    "attribute-vector": vector,
    "traverse": traverse,
    "blend": blend,
    "reconstruct": reconstruct,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn in COMMANDS.items():
        s = sub.add_parser(name, help=fn.__doc__)
        s.add_argument("--ckpt", required=True, help="autoencoder or VAE checkpoint")
        s.add_argument("--split", default="test", help="the split whose images are encoded")
        s.add_argument("--out", required=True, help=OUT_HELP[name])
        if name == "embed":
            s.add_argument("--max", type=int, default=None, help="at most this many points")
        if name == "attribute-vector":
            s.add_argument("--attribute", required=True, help="label=K or a CelebA attribute name (Smiling)")
            s.add_argument("--against", default=None, help="the 'without' set (default: all others), e.g. label=1")
        if name == "traverse":
            s.add_argument("--vector", required=True, help="a .safetensors from attribute-vector")
            s.add_argument("--start", default=None, help="start from images of this selection, e.g. label=1")
            s.add_argument("--rows", type=int, default=4, help="rows: start images")
            s.add_argument("--num", type=int, default=9, help="images per row: factors from --low to --high")
            s.add_argument("--low", type=float, default=-2.0, help="the first factor f of z + f·v")
            s.add_argument("--high", type=float, default=2.0, help="the last factor f of z + f·v")
        if name == "blend":
            s.add_argument("--a", type=int, default=0, help="index of image A in the split")
            s.add_argument("--b", type=int, default=1, help="index of image B")
            s.add_argument("--num", type=int, default=8, help="blends between A and B")
        if name == "reconstruct":
            s.add_argument("--num", type=int, default=16, help="images reconstructed")


def run(args: argparse.Namespace) -> Path:
    """Run the ``latent`` subcommand ``args`` name, its ``--out`` checked first."""
    check_writable(args.out, "--out")
    return COMMANDS[args.command](args)
