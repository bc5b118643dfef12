"""LAION streams under DDP: uneven shards and filters give every rank the same number of batches,
each pass reshuffles shards and samples reproducibly, and a pass resumes part-way exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.formats import laion_samples, write_laion_tar
from tests_helpers import run_rank_job

from lit_genvision.data.laion import LaionDataModule, LaionFilters

JOB = Path(__file__).resolve().parent / "laion_ddp_job.py"


def write_shards(root: Path, sizes: list[int]) -> None:
    for k, n in enumerate(sizes):
        write_laion_tar(root / f"{k:05d}.tar", laion_samples(n, seed=k))


def train_keys(dm: LaionDataModule) -> list[list[str]]:
    return [list(batch["key"]) for batch in dm.train_dataloader()]


def module(root: Path, **kwargs) -> LaionDataModule:
    args = {"image_size": 8, "batch_size": 2, "num_workers": 0, "pin_memory": False, "filters": LaionFilters()}
    return LaionDataModule(root=str(root), **(args | kwargs))


def at(dm: LaionDataModule, pass_index: int, skip: int = 0) -> LaionDataModule:
    """The data module as a checkpoint at (pass, batches trained on) restores it."""
    dm.load_state_dict({"train_pass": pass_index, "batches_in_pass": skip})
    return dm


def test_two_rank_ddp_fit_on_uneven_filtered_shards_finishes_with_equal_batch_counts(tmp_path):
    write_shards(tmp_path / "data", [2, 9, 3, 5])  # the last shard is the validation shard
    run_rank_job([str(JOB), str(tmp_path / "data"), str(tmp_path)], "2-rank LAION job")
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    # 14 raw train samples, 2 ranks × batch 2: 3 full batches per rank per epoch, whatever the filters drop
    assert r0["len"] == r1["len"] == 3
    for epoch in ("0", "1"):
        assert len(r0["train"][epoch]) == len(r1["train"][epoch]) == 3
        assert all(len(batch) == 2 for batch in r0["train"][epoch] + r1["train"][epoch])
        assert r0["val"][epoch] == r1["val"][epoch] > 0
    assert r0["train"]["0"] != r0["train"]["1"]  # the next pass is reshuffled


def test_shard_and_sample_order_change_between_passes_and_repeat_for_the_same_seed(tmp_path):
    write_shards(tmp_path, [3, 4, 2, 5, 3, 4])
    dm = module(tmp_path, shuffle_buffer=0, seed=1, filters=LaionFilters(min_caption_chars=0))

    def shard_order(pass_index: int, seed: int = 1) -> list[str]:
        dm = at(module(tmp_path, shuffle_buffer=0, seed=seed, filters=LaionFilters(min_caption_chars=0)), pass_index)
        order = [key[:5] for batch in train_keys(dm) for key in batch]
        return list(dict.fromkeys(order))  # shards in the order they are first read

    assert sorted(shard_order(0)) == [f"{k:05d}" for k in range(6)]
    assert shard_order(0) != shard_order(1)
    assert shard_order(0) == shard_order(0) and shard_order(1) == shard_order(1)
    assert shard_order(0, seed=2) != shard_order(0)
    assert [p.name for p in dm.stream("train").shard_order()] != [f"{k:05d}.tar" for k in range(6)]

    def sample_order(pass_index: int, seed: int = 1) -> list[list[str]]:
        return train_keys(at(module(tmp_path, shuffle_buffer=8, seed=seed), pass_index))

    assert sample_order(0) != sample_order(1)
    assert sample_order(1) == sample_order(1)
    assert sample_order(1, seed=5) != sample_order(1)
    # the buffer also reorders samples within a shard, which shard shuffling alone does not
    buffered = [k for batch in sample_order(0) for k in batch]
    assert any(a[:5] == b[:5] and a > b for a, b in zip(buffered, buffered[1:], strict=False))


@pytest.mark.parametrize("workers, skip", [(0, 2), (2, 1), (2, 2), (2, 3)])
def test_a_pass_resumed_part_way_yields_the_batches_the_uninterrupted_pass_yields_next(tmp_path, workers, skip):
    write_shards(tmp_path, [2, 9, 3, 5])
    kwargs = {"num_workers": workers, "shuffle_buffer": 4, "seed": 7, "filters": LaionFilters(min_size=30)}
    full = train_keys(at(module(tmp_path, **kwargs), 1))
    assert len(full) == 19 // 2  # one rank: 19 raw samples // batch 2
    resumed_dm = at(module(tmp_path, **kwargs), 1, skip)
    resumed = train_keys(resumed_dm)
    assert resumed == full[skip:]
    assert (resumed_dm.train_pass, resumed_dm.batches_in_pass) == (1, skip)
