"""A two-process DDP fit on a LAION stream on the CPU (gloo), launched by test_laion_ddp.py as its own
script so that Lightning's launcher can start the second rank by running this file again.

    python tests/reliability/laion_ddp_job.py ROOT OUT_DIR

Each rank writes OUT_DIR/rank{r}.json: the keys of every training batch per epoch and the number
of validation batches per epoch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import torch

from lit_genvision.data.laion import LaionDataModule, LaionFilters


class Tiny(L.LightningModule):
    """One parameter pulled towards the mean pixel: enough for DDP to all-reduce a gradient every step."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return ((batch["image"].mean() - self.w) ** 2).sum()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss = ((batch["image"].mean() - self.w) ** 2).sum()
        self.log("val/loss", loss, sync_dist=True, batch_size=len(batch["key"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Record(L.Callback):
    """Collects, per epoch, the keys of the training batches and the count of validation batches."""

    def __init__(self, out: Path) -> None:
        self.out, self.train, self.val = out, {}, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.train.setdefault(str(trainer.current_epoch), []).append(list(batch["key"]))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        epoch = str(trainer.current_epoch)
        self.val[epoch] = self.val.get(epoch, 0) + 1

    def on_fit_end(self, trainer, pl_module):
        record = {"train": self.train, "val": self.val, "len": len(trainer.train_dataloader)}
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    dm = LaionDataModule(
        root=str(root),
        image_size=8,
        val_shards=1,
        batch_size=2,
        num_workers=1,
        filters=LaionFilters(min_size=30),
        pin_memory=False,
        shuffle_buffer=4,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=2,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(out),
        callbacks=[Record(out)],
    )
    trainer.fit(Tiny(), datamodule=dm)
