"""``lit-genvision compose unclip``: DALL-E 2's pipeline as one small checkpoint (family ``unclip``) that holds
its CLIP, prior and decoder by reference — their paths and SHA-256, no copied weights — so that ``sample --ckpt
PIPE.ckpt --prompt "…"``, ``evaluate`` and the leaderboard take it like any checkpoint:

    lit-genvision compose unclip --clip runs/clip-digits/version_0/checkpoints/last.ckpt \\
        --prior runs/unclip-digits-prior/version_0/checkpoints/last.ckpt \\
        --decoder runs/unclip-digits-decoder/version_0/checkpoints/last.ckpt --out runs/unclip-digits.ckpt

Each part is checked at composition (its kind, its embedding width, the prior's CLIP) and again, by its hash,
whenever the pipeline is loaded: a part's file that changed or is gone stops the load with one sentence.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lightning.pytorch.cli import instantiate_module

from lit_genvision.checkpoint_io import atomic_save
from lit_genvision.checks import check_writable
from lit_genvision.models.base import qualified_name
from lit_genvision.models.unclip import UnCLIPModel


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=["unclip"], help="what to compose: unclip (CLIP + prior + decoder)")
    p.add_argument("--clip", required=True, help="checkpoint of the CLIP (configs/clip/*.yaml)")
    p.add_argument("--prior", required=True, help="checkpoint of the prior (configs/unclip/digits_prior.yaml)")
    p.add_argument("--decoder", required=True, help="checkpoint of the decoder (configs/unclip/digits_decoder.yaml)")
    p.add_argument("--out", required=True, help="the pipeline's checkpoint to write (.ckpt)")
    p.add_argument("--candidates", type=int, default=2, help="prior draws per prompt, the best kept (paper: 2)")
    p.add_argument("--prior-guidance", type=float, default=None, help="the prior's guidance scale (default: its own)")
    p.add_argument("--prior-steps", type=int, default=None, help="the prior sampler's steps (default: its own)")
    p.add_argument(
        "--embedding", choices=["prior", "text"], default="prior",
        help="feed the decoder the prior's image embedding (default) or the text embedding itself (the paper's "
        "baseline for the importance of the prior)",
    )  # fmt: skip
    p.add_argument(
        "--noise-level", type=int, default=0,
        help="noise-augment the embedding to this level before decoding (Stable unCLIP; a decoder trained with "
        "noise_levels; default 0: clean)",
    )  # fmt: skip


def compose(
    clip: str, prior: str, decoder: str, candidates: int = 2, prior_guidance: float | None = None,
    prior_steps: int | None = None, embedding: str = "prior", noise_level: int = 0,
) -> UnCLIPModel:  # fmt: skip
    """The pipeline model, built as a checkpoint rebuilds it (its config saved with its class path)."""
    config = {
        "_class_path": qualified_name(UnCLIPModel), "clip": str(clip), "prior": str(prior), "decoder": str(decoder),
        "candidates": candidates, "prior_guidance": prior_guidance, "prior_steps": prior_steps, "embedding": embedding,
        "noise_level": noise_level,
    }  # fmt: skip
    return instantiate_module(UnCLIPModel, config)


def save(model: UnCLIPModel, out: str | Path) -> Path:
    """Write ``model`` as a checkpoint ``load_model`` reads: its config, part records and data config (the prior's
    run's), and no part's weights."""
    hparams = {"_class_path": qualified_name(type(model)), **model.hparams}
    hparams.pop("_instantiator", None)
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": hparams, "global_step": 0}
    model.on_save_checkpoint(checkpoint)
    atomic_save(checkpoint, out)
    return Path(out)


def run(args: argparse.Namespace) -> Path:
    if Path(args.out).suffix != ".ckpt":
        raise ValueError(f"--out must end in .ckpt, got {Path(args.out).name!r}.")
    check_writable(args.out, "--out")
    model = compose(
        args.clip,
        args.prior,
        args.decoder,
        args.candidates,
        args.prior_guidance,
        args.prior_steps,
        args.embedding,
        args.noise_level,
    )
    out = save(model, args.out)
    size = out.stat().st_size
    print(f"Wrote the {model.family} pipeline ({size / 1024:.0f} KiB: the parts by reference, no weights) to {out}")
    return out
