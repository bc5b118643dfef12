"""``lit-genvision fit | validate | test``: LightningCLI with the platform's defaults and checks, and
``fit()``, the typed entry point the command line and the sweep runner both call.

Defaults: runs under ``runs/``, a CSV logger, RNG state in every checkpoint, checkpoints read
safely and written atomically (``checkpoint_io``). Checks before any work: ``--ckpt_path`` holds
the configured model class and weights the configured network can take; options given with a
resume apply (and are listed); ``max_steps``/``max_epochs`` are positive. A fit that fails before
writing anything leaves no empty run folder.
"""

from __future__ import annotations

import atexit
import importlib
import re
import shutil
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger

from lit_genvision.callbacks import ClassNames, RNGState, RunSummary
from lit_genvision.callbacks.csv_resume import continue_csv_log
from lit_genvision.callbacks.resume_overrides import ResumeOverrides
from lit_genvision.checkpoint_io import CheckpointError, SafeCheckpointIO, download, is_url, load_checkpoint_file
from lit_genvision.data.base import ImageDataModule
from lit_genvision.models.base import CHECKPOINT_KEY, PlatformModule, qualified_name
from lit_genvision.models.pretrained import PRETRAINED_KEY

# Lightning's advice that does not apply here: `main(argv)` is the documented in-process entry point,
# and a digits epoch is legitimately shorter than the logging interval.
for _pattern in (
    r"LightningCLI's args parameter",
    # Every platform data module resumes mid-pass through its own state_dict (data/base.py), which
    # Lightning's check for a stateful DataLoader does not see.
    r"You're resuming from a checkpoint that ended before the epoch ended",
    r".*isinstance\(treespec, LeafSpec\)",
    r"The number of training batches",
):
    warnings.filterwarnings("ignore", message=_pattern)


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
                "callbacks": [RNGState(), RunSummary(), ResumeOverrides(), ClassNames()],
            },
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"parser_mode": "yaml", **(parser_kwargs or {})},
            args=args,
            run=run,
        )

    def _parse_ckpt_path(self) -> None:
        """Check ``--ckpt_path`` before anything is built (this replaces Lightning's own step, which
        lets the checkpoint's hyperparameters silently override the config and the command line).

        The checkpoint is read once, safely (a URL is downloaded into a private temporary file that
        the trainer then reads); a checkpoint of another model class is refused; options given now
        that differ from the checkpoint's are applied, and listed.
        """
        self._ckpt: dict[str, Any] | None = None
        self._ckpt_source: str | None = None
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or ckpt_path in ("last", "best", "hpc", "registry"):
            return
        self._ckpt_source = str(ckpt_path)
        if is_url(ckpt_path):
            local = download(str(ckpt_path))
            atexit.register(local.unlink, missing_ok=True)
            self.config[subcommand]["ckpt_path"] = str(local)
            with naming(local, str(ckpt_path)):
                self._ckpt = ckpt = load_checkpoint_file(local)
        else:
            self._ckpt = ckpt = load_checkpoint_file(ckpt_path)
        info = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, dict) else None
        if not isinstance(info, dict) or "state_dict" not in ckpt:
            raise CheckpointError(
                f"{ckpt_path} is not a lit-genvision checkpoint (no '{CHECKPOINT_KEY}' entry); "
                "pass a .ckpt written by `lit-genvision fit`."
            )
        model = self.config[subcommand].get("model")
        configured = _as_dict(model)
        if configured.get("class_path") and _qualified(configured["class_path"]) != info["class"]:
            raise CheckpointError(
                f"--ckpt_path {ckpt_path} holds a {info['class']} ({info['family']} family) but the config "
                f"builds a {configured['class_path']}; resume with the config that wrote the checkpoint."
            )
        saved = dict(ckpt.get("hyper_parameters") or {})
        for part in ("method",):  # one model class, another method: another family
            was = _as_dict(saved.get(part)).get("class_path")
            now = _as_dict(_as_dict(configured.get("init_args")).get(part)).get("class_path")
            if was and now and _qualified(now) != _qualified(was):
                raise CheckpointError(
                    f"--ckpt_path {ckpt_path} holds a {info['class']} ({info['family']} family) whose {part} is "
                    f"{was}, but the config's is {now}; resume with the config that wrote the checkpoint."
                )
        saved.pop("_instantiator", None)
        saved.pop("_class_path", None)
        saved.pop(PRETRAINED_KEY, None)  # a record of the parts it was built on, not an option
        changed = _differences(saved, configured.get("init_args") or {}, "model.init_args")
        if changed:
            print(
                "Resuming with options that differ from the checkpoint's (the ones given now apply): "
                + "; ".join(f"{k} = {new!r} (checkpoint: {old!r})" for k, (old, new) in changed.items()),
                file=sys.stderr,
            )

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        # The data config travels in every checkpoint, so `evaluate` and `latent` rebuild the run's
        # data module from the checkpoint alone, whatever logger laid out the run folder.
        self._dump_config()
        self.model.data_config = self.config_dump.get("data")
        strategy = self.trainer.strategy
        if type(strategy.checkpoint_io) is TorchCheckpointIO:  # the default: read safely, write atomically
            strategy.checkpoint_io = SafeCheckpointIO()

    def _run_subcommand(self, subcommand: str) -> None:
        self._check_before_run(subcommand)
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            self._report_failed_run()
            raise
        # A DDP process that exits with its process group alive can abort in the group's destructor
        # ("terminate called without an active exception", exit -6): a finished run closes it.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()

    def _check_before_run(self, subcommand: str) -> None:
        trainer = self.trainer
        if subcommand == "fit":
            if trainer.max_steps == 0 or trainer.max_steps < -1:
                raise ValueError(
                    f"trainer.max_steps must be positive (or -1 for no limit), got {trainer.max_steps}; "
                    "pass the number of optimiser steps to train."
                )
            if trainer.max_epochs is not None and (trainer.max_epochs == 0 or trainer.max_epochs < -1):
                raise ValueError(f"trainer.max_epochs must be positive (or -1 for no limit), got {trainer.max_epochs}.")
        if getattr(self, "_ckpt", None) is not None:
            _check_weights_fit(self.model, self._ckpt, self._ckpt_source)

    def before_fit(self) -> None:
        # Extra callbacks join the trainer's; checkpoints stay last (as Lightning orders them), so a
        # checkpoint that monitors a score sees the one computed at the same step.
        callbacks = [*self.trainer.callbacks, *self.extra_callbacks]
        self.trainer.callbacks = [c for c in callbacks if not isinstance(c, Checkpoint)] + [
            c for c in callbacks if isinstance(c, Checkpoint)
        ]
        ckpt_path = self.config.get("fit", self.config).get("ckpt_path")
        _continue_in_checkpoint_folder(self.trainer, ckpt_path)
        log_dir = self.trainer.log_dir  # a collective under DDP: every rank asks
        self._new_run_dir = Path(log_dir) if log_dir and not Path(log_dir).exists() else None

    def _report_failed_run(self) -> None:
        """A fit that failed before it wrote anything worth keeping leaves no empty ``version_N``
        behind; a folder with logs but no checkpoint is kept, and said so."""
        run_dir = getattr(self, "_new_run_dir", None)
        if run_dir is None or not self.trainer.is_global_zero or not run_dir.is_dir():
            return
        checkpoints = list(run_dir.rglob("*.ckpt"))
        metrics = run_dir / "metrics.csv"
        logged = metrics.is_file() and len(metrics.read_text().splitlines()) > 1
        if not checkpoints and not logged:
            shutil.rmtree(run_dir, ignore_errors=True)
            print(f"The run failed before writing a checkpoint or a log; removed {run_dir}.", file=sys.stderr)
        elif not checkpoints:
            print(f"The run failed before its first checkpoint; its logs are in {run_dir}.", file=sys.stderr)


