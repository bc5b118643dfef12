"""LAION subsets as img2dataset writes them, streamed and sharded by rank and worker.

Layouts read (ROOT is a folder):
    ROOT/00000.tar, 00001.tar, …   webdataset shards: 000000000.jpg + 000000000.txt (+ .json) per sample
    ROOT/*.parquet                 one row per sample: image bytes (jpg | image) and caption
                                   (txt | caption | TEXT), plus metadata columns

Training (`LaionStream` with ``batches_per_rank``): every pass has a fixed length, the same on
every rank, whatever the filters drop, so no rank waits for another in a collective; shards are
shuffled per pass and samples in a seeded buffer; a pass can be resumed part-way through (see
`LaionStream`). Validation/test stream in shard order, unshuffled: each kept sample once, and under
DDP padded by repeating as ``DistributedSampler`` does, so every rank gets the same number of
batches. A truncated shard's remainder is skipped with a warning; an unreadable image is skipped,
counted and warned once.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import tarfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.utilities import rank_zero_info
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lit_genvision.data.base import ImageDataModule
from lit_genvision.data.captions import read_captions
from lit_genvision.data.images import BAD_IMAGE_ERRORS, SkippedFiles, center_crop_resize, open_rgb

LAYOUT = (
    "webdataset shards (NNNNN.tar holding NNNN.jpg + NNNN.txt [+ .json], as img2dataset writes them) "
    "or parquet files with image bytes (jpg) and caption (txt) columns"
)
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
IMAGE_COLUMNS = ("jpg", "image", "png", "webp")
CAPTION_COLUMNS = ("txt", "caption", "TEXT", "text")


@dataclass
class LaionFilters:
    """Sample filters; a score filter applies only when the sample carries that score.

    min_size: the smaller side of the original image, in pixels.
    max_aspect: longer side / shorter side.
    min_caption_chars / max_caption_chars: caption length.
    min_similarity: CLIP image–text similarity (``similarity``).
    max_punsafe: NSFW probability (``punsafe``).
    max_pwatermark: watermark probability (``pwatermark``).
    min_aesthetic: aesthetic score (``aesthetic`` or ``AESTHETIC_SCORE``).
    """

    min_size: int = 0
    max_aspect: float = float("inf")
    min_caption_chars: int = 1
    max_caption_chars: int = 10_000
    min_similarity: float | None = None
    max_punsafe: float | None = None
    max_pwatermark: float | None = None
    min_aesthetic: float | None = None

    def keep_meta(self, caption: str, meta: dict[str, Any]) -> bool:
        if not self.min_caption_chars <= len(caption) <= self.max_caption_chars:
            return False

        def score(*names: str) -> float | None:
            return next((float(meta[n]) for n in names if meta.get(n) is not None), None)

        checks = [
            (score("similarity"), self.min_similarity, 1),
            (score("punsafe"), self.max_punsafe, -1),
            (score("pwatermark"), self.max_pwatermark, -1),
            (score("aesthetic", "AESTHETIC_SCORE"), self.min_aesthetic, 1),
        ]
        return all(v is None or t is None or (v >= t if sign > 0 else v <= t) for v, t, sign in checks)

    def keep_size(self, width: int, height: int) -> bool:
        short, long = min(width, height), max(width, height)
        return short >= self.min_size and long <= self.max_aspect * short


def iter_tar(path: Path) -> Iterator[dict[str, Any]]:
    """Samples of a webdataset shard, grouping consecutive members by key (name before the first
    dot); a truncated shard yields what precedes the damage and warns."""
    sample: dict[str, Any] = {}
    n = 0
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = Path(member.name).name
                key, _, ext = name.partition(".")
                if sample and sample["key"] != key:
                    yield sample
                    n += 1
                    sample = {}
                sample.setdefault("key", key)
                data = tar.extractfile(member).read()
                sample[ext.lower()] = data
    except (tarfile.ReadError, EOFError, OSError) as err:
        warnings.warn(
            f"shard {path} is truncated or damaged after {n} samples ({err}); skipping the rest of it", stacklevel=2
        )
        return
    if sample:
        yield sample


def iter_parquet(path: Path) -> Iterator[dict[str, Any]]:
    """Samples of a parquet file: image bytes, caption and the remaining columns as metadata."""
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path)
    cols = f.schema_arrow.names
    img_col = next((c for c in IMAGE_COLUMNS if c in cols), None)
    txt_col = next((c for c in CAPTION_COLUMNS if c in cols), None)
    if img_col is None or txt_col is None:
        raise ValueError(
            f"{path} has columns {cols}; expected an image column ({' | '.join(IMAGE_COLUMNS)}) "
            f"and a caption column ({' | '.join(CAPTION_COLUMNS)})."
        )
    i = 0
    for batch in f.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            raw = row.pop(img_col)
            image = raw["bytes"] if isinstance(raw, dict) else raw
            yield {
                "key": str(row.get("key", f"{path.stem}:{i}")),
                "jpg": image,
                "txt": row.pop(txt_col) or "",
                "meta": row,
            }
            i += 1


def sample_caption(sample: dict[str, Any]) -> str:
    """A raw sample's caption as text (bytes in a tar shard, a string in parquet; "" when absent)."""
    caption = sample.get("txt", b"")
    return caption.decode("utf-8", "replace") if isinstance(caption, bytes) else str(caption)


