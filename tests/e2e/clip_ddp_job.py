"""The tiny digits CLIP fitted on two gloo ranks through the CLI (Lightning's DDP launcher runs this
file again for rank 1); each rank saves its final weights and the metrics it logged.

    python tests/e2e/clip_ddp_job.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from e2e.test_clip import tiny_clip_args  # noqa: E402
from lit_genvision.cli import main  # noqa: E402


class Record(L.Callback):
    def __init__(self, out: Path) -> None:
        self.out = out

    def on_fit_end(self, trainer, pl_module):
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        torch.save({"weights": pl_module.state_dict(), "metrics": metrics}, self.out / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    out = Path(sys.argv[1])
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    sys.exit(main(["fit", *tiny_clip_args(out), *ddp, "--data.init_args.batch_size", "32"], callbacks=[Record(out)]))
