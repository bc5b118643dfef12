"""Say at the end of fit where the run's outputs are."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from lit_genvision.callbacks.sample_grid import run_dir


class RunSummary(L.Callback):
    """Prints the run folder, the best and last checkpoints and the metrics file."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        lines = [f"Run folder: {run_dir(trainer)}"]
        ckpt = trainer.checkpoint_callback
        if isinstance(ckpt, ModelCheckpoint):
            if ckpt.last_model_path:
                lines.append(f"Last checkpoint: {ckpt.last_model_path}")
            if ckpt.best_model_path and ckpt.best_model_path != ckpt.last_model_path:
                lines.append(f"Best checkpoint: {ckpt.best_model_path}")
        rank_zero_info("\n".join(lines))
