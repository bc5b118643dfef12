"""What every DataModule shares: the batch contract and uint8 → [-1, 1] conversion on the device.

Pixel keys (`PIXEL_KEYS`): ``image`` (B, C, H, W) and ``video`` (B, C, T, H, W) — channels before
frames, as the networks take them (DESIGN.md: an image is a one-frame video). A dataset holding clips
as (N, T, H, W, C), the ``.npz`` layout, permutes them once when it loads them. Both keys travel as
uint8 and go through one rule on the device, `pixels_to_unit_range`.
"""

from __future__ import annotations

import itertools
from typing import ClassVar

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lit_genvision.methods.augment import flip_crop

#: Batch keys that hold pixels: uint8 in the loader, float in [-1, 1] on the device.
PIXEL_KEYS: tuple[str, ...] = ("image", "video")


def to_unit_range(images: Tensor) -> Tensor:
    """uint8 [0, 255] → float [-1, 1]: x / 127.5 − 1."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] → uint8 [0, 255], rounding to the nearest level."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def pixels_to_unit_range(batch: dict, crop: int = 0, flip: bool = False) -> dict:
    """Every uint8 pixel key of ``batch`` (`PIXEL_KEYS`) → float in [-1, 1]; other keys untouched.

    With ``crop`` or ``flip`` the pixels are first flipped / cropped (`flip_crop`, ``crop`` pixels of
    reflection padding) while still uint8, a quarter of the bytes: one draw per sample, shared by all
    the frames of a video and by every pixel key of the same size (an image stays aligned with its clip).
    """
    if not isinstance(batch, dict):
        return batch
    keys = [k for k in PIXEL_KEYS if isinstance(batch.get(k), Tensor) and batch[k].dtype == torch.uint8]
    if not keys:
        return batch
    pixels = {k: batch[k] for k in keys}
    if crop or flip:
        pixels = _flip_crop_together(pixels, crop, flip)
    return {**batch, **{k: to_unit_range(v) for k, v in pixels.items()}}


def _flip_crop_together(pixels: dict[str, Tensor], crop: int, flip: bool) -> dict[str, Tensor]:
    """`flip_crop` with one draw per sample for all of ``pixels`` (same B, H, W), else one per key."""
    shapes = {(v.shape[0], *v.shape[-2:]) for v in pixels.values()}
    if len(pixels) == 1 or len(shapes) > 1:
        return {k: flip_crop(v, crop, flip=flip) for k, v in pixels.items()}
    flat = [v.flatten(1, -3) for v in pixels.values()]  # (B, C·T, H, W) each
    out = flip_crop(torch.cat(flat, dim=1), crop, flip=flip).split([f.shape[1] for f in flat], dim=1)
    return {k: o.reshape(v.shape) for (k, v), o in zip(pixels.items(), out, strict=True)}


class TensorImageDataset(Dataset):
    """In-memory uint8 images (N, C, H, W) — or clips (N, C, T, H, W) under ``key="video"`` — with per-sample
    tensors (labels, attributes, …) or lists (captions: ``text`` as a list of N strings).

    ``__getitems__`` gathers a whole batch with one index operation per tensor (a list comprehension
    per list field), so the DataLoader does no per-image Python work (use ``collate_fn=pass_through``).
    """

    def __init__(
        self, images: Tensor, labels: Tensor | None = None, *, key: str = "image", **extra: Tensor | list
    ) -> None:
        if key not in PIXEL_KEYS:
            raise ValueError(f"key must be a pixel key, one of {', '.join(PIXEL_KEYS)}; got {key!r}.")
        self.images, self.labels = images, labels
        self.fields = {key: images} | ({"label": labels} if labels is not None else {}) | extra

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Tensor | str]:
        return {k: v[i] for k, v in self.fields.items()} | {"index": torch.tensor(i)}

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor | list]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        batch = {k: v[idx] if isinstance(v, Tensor) else [v[i] for i in indices] for k, v in self.fields.items()}
        return batch | {"index": idx}


def pass_through(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """collate_fn for datasets whose ``__getitems__`` already returns the batch."""
    return batch


class ImageDataModule(L.LightningDataModule):
    """Base DataModule: batches are dicts; pixel keys (``image``, ``video``) stay uint8 until they reach
    the device, where they become float in [-1, 1] (DESIGN.md, "Contracts"), and training batches get the
    batched flip/crop augmentation there (``augment_crop`` pixels of reflection padding,
    ``augment_flip`` random horizontal flips)."""

    #: Dataset name recorded with every evaluation result.
    name: ClassVar[str] = "images"
    #: Batch keys this data module provides; models check theirs against it at setup.
    provides: ClassVar[tuple[str, ...]] = ("image",)

    #: collate_fn of the loaders (None: torch's default collate).
    collate_fn: ClassVar = None

    def __init__(
        self,
        batch_size: int = 128,
        seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
        augment_crop: int = 0,
        augment_flip: bool = False,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(
                f"batch_size must be at least 1, got {batch_size}; pass a positive per-process batch size."
            )
        if num_workers < 0:
            raise ValueError(f"num_workers must be 0 or more, got {num_workers}.")
        self.batch_size, self.seed, self.num_workers, self.pin_memory = batch_size, seed, num_workers, pin_memory
        self.augment_crop, self.augment_flip = augment_crop, augment_flip
        self.splits: dict[str, Dataset] = {}
        #: Resume position of the training stream: the pass in progress (or the next one to start)
        #: and how many training batches of that pass the model has already trained on.
        self.train_pass = 0
        self.batches_in_pass = 0
        self._resume_skip = 0
        self._pass_started = False

    def split(self, name: str) -> Dataset:
        """The ``train``/``val``/``test`` dataset (set up on first use)."""
        self.setup()
        return self.splits[name]

    def make_loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        """Train: shuffled by a ``ResumableSampler`` (rank-sharded under DDP); val/test: sharded in order."""
        if shuffle:
            sampler = self.train_sampler(dataset, self.seed)
        else:
            rank, world = self.rank_and_world()
            sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            drop_last=shuffle,
            generator=torch.Generator().manual_seed(self.seed),
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
            collate_fn=type(self).collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        return self.make_loader(self.split("train"), shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.make_loader(self.split("val"), shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.make_loader(self.split("test"), shuffle=False)

    def rank_and_world(self) -> tuple[int, int]:
        """(global rank, world size) of this process; (0, 1) outside a trainer."""
        trainer = getattr(self, "trainer", None)
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_sampler(self, dataset, seed: int) -> ResumableSampler:
        """The shuffling, rank-sharding sampler of the train split (see `ResumableSampler`)."""
        rank, world = self.rank_and_world()
        return ResumableSampler(
            dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True, owner=self
        )

    def start_pass(self, batches_per_pass: int | None = None) -> tuple[int, int]:
        """Called when the training stream starts a pass: (pass index, batches of it to skip).

        A fresh pass skips nothing; the first pass after a mid-pass resume skips the batches the
        checkpointed run had already trained on, so the resumed run sees exactly the batches an
        uninterrupted run would have seen next. A checkpoint written after the last batch of a
        pass resumes at the start of the next pass.
        """
        skip, self._resume_skip = self._resume_skip, 0
        if skip and (batches_per_pass is None or skip < batches_per_pass):
            self._pass_started, self.batches_in_pass = True, skip
            return self.train_pass, skip
        if self._pass_started or skip:  # the previous pass ran (or the interrupted one was used up)
            self.train_pass += 1
        self._pass_started, self.batches_in_pass = True, 0
        return self.train_pass, 0

    def state_dict(self) -> dict:
        return {"train_pass": self.train_pass, "batches_in_pass": self.batches_in_pass}

    def load_state_dict(self, state_dict: dict) -> None:
        if "train_pass" not in state_dict:  # written before mid-pass resume existed: a pass count
            self.train_pass, self.batches_in_pass = int(state_dict.get("train_passes", 0)), 0
            self._resume_skip, self._pass_started = 0, False
            return
        self.train_pass, self.batches_in_pass = int(state_dict["train_pass"]), int(state_dict["batches_in_pass"])
        self._resume_skip, self._pass_started = self.batches_in_pass, False

    def device_transform(self, batch: dict, training: bool) -> dict:
        """Every uint8 pixel key (``image``, ``video``) → [-1, 1] on the device (`pixels_to_unit_range`);
        training batches are flipped/cropped first, while still uint8."""
        if not training:
            return pixels_to_unit_range(batch)
        return pixels_to_unit_range(batch, self.augment_crop, self.augment_flip)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        trainer = getattr(self, "trainer", None)
        training = trainer is not None and trainer.training
        if training:  # the batch the model trains on next: the resume position moves past it
            self.batches_in_pass += 1
        return self.device_transform(batch, training=training)


class ResumableSampler(DistributedSampler):
    """A DistributedSampler whose shuffling epoch is the data module's pass index, not the
    trainer's epoch counter, and which can start a pass part-way through.

    Pass k is the permutation seeded by (seed, k), split across ranks as DistributedSampler does.
    The pass index and the number of batches already trained on travel in the checkpoint through
    the data module's ``state_dict``; on resume the interrupted pass continues from its next batch,
    so a resumed run sees the batches an uninterrupted run would have seen, whenever it stopped.
    """

    def __init__(
        self,
        dataset,
        *,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        owner: ImageDataModule | None = None,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.owner = owner
        self.batch_size = owner.batch_size if owner is not None else 1

    def set_epoch(self, epoch: int) -> None:  # the trainer's epoch is ignored on purpose
        pass

    def __iter__(self):
        if self.owner is None:
            return super().__iter__()
        batches = self.num_samples // self.batch_size  # per rank, drop_last
        self.epoch, skip = self.owner.start_pass(batches)
        return itertools.islice(super().__iter__(), skip * self.batch_size, None)


class InMemoryDataModule(ImageDataModule):
    """A data module whose splits are ``TensorImageDataset``s held in memory as uint8: each batch
    is one index operation, no per-image Python (subclasses fill ``self.splits`` in ``setup``)."""

    collate_fn = staticmethod(pass_through)
