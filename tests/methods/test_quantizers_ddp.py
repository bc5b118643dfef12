"""The stateful quantizers under DDP: two gloo ranks on different data keep one codebook, and the EMA
update they make together equals one process's update on the global batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests_helpers import run_rank_job

from .quantizer_ddp_job import KINDS, STEPS, batch, build

JOB = Path(__file__).resolve().parent / "quantizer_ddp_job.py"


@pytest.fixture(scope="module")
def states(tmp_path_factory) -> dict[str, list[dict]]:
    out = tmp_path_factory.mktemp("quantizer_ddp")
    run_rank_job([str(JOB), str(out)], "2-rank quantizer job", timeout=120)
    return {kind: [torch.load(out / f"{kind}_rank{r}.pt", weights_only=True) for r in (0, 1)] for kind in KINDS}


def test_ema_codebook_on_two_ranks_equals_one_process_on_the_global_batch(states):
    single = build("ema")
    for step in range(STEPS):
        single(torch.cat([batch(0, step), batch(1, step)]))
    for rank_state in states["ema"]:
        for name in ("codebook", "cluster_size", "embed_sum"):
            torch.testing.assert_close(rank_state[name], getattr(single, name))
    lone = build("ema")  # a rank that did not all-reduce would have updated on its own half only
    for step in range(STEPS):
        lone(batch(0, step))
    assert not torch.allclose(lone.codebook, single.codebook, atol=1e-3)


@pytest.mark.parametrize("kind", ["kmeans", "kmeans_restart"])
def test_kmeans_init_and_dead_code_restart_leave_both_ranks_with_one_codebook(states, kind):
    rank0, rank1 = states[kind]
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), f"{kind}: {name} differs between ranks"


def test_the_restart_case_restarted_codes(states):
    """Guards the restart test above: with restarts on, the codebook differs from k-means alone."""
    assert not torch.equal(states["kmeans"][0]["codebook"], states["kmeans_restart"][0]["codebook"])
