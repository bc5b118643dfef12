"""Write a grid of samples from the (EMA) model to the run folder and the logger."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_info

from lit_genvision.callbacks.ema import find_ema
from lit_genvision.callbacks.images import grid_image, save_gif, save_images, upscale_for_view
from lit_genvision.callbacks.rng import rng_preserved
from lit_genvision.metrics.frames import is_video


def run_dir(trainer: L.Trainer) -> Path:
    """The folder of this run: the logger's version folder, or the trainer's root dir."""
    return Path(trainer.log_dir or trainer.default_root_dir)


class SampleGrid(L.Callback):
    """Every ``every_n_epochs`` epochs and at the end of fit, sample ``num`` images with a fixed
    seed and write ``samples/epoch_XXXX.png`` (rank 0 only). A model that samples videos
    (N, C, T, H, W) gets one row of frames per video in the PNG and ``samples/epoch_XXXX.gif`` beside it.

    Args:
        num: images (or videos) in the grid.
        every_n_epochs: period in epochs (0: only at the end of fit).
        steps: sampler steps (the model's default when omitted).
        seed: seed of the noise, fixed so grids of successive epochs are comparable.
        fps: frames per second of the GIF of a video model.
    """

    def __init__(
        self, num: int = 64, every_n_epochs: int = 10, steps: int | None = None, seed: int = 0, fps: float = 8.0
    ) -> None:
        self.num, self.every_n_epochs, self.steps, self.seed, self.fps = num, every_n_epochs, steps, seed, fps
        self.last_path: Path | None = None

    def _write(self, trainer: L.Trainer, pl_module: L.LightningModule, name: str) -> None:
        folder = run_dir(trainer)  # on every rank: trainer.log_dir is a collective (broadcast) under DDP
        if not trainer.is_global_zero or not hasattr(pl_module, "sample"):
            return
        ema = find_ema(trainer)
        g = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        with rng_preserved(), ema.swapped(pl_module) if ema is not None else torch.no_grad():
            images = pl_module.sample(self.num, steps=self.steps, generator=g)
        images = upscale_for_view(images)  # (N, C, H, W), or videos (N, C, T, H, W): a row of frames each
        self.last_path = save_images(images, folder / "samples" / f"{name}.png")
        if is_video(images):
            square = max(1, round(len(images) ** 0.5))  # videos per row of the GIF
            save_gif(images, folder / "samples" / f"{name}.gif", fps=self.fps, nrow=square)
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
