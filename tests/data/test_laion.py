from __future__ import annotations

from collections import Counter

import pytest
import torch
from fixtures.formats import laion_samples, write_laion_parquet, write_laion_tar
from torch.utils.data import DataLoader

from lit_genvision.data.laion import (
    LaionDataModule,
    LaionFilters,
    LaionStream,
    buffer_shuffle,
    count_samples,
    list_shards,
    plan_samples,
    seeded_rng,
)


def write_shards(root, shards: int = 3, per_shard: int = 6) -> list[dict]:
    everything = []
    for k in range(shards):
        samples = laion_samples(per_shard, seed=k)
        write_laion_tar(root / f"{k:05d}.tar", samples)
        everything += samples
    return everything


def keys(stream) -> list[str]:
    return [s["key"] for s in stream]


def test_reads_every_sample_with_caption_from_tars(tmp_path):
    samples = write_shards(tmp_path)
    items = list(LaionStream(list_shards(tmp_path), 16, LaionFilters()))
    expected = [s["key"] for s in samples if s["txt"]]  # empty captions are filtered by default
    assert [i["key"] for i in items] == expected
    first = next(s for s in samples if s["txt"])
    assert items[0]["text"] == first["txt"] and items[0]["image"].shape == (3, 16, 16)
    assert items[0]["image"].dtype == torch.uint8


def test_parquet_equals_tar(tmp_path):
    samples = laion_samples(8, seed=3)
    write_laion_tar(tmp_path / "t" / "00000.tar", samples)
    write_laion_parquet(tmp_path / "p" / "part-00000.parquet", samples)
    a = list(LaionStream(list_shards(tmp_path / "t"), 16, LaionFilters()))
    b = list(LaionStream(list_shards(tmp_path / "p"), 16, LaionFilters()))
    assert [x["key"] for x in a] == [x["key"] for x in b]
    assert all(torch.equal(x["image"], y["image"]) and x["text"] == y["text"] for x, y in zip(a, b, strict=True))


def test_filters_on_size_aspect_caption_and_scores(tmp_path):
    samples = write_shards(tmp_path, shards=1, per_shard=20)
    f = LaionFilters(min_size=40, max_aspect=1.5, max_pwatermark=0.5)
    got = set(keys(LaionStream(list_shards(tmp_path), 8, f)))

    def ok(s):
        w, h = s["json"]["width"], s["json"]["height"]
        return s["txt"] and min(w, h) >= 40 and max(w, h) <= 1.5 * min(w, h) and s["json"]["pwatermark"] <= 0.5

    assert got == {s["key"] for s in samples if ok(s)}
    assert 0 < len(got) < 20


@pytest.mark.parametrize("shards, workers", [(4, 2), (1, 2)])  # enough shards to deal out; fewer than consumers
def test_finite_stream_two_ranks_with_worker_processes_see_each_sample_exactly_once(tmp_path, shards, workers):
    samples = write_shards(tmp_path, shards=shards, per_shard=7)
    seen: Counter = Counter()
    for rank in range(2):
        stream = LaionStream(list_shards(tmp_path), 8, LaionFilters(min_caption_chars=0), rank=rank, world=2)
        loader = DataLoader(stream, batch_size=3, num_workers=workers)
        for batch in loader:
            seen.update(batch["key"])
    assert set(seen) == {s["key"] for s in samples}
    assert set(seen.values()) == {1}


def test_truncated_shard_is_skipped_with_a_warning(tmp_path):
    write_shards(tmp_path, shards=2, per_shard=6)
    shard = tmp_path / "00000.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="00000.tar is truncated or damaged after"):
        got = keys(LaionStream(list_shards(tmp_path), 8, LaionFilters(min_caption_chars=0)))
    assert sum(k.startswith("00001") for k in got) == 6  # the next shard is read whole
    assert 0 < sum(k.startswith("00000") for k in got) < 6


def test_corrupt_image_is_skipped_counted_and_warned(tmp_path):
    samples = laion_samples(5, seed=0)
    samples[2]["jpg"] = samples[2]["jpg"][:100]
    write_laion_tar(tmp_path / "00000.tar", samples)
    stream = LaionStream(list_shards(tmp_path), 8, LaionFilters(min_caption_chars=0))
    with pytest.warns(UserWarning, match=f"skipped unreadable LAION image {samples[2]['key']}"):
        got = keys(stream)
    assert samples[2]["key"] not in got and len(got) == 4 and stream.skipped.count == 1


def test_missing_shards_name_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="no LAION shards under .*webdataset shards"):
        LaionDataModule(root=str(tmp_path)).setup()


def test_parquet_without_caption_column_is_a_clear_error(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"jpg": [b"x"], "alt": ["y"]}), tmp_path / "a.parquet")
    with pytest.raises(ValueError, match="expected an image column .* and a caption column"):
        list(LaionStream(list_shards(tmp_path), 8, LaionFilters()))


def test_datamodule_batches(tmp_path):
    write_shards(tmp_path, shards=3, per_shard=4)
    dm = LaionDataModule(root=str(tmp_path), image_size=16, val_shards=1, batch_size=4, num_workers=0)
    loader = dm.train_dataloader()
    assert len(loader) == 8 // 4  # the raw train samples, in full batches
    batch = dm.on_after_batch_transfer(next(iter(loader)), 0)
    assert batch["image"].shape == (4, 3, 16, 16) and batch["image"].dtype == torch.float32
    assert len(batch["text"]) == 4 and all(isinstance(t, str) for t in batch["text"])
    assert len(list(dm.val_dataloader())) > 0


