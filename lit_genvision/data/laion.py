"""LAION subsets as img2dataset writes them, streamed and sharded by rank and worker.

Layouts read (ROOT is a folder):
    ROOT/00000.tar, 00001.tar, …   webdataset shards: 000000000.jpg + 000000000.txt (+ .json) per sample
    ROOT/*.parquet                 one row per sample: image bytes (jpg | image) and caption
                                   (txt | caption | TEXT), plus metadata columns
Every sample is seen exactly once per epoch across the job: with at least as many shards as
(rank, worker) consumers, shards are dealt out; with fewer, every consumer reads every shard and
keeps the samples at its own positions. A truncated shard's remainder is skipped with a warning;
an unreadable image is skipped, counted and warned once.
"""

from __future__ import annotations

import json
import tarfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lit_genvision.data.base import ImageDataModule
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
    for batch in f.iter_batches(batch_size=256):
        for i, row in enumerate(batch.to_pylist()):
            raw = row.pop(img_col)
            image = raw["bytes"] if isinstance(raw, dict) else raw
            yield {
                "key": str(row.get("key", f"{path.stem}:{i}")),
                "jpg": image,
                "txt": row.pop(txt_col) or "",
                "meta": row,
            }


def list_shards(root: Path) -> list[Path]:
    shards = sorted([*root.glob("*.tar"), *root.glob("*.parquet")])
    if not shards:
        raise FileNotFoundError(f"no LAION shards under {root}; expected {LAYOUT}.")
    return shards


class LaionStream(IterableDataset):
    """Streams (image, caption) samples from shards; this consumer's share is fixed by
    (rank, world size, worker id, worker count)."""

    def __init__(
        self,
        shards: list[Path],
        image_size: int,
        filters: LaionFilters,
        rank: int = 0,
        world: int = 1,
        crop: bool = True,
    ) -> None:
        self.shards, self.image_size, self.filters = shards, image_size, filters
        self.rank, self.world, self.crop = rank, world, crop
        self.skipped = SkippedFiles("LAION image")

    def consumer(self) -> tuple[int, int]:
        info = get_worker_info()
        wid, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.rank * workers + wid, self.world * workers

    def raw_samples(self) -> Iterator[dict[str, Any]]:
        """This consumer's samples, before decoding and filtering."""
        me, consumers = self.consumer()
        if len(self.shards) >= consumers:
            for shard in self.shards[me::consumers]:
                yield from self._read(shard)
        else:
            position = 0
            for shard in self.shards:
                for sample in self._read(shard):
                    if position % consumers == me:
                        yield sample
                    position += 1

    @staticmethod
    def _read(shard: Path) -> Iterator[dict[str, Any]]:
        return iter_parquet(shard) if shard.suffix == ".parquet" else iter_tar(shard)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for sample in self.raw_samples():
            caption = sample.get("txt", b"")
            caption = caption.decode("utf-8", "replace") if isinstance(caption, bytes) else str(caption)
            meta = sample.get("meta") or (json.loads(sample["json"]) if "json" in sample else {})
            if not self.filters.keep_meta(caption.strip(), meta):
                continue
            raw = next((sample[e] for e in IMAGE_EXTS if e in sample), None)
            if raw is None:
                continue
            try:
                img = open_rgb(raw)
            except BAD_IMAGE_ERRORS as err:
                self.skipped.skip(sample["key"], err)
                continue
            if not self.filters.keep_size(*img.size):
                continue
            yield {"image": center_crop_resize(img, self.image_size), "text": caption.strip(), "key": sample["key"]}


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
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory)
        self.root, self.image_size, self.val_shards = Path(root), image_size, val_shards
        self.filters = filters or LaionFilters()
        self.shards: dict[str, list[Path]] = {}

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
        rank_zero_info(f"LAION from {self.root}: {cut} train shards, {self.val_shards} val shards")

    def stream(self, split: str) -> LaionStream:
        self.setup()
        rank, world = self.rank_and_world()
        return LaionStream(self.shards[split], self.image_size, self.filters, rank, world)

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(
            self.stream(split),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val") if self.val_shards else []

    def test_dataloader(self) -> DataLoader | list:
        return self.val_dataloader()
