"""The ``lit-genvision`` command: the edge where argv becomes calls.

``fit``, ``validate`` and ``test`` are LightningCLI subcommands over a YAML under ``configs/``
(``experiments/fit.py``); ``sample``, ``evaluate``, ``export``, … work on a checkpoint, one module
each under ``experiments/``. User errors print one sentence and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from lit_genvision.checkpoint_io import CheckpointError, download, is_url
from lit_genvision.experiments import (
    caption,
    clip,
    compose,
    evaluate,
    export,
    inpaint,
    latent,
    leaderboard,
    sample,
    stylemix,
    sweep,
    variations,
)
from lit_genvision.experiments.fit import GenVisionCLI, naming
from lit_genvision.experiments.store import StoreError
from lit_genvision.experiments.sweep import SweepError

#: Errors that are the user's input, not a bug: the CLI prints their one sentence (no traceback)
#: and exits with status 2. LIT_GENVISION_TRACEBACK=1 shows the traceback too.
USER_ERRORS = (CheckpointError, StoreError, SweepError, ValueError, FileNotFoundError)

# Tools that work on checkpoints rather than configs: name → (module with add_arguments/run, help).
TOOLS = {
    "sample": (sample, "generate images from a checkpoint (PNG grid, .npz, or interpolation)"),
    "export": (export, "export a checkpoint's EMA weights to safetensors"),
    "evaluate": (evaluate, "score a checkpoint (digits-FD, FID, KID, IS) and record the result"),
    "leaderboard": (leaderboard, "rank recorded results within each evaluation protocol"),
    "sweep": (sweep, "run a W&B sweep file offline: fit + evaluate per trial, resumable"),
    "latent": (
        latent,
        "latent-space tools for autoencoders and VAEs: embed, attribute-vector, traverse, blend, reconstruct",
    ),
    "clip": (clip, "CLIP tools: zero-shot classification and image-text retrieval on a split"),
    "caption": (caption, "re-caption a dataset with a captioner checkpoint into a parquet file (key, text)"),
    "inpaint": (inpaint, "fill the masked pixels of images (.npz) with an inpainting checkpoint"),
    "compose": (compose, "compose DALL-E 2's pipeline (CLIP + prior + decoder, by reference) into one checkpoint"),
    "variations": (variations, "DALL-E 2's variations, CLIP-space interpolation and text diffs of images (.npz)"),
    "stylemix": (stylemix, "a StyleGAN's style-mixing grid: row sources' coarse, middle or fine styles over columns'"),
}


#: The LightningCLI verbs over a YAML config (``experiments/fit.py``): name → help.
TRAINER_VERBS = {
    "fit": "train a model from a YAML config (configs/<family>/<dataset>.yaml); every field overridable",
    "validate": "run the validation loop of a config (and --ckpt_path) once",
    "test": "run the test loop of a config (and --ckpt_path) once",
}


def tool_parser(name: str) -> argparse.ArgumentParser:
    """The argument parser of the tool ``name`` (a key of ``TOOLS``)."""
    module, help_text = TOOLS[name]
    parser = argparse.ArgumentParser(prog=f"lit-genvision {name}", description=help_text)
    module.add_arguments(parser)
    return parser


def usage() -> str:
    """The top-level help: how to call each kind of verb, and one line for every verb."""
    lines = [
        "usage: lit-genvision {" + ",".join(TRAINER_VERBS) + "} --config configs/<family>/<dataset>.yaml "
        "[--key value ...]",
        "       lit-genvision {" + ",".join(TOOLS) + "} [options]",
        "       lit-genvision VERB --help   (every option of VERB)",
        "",
    ]
    verbs = {**TRAINER_VERBS, **{name: help_text for name, (_, help_text) in TOOLS.items()}}
    return "\n".join(lines + [f"  {name:12s}{help_text}" for name, help_text in verbs.items()])


def _run_tool(name: str, argv: list[str]) -> int:
    module, _ = TOOLS[name]
    args = tool_parser(name).parse_args(argv)
    downloaded = None
    try:
        if is_url(getattr(args, "ckpt", None) or ""):  # fetched once, read by every step of the tool
            args.ckpt_source, downloaded = args.ckpt, download(args.ckpt)
            args.ckpt = str(downloaded)
        with naming(downloaded, getattr(args, "ckpt_source", None)):
            module.run(args)
    except USER_ERRORS as err:
        return _user_error(err)
    finally:
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)
    return 0


def _user_error(err: BaseException) -> int:
    """Print the sentence of a user error (the innermost one: jsonargparse wraps a constructor's
    error in a multi-line report of the config) and return the exit status 2."""
    if os.environ.get("LIT_GENVISION_TRACEBACK"):
        raise err
    while isinstance(err.__cause__, USER_ERRORS):
        err = err.__cause__
    print(f"error: {err}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None, callbacks: list | None = None) -> int:
    """The console entry point; ``callbacks`` are added to a ``fit`` run's trainer (used in-process).
    A user error prints its sentence and returns 2 (Python callers use ``experiments.fit.fit``,
    which raises instead)."""
    explicit = argv is not None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:
        return _run_tool(argv[0], argv[1:])
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0
    try:
        GenVisionCLI(args=argv if explicit else None, callbacks=callbacks)
    except USER_ERRORS as err:
        return _user_error(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
