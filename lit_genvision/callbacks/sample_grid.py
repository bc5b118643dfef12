"""Write a grid of samples from the (EMA) model to the run folder and the logger."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_info

from lit_genvision.callbacks.ema import find_ema
from lit_genvision.callbacks.images import grid_image, save_images, upscale_for_view
from lit_genvision.callbacks.rng import rng_preserved


def run_dir(trainer: L.Trainer) -> Path:
    """The folder of this run: the logger's version folder, or the trainer's root dir."""
    return Path(trainer.log_dir or trainer.default_root_dir)


class SampleGrid(L.Callback):
    """Every ``every_n_epochs`` epochs and at the end of fit, sample ``num`` images with a fixed
    seed and write ``samples/epoch_XXXX.png`` (rank 0 only).

    Args:
        num: images in the grid.
        every_n_epochs: period in epochs (0: only at the end of fit).
        steps: sampler steps (the model's default when omitted).
        seed: seed of the noise, fixed so grids of successive epochs are comparable.
    """

    def __init__(self, num: int = 64, every_n_epochs: int = 10, steps: int | None = None, seed: int = 0) -> None:
        self.num, self.every_n_epochs, self.steps, self.seed = num, every_n_epochs, steps, seed
        self.last_path: Path | None = None

    def _write(self, trainer: L.Trainer, pl_module: L.LightningModule, name: str) -> None:
        folder = run_dir(trainer)  # on every rank: trainer.log_dir is a collective (broadcast) under DDP
        if not trainer.is_global_zero or not hasattr(pl_module, "sample"):
            return
        ema = find_ema(trainer)
        g = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        with rng_preserved(), ema.swapped(pl_module) if ema is not None else torch.no_grad():
            images = pl_module.sample(self.num, steps=self.steps, generator=g)
        images = upscale_for_view(images)
        self.last_path = save_images(images, folder / "samples" / f"{name}.png")
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples", grid_image(images), trainer.global_step, dataformats="HWC")
            elif isinstance(logger, WandbLogger):
                logger.log_image("samples", [grid_image(images)], step=trainer.global_step)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if self.every_n_epochs and epoch % self.every_n_epochs == 0:
            self._write(trainer, pl_module, f"epoch_{epoch:04d}")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module, "final")
        if self.last_path is not None:
            rank_zero_info(f"Samples: {self.last_path}")
