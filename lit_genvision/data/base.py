"""What every DataModule shares: the batch contract and uint8 → [-1, 1] conversion on the device."""

from __future__ import annotations

from typing import ClassVar

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DistributedSampler


def to_unit_range(images: Tensor) -> Tensor:
    """uint8 [0, 255] → float [-1, 1]: x / 127.5 − 1."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] → uint8 [0, 255], rounding to the nearest level."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class ImageDataModule(L.LightningDataModule):
    """Base DataModule: batches are dicts; ``image`` stays uint8 until it reaches the device,
    where it becomes float NCHW in [-1, 1] (DESIGN.md, "Contracts")."""

    #: Dataset name recorded with every evaluation result.
    name: ClassVar[str] = "images"
    #: Batch keys this data module provides; models check theirs against it at setup.
    provides: ClassVar[tuple[str, ...]] = ("image",)

    def __init__(self) -> None:
        super().__init__()
        self._train_passes = 0
        self._train_sampler: ResumableSampler | None = None

    def train_sampler(self, dataset, seed: int) -> ResumableSampler:
        """The shuffling, rank-sharding sampler of the train split (see `ResumableSampler`)."""
        trainer = getattr(self, "trainer", None)
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        self._train_sampler = ResumableSampler(
            dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True, passes=self._train_passes
        )
        return self._train_sampler

    def state_dict(self) -> dict:
        passes = self._train_sampler.passes if self._train_sampler is not None else self._train_passes
        return {"train_passes": passes}

    def load_state_dict(self, state_dict: dict) -> None:
        self._train_passes = int(state_dict.get("train_passes", 0))

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        if isinstance(batch, dict) and "image" in batch and batch["image"].dtype == torch.uint8:
            batch = {**batch, "image": to_unit_range(batch["image"])}
        return batch


class ResumableSampler(DistributedSampler):
    """A DistributedSampler whose shuffling epoch is the number of passes it has started, not the
    trainer's epoch counter.

    Pass k is the permutation seeded by (seed, k), split across ranks as DistributedSampler does.
    The count travels in the checkpoint through the data module's ``state_dict``, so a resumed run
    sees the batches an uninterrupted run would have seen, however the trainer numbers epochs.
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
        passes: int = 0,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.passes = passes

    def set_epoch(self, epoch: int) -> None:  # the trainer's epoch is ignored on purpose
        pass

    def __iter__(self):
        self.epoch = self.passes
        self.passes += 1
        return super().__iter__()
