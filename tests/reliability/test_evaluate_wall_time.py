"""Issue 13, defect 7: `evaluate` records the wall time the evaluation took on the clock (the batch
loop once overwrote the timer's start with the batch offset)."""

from __future__ import annotations

import time

from lit_genvision.cli import main
from lit_genvision.experiments.store import ResultsStore


def test_recorded_wall_time_matches_the_clock(tiny_checkpoint, tmp_path):
    store = tmp_path / "r.sqlite"
    # 200 samples in batches of 40: five batches, the last starting at sample 160.
    argv = ["evaluate", "--ckpt", str(tiny_checkpoint), "--num-samples", "200", "--batch-size", "40"]
    t0 = time.perf_counter()
    assert main([*argv, "--steps", "10", "--metrics", "digits_fd", "--store", str(store)]) == 0
    measured = time.perf_counter() - t0
    walls = {r["wall_time_s"] for r in ResultsStore(store).records()}
    assert len(walls) == 1  # every metric of one evaluation carries the same wall time
    recorded = walls.pop()
    assert 0 < recorded <= measured
    assert recorded >= 0.5 * measured, (recorded, measured)
