"""LAION subsets as img2dataset writes them, streamed and sharded by rank and worker: the data module.

Layouts read (ROOT is a folder):
    ROOT/00000.tar, 00001.tar, …   webdataset shards: 000000000.jpg + 000000000.txt (+ .json) per sample
    ROOT/*.parquet                 one row per sample: image bytes (jpg | image) and caption
                                   (txt | caption | TEXT), plus metadata columns

Three layers: ``shards.py`` reads a shard's raw samples and decodes one (`LaionCodec`: filters,
center crop, caption file; an unreadable image is skipped, counted and warned once);
``stream.py`` deals the samples out to ranks and workers and makes a pass resumable
(`ShardStream`, `PassLoader`); this module puts them together as `LaionStream` and
`LaionDataModule`. Training: every pass has a fixed length, the same on every rank, whatever the
filters drop; shards are shuffled per pass and samples in a seeded buffer; a pass can be resumed
part-way through. Validation/test stream in shard order, unshuffled: each kept sample once, and
under DDP padded by repeating as ``DistributedSampler`` does, so every rank gets the same number
of batches. A truncated shard's remainder is skipped with a warning.

The names of ``shards.py`` and ``stream.py`` are re-exported here: checkpoints, configs and tests
name them as ``lit_genvision.data.laion.<name>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from lit_genvision.data.base import ImageDataModule
from lit_genvision.data.captions import read_captions
from lit_genvision.data.shards import (
    CAPTION_COLUMNS,
    IMAGE_COLUMNS,
    IMAGE_EXTS,
    LAYOUT,
    LaionCodec,
    LaionFilters,
    count_samples,
    iter_parquet,
    iter_tar,
    keeps_by_header,
    list_shards,
    read_shard,
    sample_caption,
    sample_image,
    sample_meta,
)
from lit_genvision.data.stream import (
    PassLoader,
    SampleCodec,
    ShardStream,
    buffer_shuffle,
    plan_entries,
    seeded_rng,
    worker_batches,
)

__all__ = [
    "CAPTION_COLUMNS",
    "IMAGE_COLUMNS",
    "IMAGE_EXTS",
    "LAYOUT",
    "LaionCodec",
    "LaionDataModule",
    "LaionFilters",
    "LaionStream",
    "PassLoader",
    "SampleCodec",
    "ShardStream",
    "buffer_shuffle",
    "count_samples",
    "iter_parquet",
    "iter_tar",
    "keeps_by_header",
    "list_shards",
    "plan_entries",
    "plan_samples",
    "read_shard",
    "sample_caption",
    "sample_image",
    "sample_meta",
    "seeded_rng",
    "worker_batches",
]


class LaionStream(ShardStream):
    """A `ShardStream` of LAION shards decoded by `LaionCodec`: items ``{"image": uint8 (3, S, S),
    "text": str, "key": str}`` with ``S = image_size``. The modes (finite, training, planned), the
    sharding and the resume semantics are `ShardStream`'s; ``captions`` replaces the text of the
    samples whose key it holds."""

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
        super().__init__(
            shards,
            LaionCodec(image_size, filters, crop, captions),
            rank,
            world,
            seed=seed,
            shuffle=shuffle,
            shuffle_buffer=shuffle_buffer,
            batches_per_rank=batches_per_rank,
            batch_size=batch_size,
            plan=plan,
        )

    image_size = property(lambda self: self.codec.image_size, doc="Output side of the decoded images.")
    filters = property(lambda self: self.codec.filters, doc="The `LaionFilters` samples pass.")
    crop = property(lambda self: self.codec.crop, doc="Unused: images are always center-cropped to a square.")
    captions = property(lambda self: self.codec.captions, doc="Replacement captions by sample key.")
    skipped = property(lambda self: self.codec.skipped, doc="Unreadable images skipped (``.count``).")

    def decode(self, sample: dict[str, Any], resize: bool = True) -> dict[str, Any] | None:
        """The filtered, decoded sample (None when a filter drops it or its image is unreadable);
        ``resize=False`` decides only whether it is kept (no ``image``)."""
        return self.codec.decode(sample, keep_only=not resize)


def plan_samples(shards: list[Path], filters: LaionFilters) -> list[tuple[int, int]]:
    """(shard index, position) of every sample the filters keep, in shard order, judged from the
    caption, metadata and image header (no decoding); an image that passes its header but fails to
    decode is replaced at read time by a neighbouring sample (see `ShardStream`, planned mode)."""
    return plan_entries(shards, read_shard, lambda sample: keeps_by_header(sample, filters))


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
