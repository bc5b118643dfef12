"""The ``lit-genvision`` command.

``fit``, ``validate`` and ``test`` are LightningCLI subcommands over a YAML under ``configs/``;
``sample`` and ``export`` work on a checkpoint.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger

from lit_genvision.callbacks import RNGState, RunSummary
from lit_genvision.data.base import ImageDataModule
from lit_genvision.experiments import evaluate, export, latent, leaderboard, sample, sweep
from lit_genvision.experiments.checkpoints import CheckpointError
from lit_genvision.experiments.store import StoreError
from lit_genvision.experiments.sweep import SweepError
from lit_genvision.models.base import PlatformModule

# Lightning's advice that does not apply here: `main(argv)` is the documented in-process entry point,
# and a digits epoch is legitimately shorter than the logging interval.
for _pattern in (
    r"LightningCLI's args parameter",
    r".*isinstance\(treespec, LeafSpec\)",
    r"The number of training batches",
):
    warnings.filterwarnings("ignore", message=_pattern)

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
}


class GenVisionCLI(LightningCLI):
    """LightningCLI with the platform's defaults: runs under ``runs/``, a CSV logger, RNG state in
    every checkpoint, and a summary of where the outputs went."""

    def __init__(
        self,
        args: list[str] | None = None,
        run: bool = True,
        parser_kwargs: dict | None = None,
        callbacks: list | None = None,
    ) -> None:
        self.extra_callbacks = list(callbacks or [])
        super().__init__(
            PlatformModule,
            ImageDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            trainer_defaults={
                "default_root_dir": "runs",
                "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs"}},
                "callbacks": [RNGState(), RunSummary()],
            },
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"parser_mode": "yaml", **(parser_kwargs or {})},
            args=args,
            run=run,
        )

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        # The data config travels in every checkpoint, so `evaluate` and `latent` rebuild the run's
        # data module from the checkpoint alone, whatever logger laid out the run folder.
        self._dump_config()
        self.model.data_config = self.config_dump.get("data")

    def before_fit(self) -> None:
        self.trainer.callbacks.extend(self.extra_callbacks)
        _continue_in_checkpoint_folder(self.trainer, self.config.get("fit", self.config).get("ckpt_path"))


def _continue_in_checkpoint_folder(trainer, ckpt_path: str | None) -> None:
    """Resuming from runs/<name>/version_N/checkpoints/X.ckpt logs into version_N again, so a
    resumed run continues the same folder instead of starting version_N+1."""
    if not ckpt_path:
        return
    match = re.search(r"(version_\d+)/checkpoints/[^/]+\.ckpt$", str(Path(ckpt_path).as_posix()))
    logger = trainer.logger
    if match and isinstance(logger, CSVLogger) and logger._version is None:
        logger._version = match.group(1)


def _run_tool(name: str, argv: list[str]) -> int:
    module, help_text = TOOLS[name]
    parser = argparse.ArgumentParser(prog=f"lit-genvision {name}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        module.run(args)
    except (CheckpointError, StoreError, SweepError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None, callbacks: list | None = None) -> int:
    """The console entry point; ``callbacks`` are added to a ``fit`` run's trainer (used in-process)."""
    explicit = argv is not None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:
        return _run_tool(argv[0], argv[1:])
    if not argv or argv[0] in {"-h", "--help"}:
        print(
            "usage: lit-genvision {fit,validate,test} --config configs/<family>/<dataset>.yaml [--key value ...]\n"
            "       lit-genvision {" + ",".join(TOOLS) + "} --help\n"
        )
        for name, (_, help_text) in TOOLS.items():
            print(f"  {name:10s} {help_text}")
        if not argv:
            return 0
    GenVisionCLI(args=argv if explicit else None, callbacks=callbacks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