def _qualified(class_path: str) -> str:
    """The defining module's name for a class path (``lit_genvision.models.DiffusionModel`` →
    ``lit_genvision.models.diffusion.DiffusionModel``), as checkpoints record it."""
    module, _, name = class_path.rpartition(".")
    try:
        return qualified_name(getattr(importlib.import_module(module), name))
    except (ImportError, AttributeError, ValueError):
        return class_path


def _as_dict(value: Any) -> dict:
    if value is None:
        return {}
    if hasattr(value, "as_dict"):
        return value.as_dict()
    return dict(value)


def _differences(saved: dict, given: dict, prefix: str) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose value in ``given`` (the config and command line now) differs from ``saved``
    (the checkpoint's hyperparameters), with both values; keys only one side has are compared to None."""
    out: dict[str, tuple[Any, Any]] = {}
    # YAML may key a mapping by integers (ProGAN's widths per resolution); a checkpoint keeps them as strings
    saved, given = {str(k): v for k, v in saved.items()}, {str(k): v for k, v in given.items()}
    for key in sorted(set(saved) | set(given)):
        old, new = saved.get(key), given.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            out |= _differences(old, new, f"{prefix}.{key}")
        elif _normalise(old) != _normalise(new):
            out[f"{prefix}.{key}"] = (old, new)
    return out


def _normalise(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _check_weights_fit(model, ckpt: dict, source: str | None) -> None:
    """One sentence when the configured network cannot take the checkpoint's weights."""
    have = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    saved = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    missing, unexpected = sorted(set(have) - set(saved)), sorted(set(saved) - set(have))
    # A module's extra state (e.g. a text tower's tokenizer, stored as bytes) is not a weight: its size is its content.
    mismatched = sorted(k for k in set(have) & set(saved) if have[k] != saved[k] and not k.endswith("_extra_state"))
    if missing or unexpected or mismatched:
        example = (
            f"{mismatched[0]}: checkpoint {saved[mismatched[0]]} vs config {have[mismatched[0]]}"
            if mismatched
            else f"{(missing or unexpected)[0]} {'missing from the checkpoint' if missing else 'not in the network'}"
        )
        raise CheckpointError(
            f"the weights in {source} do not fit the configured network ({len(mismatched)} tensors of another "
            f"shape, {len(missing)} missing, {len(unexpected)} unexpected; e.g. {example}); resume with the "
            "network settings the checkpoint was trained with."
        )


def _continue_in_checkpoint_folder(trainer, ckpt_path: str | None) -> None:
    """Resuming from runs/<name>/version_N/checkpoints/X.ckpt logs into version_N again, so a
    resumed run continues the same folder instead of starting version_N+1; the CSV log is
    continued (Lightning's CSV logger would delete the rows written before the resume)."""
    if not ckpt_path:
        return
    match = re.search(r"(version_\d+)/checkpoints/[^/]+\.ckpt$", str(Path(ckpt_path).as_posix()))
    logger = trainer.logger
    if match and isinstance(logger, CSVLogger) and logger._version is None:
        logger._version = match.group(1)
    if isinstance(logger, CSVLogger) and trainer.is_global_zero:
        continue_csv_log(logger)


@contextmanager
def naming(local: Path | None, source: str | None) -> Iterator[None]:
    """Errors about a downloaded checkpoint name its URL, not the temporary file it was read from."""
    try:
        yield
    except CheckpointError as err:
        if local is None or source is None:
            raise
        raise CheckpointError(str(err).replace(str(local), source)) from None


@dataclass
class FitResult:
    """Where a finished ``fit`` put its outputs."""

    run_dir: Path
    last_checkpoint: Path | None
    trainer: L.Trainer


def fit(arguments: Sequence[str], *, callbacks: Sequence[L.Callback] = ()) -> FitResult:
    """Run ``lit-genvision fit`` in this process: ``arguments`` are the command's (``--config …``,
    ``--key value`` overrides, as a W&B sweep file writes them); ``callbacks`` join the trainer's.
    User errors raise (``ValueError``, ``CheckpointError``, …) instead of printing."""
    cli = GenVisionCLI(args=["fit", *arguments], callbacks=list(callbacks))
    trainer = cli.trainer
    ckpt = trainer.checkpoint_callback
    last = getattr(ckpt, "last_model_path", "") or None
    return FitResult(Path(trainer.log_dir or trainer.default_root_dir), Path(last) if last else None, trainer)
