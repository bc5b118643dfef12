"""LAION shards as img2dataset writes them: listing them, reading their raw samples, and decoding one.

Layouts read (ROOT is a folder):
    ROOT/00000.tar, 00001.tar, …   webdataset shards: 000000000.jpg + 000000000.txt (+ .json) per sample
    ROOT/*.parquet                 one row per sample: image bytes (jpg | image) and caption
                                   (txt | caption | TEXT), plus metadata columns

A raw sample (what `read_shard` yields, nothing decoded) is a dict:
    key                       str, the sample's name (tar: the member name before its first dot;
                              parquet: the ``key`` column, else ``<file stem>:<row>``)
    jpg | jpeg | png | webp   the encoded image, bytes (parquet: always under ``jpg``)
    txt                       the caption: bytes in a tar, str in parquet (`sample_caption` reads both)
    json | meta               img2dataset's metadata: encoded JSON bytes (tar) or a dict of the
                              parquet's other columns (`sample_meta` reads both)

`LaionCodec` turns a raw sample into the batch item ``{"image": uint8 (3, S, S), "text": str,
"key": str}`` or drops it (`LaionFilters`); an unreadable image is skipped, counted and warned once,
never a crash mid-epoch. A truncated tar yields what precedes the damage and warns. A root without
shards, or a parquet without an image or caption column, is a one-sentence error naming the layout.
"""

from __future__ import annotations

import io
import json
import tarfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

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


def sample_meta(sample: dict[str, Any]) -> dict[str, Any]:
    """A raw sample's metadata: parquet's other columns, a tar's ``.json`` member, else {}."""
    return sample.get("meta") or (json.loads(sample["json"]) if "json" in sample else {})


def sample_image(sample: dict[str, Any]) -> bytes | None:
    """A raw sample's encoded image (the first of `IMAGE_EXTS` it has); None when it has none."""
    return next((sample[e] for e in IMAGE_EXTS if e in sample), None)


def list_shards(root: Path) -> list[Path]:
    """The ``.tar`` and ``.parquet`` shards directly under ``root``, sorted by name."""
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


def keeps_by_header(sample: dict[str, Any], filters: LaionFilters) -> bool:
    """Whether ``filters`` keep a raw sample, judged from its caption, metadata and image header
    (no decoding: an image whose header reads but whose data is damaged passes here)."""
    caption = sample_caption(sample)
    meta = sample_meta(sample)
    raw = sample_image(sample)
    if raw is None or not filters.keep_meta(caption.strip(), meta):
        return False
    try:
        size = Image.open(io.BytesIO(raw)).size
    except BAD_IMAGE_ERRORS:
        return False
    return filters.keep_size(*size)


class LaionCodec:
    """Reads LAION shards and decodes their raw samples into batch items: the `SampleCodec` of a
    `ShardStream` (see ``stream.py``).

    ``decode`` applies ``filters`` (caption and metadata first, then the decoded image's size),
    center-crops and resizes the image to ``image_size`` (uint8, 3 × S × S) and gives the caption,
    replaced by ``captions[key]`` when the sample's key is there (the filters still judge the
    original). An unreadable image is counted in ``skipped`` and warned once by name.
    """

    #: What the samples are, in the stream's messages.
    name = "LAION"
    #: The end of the stream's message when the filters keep no training sample.
    filter_hint = "loosen the LaionFilters or check the shards"

    def __init__(
        self, image_size: int, filters: LaionFilters, crop: bool = True, captions: dict[str, str] | None = None
    ) -> None:
        self.image_size, self.filters, self.crop = image_size, filters, crop
        #: Replacement captions by sample key (e.g. re-captioned text); other samples keep their own.
        self.captions = captions or {}
        self.skipped = SkippedFiles("LAION image")

    def read(self, shard: Path) -> Iterator[dict[str, Any]]:
        """The raw samples of ``shard``, in stored order (`read_shard`)."""
        return read_shard(shard)

    def decode(self, sample: dict[str, Any], keep_only: bool = False) -> dict[str, Any] | None:
        """The filtered, decoded sample (None when a filter drops it or its image is unreadable);
        ``keep_only=True`` decides only whether it is kept (the image is decoded, not resized, and
        the item has no ``image``)."""
        caption = sample_caption(sample)
        meta = sample_meta(sample)
        if not self.filters.keep_meta(caption.strip(), meta):
            return None
        raw = sample_image(sample)
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
        return item if keep_only else {"image": center_crop_resize(img, self.image_size), **item}
