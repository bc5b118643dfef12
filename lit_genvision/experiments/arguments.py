"""The command-line flags that several commands share, each declared once (``FLAGS``), their checks, and the
two helpers every command that works at length uses (``resolve_device``, ``progress_bar``).

A command takes the shared flags it needs by name (``add_shared_arguments(p, ("seed", "device"))``);
``sample`` and ``evaluate`` take them all (``add_sampling_arguments``), so the two spell, default and
explain every sampling flag alike. An old spelling of a flag stays as a hidden alias (``add_deprecated_alias``)
that still works and warns once with a ``FutureWarning``.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lit_genvision.checks import check_float, check_int

#: Images generated at once by every command that samples. Part of the seed rule (batch b is drawn from a
#: generator seeded from (seed, b)), so ``sample --seed S`` writes the images ``evaluate --seed S`` scores only
#: when both use the same batch size: one default for all (evaluate's, so recorded scores stay reproducible).
BATCH_SIZE = 250

#: Every shared flag, by its destination name: the keyword arguments of ``add_argument``. ``--flag-name`` is the
#: name with ``-`` for ``_``.
FLAGS: dict[str, dict[str, Any]] = {
    "sampler": {
        "default": None,
        "help": "override the model's sampler: ddpm | ddim (diffusion); euler | midpoint | heun | rk4 | dopri5 (flow)",
    },
    "steps": {"type": int, "default": None, "help": "sampler steps (default: the checkpoint's)"},
    "eta": {"type": float, "default": None, "help": "DDIM η (0: deterministic); given alone it selects DDIM"},
    "rtol": {"type": float, "default": None, "help": "dopri5 relative tolerance (1e-3); selects dopri5"},
    "atol": {"type": float, "default": None, "help": "dopri5 absolute tolerance (1e-3); selects dopri5"},
    "guidance": {
        "type": float,
        "default": None,
        "help": "classifier-free guidance scale s (0 unconditional, 1 conditional, >1 guided; default: the model's)",
    },
    "temperature": {"type": float, "default": None, "help": "softmax temperature of a token prior"},
    "top_k": {"type": int, "default": None, "help": "sample a token prior's codes from the k most likely"},
    "truncation": {
        "type": float,
        "default": None,
        "metavar": "PSI",
        "help": "a StyleGAN's truncation ψ (1: none; 0.7 typical; default: the model's)",
    },
    "seed": {"type": int, "default": 0, "help": "batch b is drawn with a generator seeded from (seed, b)"},
    "label": {
        "default": None,
        "metavar": "K[,K...]",
        "help": "class of a class-conditional model: one for every sample, or a comma list with one per sample "
        "(default: balanced labels, sample i gets i mod the number of classes)",
    },
    "prompt": {
        "action": "append",
        "default": None,
        "metavar": "TEXT",
        "help": "prompt of a text-conditioned model; repeat it to cycle prompts over the samples (sample i gets "
        "prompt i mod P; default: the model's class prompts)",
    },
    "prompt_file": {
        "default": None,
        "metavar": "TXT",
        "help": "a text file of prompts, one per line, used like repeated --prompt",
    },
    "batch_size": {
        "type": int,
        "default": BATCH_SIZE,
        "help": f"images generated at once (part of the seed rule; default {BATCH_SIZE} everywhere)",
    },
    "device": {"default": "auto", "help": "auto, cpu, cuda or cuda:<index>"},
    "no_ema": {"action": "store_true", "help": "use the raw weights instead of the EMA"},
}

#: The flags of ``sample`` and ``evaluate``: all of them.
SAMPLING = tuple(FLAGS)


def flag_of(name: str) -> str:
    """``--top-k`` for ``top_k``."""
    return "--" + name.replace("_", "-")


def add_shared_arguments(p: argparse.ArgumentParser, names: Iterable[str], **helps: str) -> None:
    """Add the shared flags ``names`` (keys of ``FLAGS``) to ``p``; ``helps`` replaces a flag's help where the
    command gives it a narrower meaning (stylemix's ``seed``)."""
    for name in names:
        kwargs = dict(FLAGS[name])
        if name in helps:
            kwargs["help"] = helps[name]
        p.add_argument(flag_of(name), **kwargs)


def add_sampling_arguments(p: argparse.ArgumentParser, **helps: str) -> None:
    """Every shared flag: the options of ``sample`` and ``evaluate``."""
    add_shared_arguments(p, SAMPLING, **helps)


class DeprecatedAlias(argparse.Action):
    """A hidden old spelling of a flag: stores into the new flag's destination and warns (``FutureWarning``, the
    category for end users) that the new spelling is the one to use."""

    def __init__(self, option_strings: list[str], dest: str, *, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        message = f"{option_string} is deprecated; use {self.new}."
        warnings.warn_explicit(message, FutureWarning, filename=parser.prog, lineno=0)  # shown as the command's
        setattr(namespace, self.dest, values)


def add_deprecated_alias(p: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs: Any) -> None:
    """Keep ``old`` working as a hidden alias of ``new`` (stored in ``dest``); ``kwargs`` as for ``add_argument``
    (``type``, ``nargs``)."""
    p.add_argument(old, dest=dest, action=DeprecatedAlias, new=new, **kwargs)


def check_sampling_arguments(args: Any) -> None:
    """Refuse invalid values of the shared sampling flags ``args`` has (a namespace or ``EvaluateOptions``),
    before any model is loaded."""
    if getattr(args, "steps", None) is not None:
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
    if hasattr(args, "batch_size"):
        check_int("--batch-size", args.batch_size, low=1, hint="pass the number of images generated at once")
    if getattr(args, "prompt", None) and getattr(args, "prompt_file", None):
        raise ValueError("--prompt and --prompt-file both give the prompts; pass one of them.")


def resolve_device(name: str) -> torch.device:
    """The device of ``--device``: ``auto`` is CUDA when one is visible, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is visible; use --device cpu.")
    return torch.device(name)


def progress_bar() -> Progress:
    """The progress bar of every command's long work: description, bar, done/total, elapsed time."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
