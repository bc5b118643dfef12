"""ShardStream on its own, with a codec that decodes nothing: sharding, fixed-length passes, resume,
planned validation and the messages, independent of LAION's file formats."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from torch.utils.data import DataLoader

from lit_genvision.data.base import ImageDataModule
from lit_genvision.data.stream import PassLoader, ShardStream, plan_entries

SIZES = {"a": 5, "b": 9, "c": 3, "d": 6}  # raw samples per shard, uneven on purpose
SHARDS = [Path(name) for name in SIZES]


class Numbers:
    """Shard ``x`` holds raw samples ``x0, x1, …``; every third position is dropped by the "filter"."""

    name = "number"
    filter_hint = "keep more numbers"

    def __init__(self, drop_all: bool = False) -> None:
        self.drop_all = drop_all
        self.calls: list[tuple[str, bool]] = []  # (key, keep_only) of each decode, in this process

    def read(self, shard: Path):
        return iter(f"{shard.name}{i}" for i in range(SIZES[shard.name]))

    def decode(self, raw: str, keep_only: bool = False):
        self.calls.append((raw, keep_only))
        if self.drop_all or int(raw[1:]) % 3 == 2:
            return None
        return {"key": raw} if keep_only else {"key": raw, "value": int(raw[1:])}


def kept() -> list[str]:
    return [f"{s}{i}" for s, n in SIZES.items() for i in range(n) if i % 3 != 2]


def training(rank: int = 0, world: int = 1, codec: Numbers | None = None, **kwargs) -> ShardStream:
    args = {"seed": 3, "shuffle": True, "shuffle_buffer": 4, "batches_per_rank": 5, "batch_size": 2} | kwargs
    return ShardStream(SHARDS, codec or Numbers(), rank, world, **args)


def batches(stream: ShardStream, workers: int) -> list[list[str]]:
    return [list(b["key"]) for b in DataLoader(stream, batch_size=stream.batch_size, num_workers=workers)]


def test_finite_stream_over_two_ranks_and_two_workers_yields_each_kept_sample_once():
    seen: Counter = Counter()
    for rank in range(2):
        seen.update(k for b in batches(ShardStream(SHARDS, Numbers(), rank, 2, batch_size=3), 2) for k in b)
    assert sorted(seen) == sorted(kept()) and set(seen.values()) == {1}


def test_unshuffled_single_consumer_stream_is_the_kept_samples_in_shard_order():
    assert [item["key"] for item in ShardStream(SHARDS, Numbers())] == kept()


@pytest.mark.parametrize("workers", [0, 2])
def test_every_rank_yields_full_batches_and_a_pass_is_a_function_of_seed_and_pass(workers):
    per_rank = [batches(training(rank, 2), workers) for rank in range(2)]
    assert [len(b) for b in per_rank] == [5, 5] and all(len(x) == 2 for b in per_rank for x in b)
    assert batches(training(0, 2), workers) == per_rank[0]
    later = training(0, 2)
    later.pass_index = 1
    assert batches(later, workers) != per_rank[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_resumed_pass_yields_the_batches_the_uninterrupted_pass_yields_after_skip(workers):
    uninterrupted = training()
    uninterrupted.pass_index = 2
    full = batches(uninterrupted, workers)
    for skip in range(len(full) + 1):
        resumed = training()
        resumed.pass_index, resumed.skip = 2, skip
        assert batches(resumed, workers) == full[skip:]


def test_skipped_samples_are_judged_with_keep_only_and_never_fully_decoded():
    codec = Numbers()
    resumed = training(codec=codec, shuffle_buffer=0)
    resumed.skip = 2  # two batches of two: four kept samples to pass over
    yielded = [item["key"] for item in resumed]
    judged = [key for key, keep_only in codec.calls if keep_only]
    assert sum(int(k[1:]) % 3 != 2 for k in judged) == 4  # exactly the skipped kept samples …
    assert not any(keep_only for _, keep_only in codec.calls[len(judged) :])  # … and only before the rest
    full_kept = [key for key, keep_only in codec.calls if not keep_only and int(key[1:]) % 3 != 2]
    assert full_kept == yielded and len(yielded) == 3 * 2


def test_pass_loader_takes_the_pass_and_skip_from_the_data_module_state():
    dm = ImageDataModule(batch_size=2)
    dm.load_state_dict({"train_pass": 1, "batches_in_pass": 3})  # as a checkpoint restores it
    stream = training()
    resumed = [list(b["key"]) for b in PassLoader(stream, owner=dm, batch_size=2)]
    assert (stream.pass_index, stream.skip) == (1, 3)
    uninterrupted = training()
    uninterrupted.pass_index = 1
    assert resumed == batches(uninterrupted, 0)[3:]
    next_pass = [list(b["key"]) for b in PassLoader(stream, owner=dm, batch_size=2)]
    assert (stream.pass_index, stream.skip) == (2, 0) and len(next_pass) == 5


@pytest.mark.parametrize("workers", [0, 2])
def test_planned_validation_deals_padded_entries_out_in_order(workers):
    plan = plan_entries(SHARDS, Numbers().read, lambda raw: int(raw[1:]) % 3 != 2)
    assert len(plan) == len(kept()) == 16
    streams = [ShardStream(SHARDS, Numbers(), rank, 3, batch_size=2, plan=plan) for rank in range(3)]
    got = [[k for b in batches(stream, workers) for k in b] for stream in streams]
    padded = kept() + kept()[:2]  # 16 → 18, a multiple of 3 ranks
    assert got == [padded[r::3] for r in range(3)]


def test_messages_name_the_codec():
    with pytest.raises(TypeError, match="a finite number stream has no length"):
        len(ShardStream(SHARDS, Numbers()))
    with pytest.raises(RuntimeError, match="no number training sample passed the filters .*; keep more numbers"):
        list(training(codec=Numbers(drop_all=True)))
    with pytest.raises(ValueError, match="shuffle_buffer must be 0"):
        training(shuffle_buffer=-1)
