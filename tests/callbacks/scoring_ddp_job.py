"""A tiny digits DDPM fit with ``QualityScore`` on the CPU, on 1 or 2 gloo processes, launched by
tests/callbacks/test_scoring.py as its own script so that Lightning's launcher can start the
second rank by running this file again. Each rank writes ``rank<r>.json``: the scores it logged
and the sample batches it generated for each.

    python tests/callbacks/scoring_ddp_job.py OUT_DIR DEVICES SEED NUM BATCH EVERY MAX_STEPS
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests_helpers import tiny_diffusion_args  # noqa: E402

import lit_genvision.callbacks.scoring as scoring  # noqa: E402
from lit_genvision.callbacks import QualityScore  # noqa: E402
from lit_genvision.cli import main  # noqa: E402


class Recording(QualityScore):
    """QualityScore that writes, on its rank, (global step, values, batches drawn) of every score."""

    def __init__(self, out: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.out = out
        self.scores: list[dict] = []
        self.drawn: list[int] = []

    def score(self, trainer, pl_module):
        self.drawn = []
        values = super().score(trainer, pl_module)
        self.scores.append({"step": trainer.global_step, "values": values, "batches": self.drawn})
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.scores))
        return values


def _recording_batches(original, callback: Recording):
    """``generate_batches`` that notes the index of every batch this rank generates."""

    def batches(*args, **kwargs):
        for batch in original(*args, **kwargs):
            callback.drawn.append(batch.index)
            yield batch

    return batches


if __name__ == "__main__":
    out, devices = Path(sys.argv[1]), int(sys.argv[2])
    seed, num, batch, every, max_steps = (int(a) for a in sys.argv[3:8])
    callback = Recording(out, metrics="digits_fd", every_n_steps=every, num_samples=num, seed=seed, batch_size=batch)
    scoring.generate_batches = _recording_batches(scoring.generate_batches, callback)
    extra = ["--trainer.accelerator", "cpu", "--trainer.devices", str(devices)]
    extra += ["--trainer.strategy", "ddp" if devices > 1 else "auto"]
    code = main(["fit", *tiny_diffusion_args(out, name="scored", max_steps=max_steps), *extra], callbacks=[callback])
    sys.exit(code)
