"""A two-process DDP job on the CPU (gloo), launched by tests/test_ddp.py as its own script so that
Lightning's launcher can start the second rank by running this file again.

    python tests/ddp_job.py OUT_DIR DEVICES [fail_at_step | gan]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tests_helpers import ROOT  # noqa: E402

from lit_genvision.callbacks.ema import find_ema  # noqa: E402
from lit_genvision.cli import main  # noqa: E402


class Record(L.Callback):
    """Writes, per rank, the train-sample indices seen in each epoch, the final weights and EMA."""

    def __init__(self, out: Path, fail_at: int | None) -> None:
        self.out, self.fail_at, self.seen = out, fail_at, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.fail_at is not None and trainer.global_step == self.fail_at and trainer.global_rank == 1:
            raise RuntimeError("rank 1 fails on purpose")
        self.seen.setdefault(trainer.current_epoch, []).extend(batch["index"].tolist())

    def on_fit_end(self, trainer, pl_module):
        ema = find_ema(trainer)
        torch.save(
            {
                "seen": self.seen,
                "weights": pl_module.state_dict(),
                "ema": ema.state_dict()["shadow"],
                "val_acc": float(trainer.callback_metrics.get("val/acc", float("nan"))),
            },
            self.out / f"rank{trainer.global_rank}.pt",
        )


if __name__ == "__main__":
    out, devices = Path(sys.argv[1]), int(sys.argv[2])
    gan = len(sys.argv) > 3 and sys.argv[3] == "gan"
    fail_at = int(sys.argv[3]) if len(sys.argv) > 3 and not gan else None
    os.environ.setdefault("LIT_GENVISION_CACHE", str(out / "cache"))
    main(
        [
            "fit",
            "--config",
            str(ROOT / "configs" / ("gan/digits_conditional.yaml" if gan else "classifier/digits.yaml")),
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            str(devices),
            "--trainer.strategy",
            "ddp" if devices > 1 else "auto",
            "--trainer.max_epochs",
            "2",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
            "--data.init_args.batch_size",
            "32",
            "--trainer.default_root_dir",
            str(out),
            "--trainer.logger.init_args.save_dir",
            str(out),
            "--trainer.logger.init_args.name",
            "ddp",
            *([] if gan else ["--trainer.callbacks+=lit_genvision.callbacks.EMA"]),
            *(["--trainer.max_epochs", "1", "--trainer.limit_val_batches", "0"] if gan else []),
        ],
        callbacks=[Record(out, fail_at)],
    )
