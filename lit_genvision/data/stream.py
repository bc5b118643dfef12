"""A resumable stream of samples read from shards, dealt out across DDP ranks and DataLoader workers.

The stream knows nothing of what a sample is. A `SampleCodec` tells it how to read a shard's raw
samples (cheap, still encoded: LAION's dicts of bytes, a video reader's clip references) and how
to decode one into a batch item; the stream decides which consumer reads which shard, in which
order, through which shuffle buffer, and which samples a resumed pass skips. It only ever moves raw
samples around and decodes the ones it yields, so a shuffle buffer holds encoded bytes.

Training (`ShardStream` with ``batches_per_rank``): every pass has a fixed length, the same on
every rank, whatever the codec drops, so no rank waits for another in a collective; shards are
shuffled per pass and samples in a seeded buffer; a pass can be resumed part-way through. The
resume position is (pass index, batches of the pass already trained on), kept by the data module
(``ImageDataModule.start_pass`` / ``state_dict``) and handed to the stream by `PassLoader` before
the DataLoader starts its workers. Validation/test stream in shard order, unshuffled: each kept
sample once, and under DDP (a ``plan``, see `plan_entries`) padded by repeating as
``DistributedSampler`` does, so every rank gets the same number of batches.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

if TYPE_CHECKING:
    from lit_genvision.data.base import ImageDataModule


class SampleCodec(Protocol):
    """How a `ShardStream` reads and decodes samples (LAION: `shards.LaionCodec`).

    It is pickled into every DataLoader worker, so it holds settings, not open files.
    """

    #: What the samples are, in messages: "no {name} training sample passed the filters …".
    name: str
    #: The end of that message: what the user can change (e.g. "loosen the LaionFilters or check the shards").
    filter_hint: str

    def read(self, shard: Path) -> Iterator[Any]:
        """The raw samples of ``shard`` in stored order, the same on every call: a sample's position
        in this sequence is its address in a plan."""
        ...

    def decode(self, raw: Any, keep_only: bool = False) -> dict[str, Any] | None:
        """The batch item of ``raw`` (a dict of tensors and strings), or None when a filter drops it
        or it is unreadable (count and warn; never raise mid-epoch). ``keep_only=True``: the stream is
        skipping this sample on resume and needs only the decision, so any non-None value will do
        and the costly part (resizing, decoding every frame) may be left out; the decision must be
        the one ``keep_only=False`` makes."""
        ...


def seeded_rng(*keys: int) -> np.random.Generator:
    """A numpy generator determined by the integers ``keys`` (e.g. seed, pass, consumer)."""
    return np.random.default_rng(np.random.SeedSequence([int(k) % 2**32 for k in keys]))


def buffer_shuffle(items: Iterable[Any], size: int, rng: np.random.Generator) -> Iterator[Any]:
    """Shuffle a stream through a buffer of ``size`` items: once the buffer is full, each new item
    replaces a uniformly drawn one, which is emitted; the rest is emitted shuffled at the end."""
    buf: list[Any] = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        j = int(rng.integers(size))
        yield buf[j]
        buf[j] = item
    rng.shuffle(buf)
    yield from buf


def worker_batches(batches: int, worker: int, workers: int) -> int:
    """How many of batches 0 … batches−1 a DataLoader worker produces: it yields batches
    worker, worker + workers, … (the DataLoader takes batches from its workers round-robin)."""
    return len(range(worker, batches, workers))


def plan_entries(
    shards: list[Path], read: Callable[[Path], Iterable[Any]], keep: Callable[[Any], bool]
) -> list[tuple[int, int]]:
    """(shard index, position in shard) of every raw sample of ``shards`` that ``keep`` accepts, in
    shard order: the ``plan`` of a validation `ShardStream` under DDP. ``keep`` should be cheap
    (headers, not pixels); a planned sample that then fails to decode is replaced at read time by a
    neighbouring one (see `ShardStream`, planned mode)."""
    return [(s, pos) for s, shard in enumerate(shards) for pos, raw in enumerate(read(shard)) if keep(raw)]


class ShardStream(IterableDataset):
    """Streams the items ``codec`` decodes from ``shards``; this consumer's share is fixed by
    (rank, world size, worker id, worker count).

    Three modes:

    * finite (``batches_per_rank`` and ``plan`` None): this consumer's share once, in shard order
      (shards dealt out when there are at least as many as (rank, worker) consumers, otherwise
      every consumer reads every shard and keeps the samples at its own positions), so the job
      sees every kept sample exactly once. ``len()`` is unknown.
    * training (``batches_per_rank`` set): every rank yields exactly ``batches_per_rank`` batches
      of ``batch_size``, whatever the codec drops. Batch i of a rank comes from DataLoader worker
      i mod W; each worker reads its share of the shards and, when that runs out, starts it again
      with the next slot and order (cycle c reads the share of consumer (me + c) mod consumers, so
      c cycles cover every shard), until it has yielded its batches: a pass may repeat samples and
      leave some out, but no rank runs dry before the others. With ``shuffle``, pass p orders the
      shards by a permutation seeded by (seed, p) and each consumer's samples pass through a
      ``shuffle_buffer``-sample buffer seeded by (seed, p, consumer, consumers) (0: no buffer):
      the stream is a function of (seed, pass, rank, world, worker, workers). ``pass_index`` and
      ``skip`` (batches of the pass already trained on) are set before the DataLoader starts its
      workers; the resumed stream yields exactly the batches the uninterrupted one yields after its
      first ``skip`` (skipped samples are still read and judged, ``decode(raw, keep_only=True)``).
    * planned (``plan`` set, for validation under DDP): ``plan`` lists the kept samples as
      (shard index, position in shard) in shard order; it is padded by repeating its first entries
      to a multiple of ``world`` and dealt out as ``DistributedSampler`` does (rank r takes entries
      r, r + world, …), so every rank has the same number of samples and batches, each in order.
    """

    def __init__(
        self,
        shards: list[Path],
        codec: SampleCodec,
        rank: int = 0,
        world: int = 1,
        *,
        seed: int = 0,
        shuffle: bool = False,
        shuffle_buffer: int = 0,
        batches_per_rank: int | None = None,
        batch_size: int = 1,
        plan: list[tuple[int, int]] | None = None,
    ) -> None:
        if shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be 0 (off) or a positive sample count, got {shuffle_buffer}.")
        self.shards, self.codec, self.rank, self.world = shards, codec, rank, world
        self.seed, self.shuffle, self.shuffle_buffer = seed, shuffle, shuffle_buffer
        self.batches_per_rank, self.batch_size, self.plan = batches_per_rank, batch_size, plan
        #: The training pass this stream yields and how many of its batches to skip (set by the
        #: loader in the main process before the workers start).
        self.pass_index, self.skip = 0, 0

    def __len__(self) -> int:
        """Samples this rank yields per pass (the DataLoader divides by its batch size)."""
        if self.batches_per_rank is not None:
            return self.batches_per_rank * self.batch_size
        if self.plan is not None:
            return len(self.rank_plan())
        raise TypeError(f"a finite {self.codec.name} stream has no length known in advance")

    def worker(self) -> tuple[int, int]:
        """(worker, workers) of this DataLoader worker; when resuming a training pass part-way, worker
        k plays worker (k + skip) mod W of the uninterrupted pass, since the DataLoader asks worker 0
        first for the next batch."""
        info = get_worker_info()
        wid, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if self.batches_per_rank is not None:
            wid = (wid + self.skip) % workers
        return wid, workers

    def consumer(self) -> tuple[int, int]:
        """(index, count) of this (rank, worker) among all consumers of the job."""
        wid, workers = self.worker()
        return self.rank * workers + wid, self.world * workers

    def shard_order(self) -> list[Path]:
        """The shards in this pass's order: shuffled by (seed, pass) when shuffling, else as given."""
        if not self.shuffle:
            return list(self.shards)
        perm = seeded_rng(self.seed, self.pass_index).permutation(len(self.shards))
        return [self.shards[i] for i in perm]

    def consumer_samples(self, me: int, consumers: int, cycle: int = 0) -> Iterator[Any]:
        """Raw samples (before decoding and filtering) of consumer slot (me + cycle) mod consumers
        in this pass; cycles after the first also reorder the slot's shards."""
        slot = (me + cycle) % consumers
        order = self.shard_order()
        if len(order) >= consumers:
            mine = order[slot::consumers]
            if self.shuffle and cycle:
                mine = [mine[i] for i in seeded_rng(self.seed, self.pass_index, cycle, slot).permutation(len(mine))]
            for shard in mine:
                yield from self.codec.read(shard)
        else:
            position = 0
            for shard in order:
                for sample in self.codec.read(shard):
                    if position % consumers == slot:
                        yield sample
                    position += 1

    def raw_samples(self) -> Iterator[Any]:
        """This consumer's samples, before decoding and filtering (one cycle)."""
        return self.consumer_samples(*self.consumer())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.plan is not None:
            return self._planned()
        if self.batches_per_rank is not None:
            return self._training()
        return self._finite()

    def _buffered(self, samples: Iterator[Any], me: int, consumers: int) -> Iterator[Any]:
        """``samples`` through the shuffle buffer seeded by (seed, pass, consumer, consumers), if shuffling."""
        if not (self.shuffle and self.shuffle_buffer):
            return samples
        return buffer_shuffle(samples, self.shuffle_buffer, seeded_rng(self.seed, self.pass_index, me, consumers))

    def _finite(self) -> Iterator[dict[str, Any]]:
        me, consumers = self.consumer()
        for sample in self._buffered(self.consumer_samples(me, consumers), me, consumers):
            item = self.codec.decode(sample)
            if item is not None:
                yield item

    def _training(self) -> Iterator[dict[str, Any]]:
        wid, workers = self.worker()
        me, consumers = self.consumer()
        want = worker_batches(self.batches_per_rank, wid, workers) * self.batch_size
        skip = worker_batches(min(self.skip, self.batches_per_rank), wid, workers) * self.batch_size
        if want == 0:
            return

        def cycling() -> Iterator[tuple[int, Any]]:
            empty = 0
            for cycle in itertools.count():
                read = 0
                for sample in self.consumer_samples(me, consumers, cycle):
                    read += 1
                    yield cycle, sample
                empty = 0 if read else empty + 1
                if empty >= consumers:  # every consumer slot came up empty: there is nothing to read
                    raise RuntimeError(
                        f"the {len(self.shards)} train shards hold no readable sample; check the shards under the root."
                    )

        n, last_kept = 0, 0
        for cycle, sample in self._buffered(cycling(), me, consumers):
            item = self.codec.decode(sample, keep_only=n < skip)
            if item is None:
                if cycle - last_kept > consumers:  # every shard was read since the last kept sample
                    raise RuntimeError(
                        f"no {self.codec.name} training sample passed the filters in {cycle - last_kept} passes "
                        f"over the {len(self.shards)} train shards; {self.codec.filter_hint}."
                    )
                continue
            last_kept = cycle
            if n >= skip:
                yield item
            n += 1
            if n == want:
                return

    def rank_plan(self) -> list[tuple[int, int]]:
        """This rank's entries of ``plan``, padded as ``DistributedSampler`` pads (see the class)."""
        plan = self.plan or []
        total = math.ceil(len(plan) / self.world) * self.world
        padded = [plan[i % len(plan)] for i in range(total)] if plan else []
        return padded[self.rank :: self.world]

    def _planned(self) -> Iterator[dict[str, Any]]:
        wid, workers = self.worker()
        share, bs = self.rank_plan(), self.batch_size
        mine = [e for b in range(wid, math.ceil(len(share) / bs), workers) for e in share[b * bs : (b + 1) * bs]]
        ordered = 0  # the leading run of entries in shard order; the padding after it repeats earlier ones
        while ordered < len(mine) and (ordered == 0 or mine[ordered - 1] < mine[ordered]):
            ordered += 1
        head, tail = mine[:ordered], mine[ordered:]

        def decoded() -> Iterator[dict[str, Any] | None]:
            yield from self._read_entries(head)
            if tail:
                again = sorted(set(tail))
                found = dict(zip(again, self._read_entries(again), strict=True))
                yield from (found[e] for e in tail)

        last: dict[str, Any] | None = None
        owed = 0  # entries whose sample turned out unreadable: replaced by repeating a neighbour
        for item in decoded():
            if item is None:
                if last is None:
                    owed += 1
                    continue
                item = last
            for _ in range(owed + 1):
                yield item
            owed, last = 0, item

    def _read_entries(self, entries: list[tuple[int, int]]) -> Iterator[dict[str, Any] | None]:
        """One decoded sample (None: dropped or unreadable) per entry (shard index, position) of
        ``entries``, which are in shard order."""
        for shard, group in itertools.groupby(entries, key=lambda e: e[0]):
            positions = [pos for _, pos in group]
            i = 0
            for pos, sample in enumerate(self.codec.read(self.shards[shard])):
                if pos == positions[i]:
                    yield self.codec.decode(sample)
                    i += 1
                    if i == len(positions):
                        break
            yield from (None for _ in range(len(positions) - i))  # past a truncated shard's end


class PassLoader(DataLoader):
    """The training DataLoader of a `ShardStream`: each ``iter()`` asks the data module which pass
    starts and how many of its batches to skip (``ImageDataModule.start_pass``, in the main
    process) and hands both to the stream before the workers are started and pickle it."""

    def __init__(self, dataset: ShardStream, owner: ImageDataModule, **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        self.owner = owner

    def __iter__(self):
        self.dataset.pass_index, self.dataset.skip = self.owner.start_pass(len(self))
        return super().__iter__()