def write_sizes(root, sizes: list[int]) -> list[dict]:
    everything = []
    for k, n in enumerate(sizes):
        samples = laion_samples(n, seed=k)
        write_laion_tar(root / f"{k:05d}.tar", samples)
        everything += samples
    return everything


def test_count_samples_reads_tar_headers_and_parquet_footers(tmp_path):
    samples = laion_samples(9, seed=0)
    tar = write_laion_tar(tmp_path / "00000.tar", samples)
    assert count_samples(tar) == 9
    assert count_samples(write_laion_parquet(tmp_path / "a.parquet", samples[:4])) == 4
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2])
    assert 0 < count_samples(tar) < 9  # what precedes the damage


@pytest.mark.parametrize("workers", [0, 2])
def test_training_stream_gives_both_ranks_the_same_full_batches_whatever_the_filters_drop(tmp_path, workers):
    write_sizes(tmp_path, [2, 9, 3])  # rank 0 gets 5 raw samples, rank 1 nine: cycling evens them out
    counts = []
    for rank in range(2):
        stream = LaionStream(
            list_shards(tmp_path), 8, LaionFilters(min_size=30), rank, 2, shuffle=True, batches_per_rank=3, batch_size=2
        )
        loader = DataLoader(stream, batch_size=2, num_workers=workers)
        batches = [list(b["key"]) for b in loader]
        assert len(loader) == 3 and all(len(b) == 2 for b in batches)
        counts.append(len(batches))
    assert counts == [3, 3]


def test_samples_per_epoch_sets_the_pass_length_and_too_few_is_a_clear_error(tmp_path):
    write_sizes(tmp_path, [4, 4])
    dm = LaionDataModule(root=str(tmp_path), image_size=8, batch_size=2, num_workers=0, samples_per_epoch=11)
    assert dm.batches_per_rank() == 5 and len(dm.train_dataloader()) == 5
    assert len(list(dm.train_dataloader())) == 5
    dm = LaionDataModule(root=str(tmp_path), image_size=8, batch_size=16, num_workers=0)
    with pytest.raises(ValueError, match="8 samples per epoch make no full batch of 16 on each of 1 ranks"):
        dm.train_dataloader()


def test_filters_that_keep_no_training_sample_are_a_clear_error(tmp_path):
    write_sizes(tmp_path, [3, 3])
    stream = LaionStream(list_shards(tmp_path), 8, LaionFilters(min_size=1000), shuffle=True, batches_per_rank=2)
    with pytest.raises(RuntimeError, match="no LAION training sample passed the filters"):
        list(stream)


@pytest.mark.parametrize("workers", [0, 2])
def test_validation_under_ddp_pads_ranks_to_the_same_batches_in_order(tmp_path, workers):
    samples = write_sizes(tmp_path, [5, 2, 7])
    filters = LaionFilters(min_size=30)
    kept = keys(LaionStream(list_shards(tmp_path), 8, filters))  # the single-process validation stream
    plan = plan_samples(list_shards(tmp_path), filters)
    assert len(plan) == len(kept) and len(kept) % 3  # padding is needed for 3 ranks
    per_rank = []
    for rank in range(3):
        stream = LaionStream(list_shards(tmp_path), 8, filters, rank, 3, batch_size=2, plan=plan)
        loader = DataLoader(stream, batch_size=2, num_workers=workers)
        got = [k for b in loader for k in b["key"]]
        assert got == [k for i, k in enumerate(kept * 2) if i % 3 == rank][: len(stream)]  # dealt out in order
        per_rank.append((len(loader), len(got)))
    assert len(set(per_rank)) == 1 and per_rank[0][1] == -(-len(kept) // 3)
    assert {s["key"] for s in samples} >= set(kept)


def test_validation_plan_replaces_an_image_that_fails_to_decode_by_a_neighbour(tmp_path):
    samples = laion_samples(6, seed=0)
    for i in (1, 5):  # header readable, data truncated: planned, then fails to decode
        samples[i]["jpg"] = samples[i]["jpg"][: len(samples[i]["jpg"]) // 2]
    write_laion_tar(tmp_path / "00000.tar", samples)
    filters = LaionFilters(min_caption_chars=0)
    plan = plan_samples(list_shards(tmp_path), filters)
    assert len(plan) == 6
    with pytest.warns(UserWarning, match="skipped unreadable LAION image"):
        got = keys(LaionStream(list_shards(tmp_path), 8, filters, 1, 2, plan=plan))  # rank 1 of 2: 1, 3, 5
    assert got == [samples[3]["key"]] * 3  # still the 3 samples planned for the rank


def test_buffer_shuffle_is_a_seeded_permutation():
    a = list(buffer_shuffle(range(50), 8, seeded_rng(0, 1)))
    assert sorted(a) == list(range(50)) and a != list(range(50))
    assert a == list(buffer_shuffle(range(50), 8, seeded_rng(0, 1)))
    assert a != list(buffer_shuffle(range(50), 8, seeded_rng(0, 2)))


def test_names_moved_to_shards_and_stream_stay_importable_from_laion():
    """Configs and checkpoints name classes by dotted path; the split must not break one."""
    import importlib

    from lit_genvision.data import laion, shards, stream

    for name in laion.__all__:
        obj = getattr(laion, name)
        home = next((m for m in (shards, stream) if hasattr(m, name)), laion)
        assert getattr(home, name) is obj, name
    for path in ("lit_genvision.data.LaionDataModule", "lit_genvision.data.laion.LaionFilters"):
        module, _, name = path.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type)
    assert issubclass(laion.LaionStream, stream.ShardStream)