def list_shards(root: Path) -> list[Path]:
    shards = sorted([*root.glob("*.tar"), *root.glob("*.parquet")])
    if not shards:
        raise FileNotFoundError(f"no LAION shards under {root}; expected {LAYOUT}.")
    return shards


def read_shard(shard: Path) -> Iterator[dict[str, Any]]:
    """The raw samples of one shard (tar or parquet), in stored order."""
    return iter_parquet(shard) if shard.suffix == ".parquet" else iter_tar(shard)


def count_samples(shard: Path) -> int:
    """Raw samples in a shard without reading any image: parquet row count from the footer, or
    the number of sample keys among a tar's member headers (a damaged tar counts what precedes
    the damage)."""
    if shard.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(shard).metadata.num_rows
    n, last = 0, None
    try:
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.isfile():
                    key = Path(member.name).name.partition(".")[0]
                    n, last = n + (key != last), key
    except (tarfile.ReadError, EOFError, OSError):
        pass
    return n


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


class LaionStream(IterableDataset):
    """Streams (image, caption) samples from shards; this consumer's share is fixed by
    (rank, world size, worker id, worker count).

    Three modes:

    * finite (``batches_per_rank`` and ``plan`` None): this consumer's share once, in shard order
      (shards dealt out when there are at least as many as (rank, worker) consumers, otherwise
      every consumer reads every shard and keeps the samples at its own positions), so the job
      sees every kept sample exactly once. ``len()`` is unknown.
    * training (``batches_per_rank`` set): every rank yields exactly ``batches_per_rank`` batches
      of ``batch_size``, whatever the filters drop. Batch i of a rank comes from DataLoader worker
      i mod W; each worker reads its share of the shards and, when that runs out, starts it again
      with the next slot and order (cycle c reads the share of consumer (me + c) mod consumers, so
      c cycles cover every shard), until it has yielded its batches: a pass may repeat samples and
      leave some out, but no rank runs dry before the others. With ``shuffle``, pass p orders the
      shards by a permutation seeded by (seed, p) and each consumer's samples pass through a
      ``shuffle_buffer``-sample buffer seeded by (seed, p, consumer, consumers) (0: no buffer):
      the stream is a function of (seed, pass, rank, world, worker, workers). ``pass_index`` and
      ``skip`` (batches of the pass already trained on) are set before the DataLoader starts its
      workers; the resumed stream yields exactly the batches the uninterrupted one yields after its
      first ``skip`` (skipped samples are still read and filtered, not resized).
    * planned (``plan`` set, for validation under DDP): ``plan`` lists the kept samples as
      (shard index, position in shard) in shard order; it is padded by repeating its first entries
      to a multiple of ``world`` and dealt out as ``DistributedSampler`` does (rank r takes entries
      r, r + world, …), so every rank has the same number of samples and batches, each in order.
    """

    def __init__(
        self,
        shards: list[Path],
        image_size: int,
        filters: LaionFilters,
        rank: int = 0,
        world: int = 1,
        crop: bool = True,
        *,
        seed: int = 0,
        shuffle: bool = False,
        shuffle_buffer: int = 0,
        batches_per_rank: int | None = None,
        batch_size: int = 1,
        plan: list[tuple[int, int]] | None = None,
        captions: dict[str, str] | None = None,
    ) -> None:
        if shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be 0 (off) or a positive sample count, got {shuffle_buffer}.")
        self.shards, self.image_size, self.filters = shards, image_size, filters
        self.rank, self.world, self.crop = rank, world, crop
        self.seed, self.shuffle, self.shuffle_buffer = seed, shuffle, shuffle_buffer
        self.batches_per_rank, self.batch_size, self.plan = batches_per_rank, batch_size, plan
        #: Replacement captions by sample key (e.g. re-captioned text); other samples keep their own.
        self.captions = captions or {}
        #: The training pass this stream yields and how many of its batches to skip (set by the
        #: loader in the main process before the workers start).
        self.pass_index, self.skip = 0, 0
        self.skipped = SkippedFiles("LAION image")

    def __len__(self) -> int:
        """Samples this rank yields per pass (the DataLoader divides by its batch size)."""
        if self.batches_per_rank is not None:
            return self.batches_per_rank * self.batch_size
        if self.plan is not None:
            return len(self.rank_plan())
        raise TypeError("a finite LAION stream has no length known in advance")

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

    def consumer_samples(self, me: int, consumers: int, cycle: int = 0) -> Iterator[dict[str, Any]]:
        """Raw samples (before decoding and filtering) of consumer slot (me + cycle) mod consumers
        in this pass; cycles after the first also reorder the slot's shards."""
        slot = (me + cycle) % consumers
        order = self.shard_order()
        if len(order) >= consumers:
            mine = order[slot::consumers]
            if self.shuffle and cycle:
                mine = [mine[i] for i in seeded_rng(self.seed, self.pass_index, cycle, slot).permutation(len(mine))]
            for shard in mine:
                yield from read_shard(shard)
        else:
            position = 0
            for shard in order:
                for sample in read_shard(shard):
                    if position % consumers == slot:
                        yield sample
                    position += 1

    def raw_samples(self) -> Iterator[dict[str, Any]]:
        """This consumer's samples, before decoding and filtering (one cycle)."""
        return self.consumer_samples(*self.consumer())

    def decode(self, sample: dict[str, Any], resize: bool = True) -> dict[str, Any] | None:
        """The filtered, decoded sample (None when a filter drops it or its image is unreadable);
        ``resize=False`` decides only whether it is kept (no ``image``)."""
        caption = sample_caption(sample)
        meta = sample.get("meta") or (json.loads(sample["json"]) if "json" in sample else {})
        if not self.filters.keep_meta(caption.strip(), meta):
            return None
        raw = next((sample[e] for e in IMAGE_EXTS if e in sample), None)
        if raw is None:
            return None
        try:
            img = open_rgb(raw)
        except BAD_IMAGE_ERRORS as err:
            self.skipped.skip(sample["key"], err)
            return None
        if not self.filters.keep_size(*img.size):
            return None
        item = {"text": self.captions.get(sample["key"], caption.strip()), "key": sample["key"]}
        return {"image": center_crop_resize(img, self.image_size), **item} if resize else item

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
            item = self.decode(sample)
            if item is not None:
                yield item

    def _training(self) -> Iterator[dict[str, Any]]:
        wid, workers = self.worker()
        me, consumers = self.consumer()
        want = worker_batches(self.batches_per_rank, wid, workers) * self.batch_size
        skip = worker_batches(min(self.skip, self.batches_per_rank), wid, workers) * self.batch_size
        if want == 0:
            return

        def cycling() -> Iterator[tuple[int, dict[str, Any]]]:
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
            item = self.decode(sample, resize=n >= skip)
            if item is None:
                if cycle - last_kept > consumers:  # every shard was read since the last kept sample
                    raise RuntimeError(
                        f"no LAION training sample passed the filters in {cycle - last_kept} passes over the "
                        f"{len(self.shards)} train shards; loosen the LaionFilters or check the shards."
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
        owed = 0  # entries whose image turned out unreadable: replaced by repeating a neighbour
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
            for pos, sample in enumerate(read_shard(self.shards[shard])):
                if pos == positions[i]:
                    yield self.decode(sample)
                    i += 1
                    if i == len(positions):
                        break
            yield from (None for _ in range(len(positions) - i))  # past a truncated shard's end


def plan_samples(shards: list[Path], filters: LaionFilters) -> list[tuple[int, int]]:
    """(shard index, position) of every sample the filters keep, in shard order, judged from the
    caption, metadata and image header (no decoding); an image that passes its header but fails to
    decode is replaced at read time by a neighbouring sample (see `LaionStream`, planned mode)."""
    plan = []
    for s, shard in enumerate(shards):
        for pos, sample in enumerate(read_shard(shard)):
            caption = sample_caption(sample)
            meta = sample.get("meta") or (json.loads(sample["json"]) if "json" in sample else {})
            raw = next((sample[e] for e in IMAGE_EXTS if e in sample), None)
            if raw is None or not filters.keep_meta(caption.strip(), meta):
                continue
            try:
                size = Image.open(io.BytesIO(raw)).size
            except BAD_IMAGE_ERRORS:
                continue
            if filters.keep_size(*size):
                plan.append((s, pos))
    return plan


class PassLoader(DataLoader):
    """The training DataLoader of a `LaionStream`: each ``iter()`` asks the data module which pass
    starts and how many of its batches to skip (``ImageDataModule.start_pass``, in the main
    process) and hands both to the stream before the workers are started and pickle it."""

    def __init__(self, dataset: LaionStream, owner: ImageDataModule, **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        self.owner = owner

    def __iter__(self):
        self.dataset.pass_index, self.dataset.skip = self.owner.start_pass(len(self))
        return super().__iter__()


class LaionDataModule(ImageDataModule):
    """Image–caption pairs from img2dataset output (``image``, ``text``).

    Args:
        root: folder of ``.tar`` shards or ``.parquet`` files.
        image_size: output side after center crop and resize.
        val_shards: how many of the last shards to hold out for validation (0: no validation).
        batch_size: per-process batch size.
        num_workers: DataLoader workers; each reads its own shards.
        filters: sample filters (size, aspect, caption length, CLIP similarity, punsafe, watermark, aesthetic).
        pin_memory: pin host batches.
        seed: seeds the per-pass shard order and the shuffle buffers.
        shuffle_buffer: training samples (raw, still encoded) each worker shuffles in a buffer; 0: off.
        samples_per_epoch: samples per training pass across the job; None: the raw sample count of
            the train shards (counted at setup, before filtering). Every rank gets
            samples_per_epoch // (world size × batch_size) batches per pass (see `LaionStream`).
        captions: a parquet written by `captions.write_captions` whose ``key`` matches the samples'
            keys: its text replaces the caption of those samples (the filters still judge the
            original caption); samples not in the file keep their own. None: the shards' captions.
    """

    name = "laion"
    provides = ("image", "text")

    def __init__(
        self,
        root: str = "data/laion",
        image_size: int = 64,
        val_shards: int = 0,
        batch_size: int = 64,
        num_workers: int = 2,
        filters: LaionFilters | None = None,
        pin_memory: bool = True,
        seed: int = 0,
        shuffle_buffer: int = 1000,
        samples_per_epoch: int | None = None,
        captions: str | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, num_workers=num_workers, pin_memory=pin_memory)
        if shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be 0 (off) or a positive sample count, got {shuffle_buffer}.")
        if samples_per_epoch is not None and samples_per_epoch < 1:
            raise ValueError(
                f"samples_per_epoch must be positive or None (the raw train sample count), got {samples_per_epoch}."
            )
        self.root, self.image_size, self.val_shards = Path(root), image_size, val_shards
        self.filters = filters or LaionFilters()
        self.shuffle_buffer, self.samples_per_epoch = shuffle_buffer, samples_per_epoch
        self.captions = captions
        self.caption_table: dict[str, str] | None = None
        self.shards: dict[str, list[Path]] = {}
        self.raw_train_samples = 0
        self._val_plan: list[tuple[int, int]] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    def setup(self, stage: str | None = None) -> None:
        if self.shards:
            return
        shards = list_shards(self.root)
        if not 0 <= self.val_shards < len(shards):
            raise ValueError(f"val_shards must be between 0 and {len(shards) - 1} for {len(shards)} shards.")
        cut = len(shards) - self.val_shards
        self.shards = {"train": shards[:cut], "val": shards[cut:]}
        self.raw_train_samples = sum(count_samples(s) for s in self.shards["train"])
        self.caption_table = read_captions(self.captions) if self.captions is not None else None
        rank_zero_info(
            f"LAION from {self.root}: {cut} train shards ({self.raw_train_samples} raw samples), "
            f"{self.val_shards} val shards"
        )

    def caption_corpus(self, split: str = "train", limit: int = 200_000) -> list[str]:
        """Up to ``limit`` captions of ``split``'s shards in stored order (images are not decoded;
        a caption file's text replaces a sample's): the corpus a text tower's BPE is trained on."""
        self.setup()
        texts: list[str] = []
        for shard in self.shards[split]:
            for sample in read_shard(shard):
                caption = sample_caption(sample)
                if self.caption_table is not None:
                    caption = self.caption_table.get(str(sample["key"]), caption)
                texts.append(caption.strip())
                if len(texts) >= limit:
                    return texts
        return texts

    def batches_per_rank(self) -> int:
        """Training batches every rank yields per pass: samples_per_epoch // (world × batch_size)."""
        self.setup()
        _, world = self.rank_and_world()
        samples = self.samples_per_epoch or self.raw_train_samples
        batches = samples // (world * self.batch_size)
        if batches < 1:
            raise ValueError(
                f"{samples} samples per epoch make no full batch of {self.batch_size} on each of {world} ranks; "
                "raise samples_per_epoch (or add shards) or lower batch_size."
            )
        return batches

    def stream(self, split: str) -> LaionStream:
        """The ``train`` (fixed-length, shuffled) or ``val`` (in order; planned under DDP) stream."""
        self.setup()
        rank, world = self.rank_and_world()
        if split == "train":
            return LaionStream(
                self.shards[split],
                self.image_size,
                self.filters,
                rank,
                world,
                seed=self.seed,
                shuffle=True,
                shuffle_buffer=self.shuffle_buffer,
                batches_per_rank=self.batches_per_rank(),
                batch_size=self.batch_size,
                captions=self.caption_table,
            )
        plan = None
        if world > 1:  # every rank must get the same number of batches: plan, pad and deal out
            if self._val_plan is None:
                self._val_plan = plan_samples(self.shards[split], self.filters)
            plan = self._val_plan
        return LaionStream(
            self.shards[split],
            self.image_size,
            self.filters,
            rank,
            world,
            batch_size=self.batch_size,
            plan=plan,
            captions=self.caption_table,
        )

    def train_dataloader(self) -> DataLoader:
        return PassLoader(
            self.stream("train"),
            owner=self,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
        )

    def val_dataloader(self) -> DataLoader | list:
        if not self.val_shards:
            return []
        return DataLoader(
            self.stream("val"),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
        )

    def test_dataloader(self) -> DataLoader | list:
        return self.val_dataloader()
