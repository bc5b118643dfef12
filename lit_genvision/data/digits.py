"""scikit-learn's bundled digits (1,797 real 8×8 handwritten digits, 10 classes): the embedded,
offline default on which every family trains on a CPU in minutes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lit_genvision.data.base import ImageDataModule

DIGITS_CLASSES = 10


def load_digits_uint8(image_size: int = 16) -> tuple[Tensor, Tensor]:
    """All 1,797 digits as uint8 (N, 1, S, S) images and int64 labels.

    The 0–16 ink levels are scaled to 0–255 and upsampled with antialiased bilinear resizing.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images).float().div(16.0)[:, None]  # (N, 1, 8, 8) in [0, 1]
    if image_size != 8:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, torch.from_numpy(digits.target).long()


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, Tensor]:
    """A fixed, seeded permutation cut into train / val / test index sets."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    return {"test": perm[:n_test], "val": perm[n_test : n_test + n_val], "train": perm[n_test + n_val :]}


class TensorImageDataset(Dataset):
    """In-memory uint8 images (and labels) returned as contract dicts."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"image": self.images[i], "label": self.labels[i]}


class DigitsDataModule(ImageDataModule):
    """Digits at ``image_size`` (16 by default), split train/val/test with a fixed seed.

    Args:
        image_size: side of the (square) images after upsampling from 8×8.
        batch_size: per-process batch size.
        val_fraction: share of the 1,797 images held out for validation.
        test_fraction: share held out for test.
        seed: seed of the split and of the shuffling.
        num_workers: DataLoader workers (0: the data is already in memory).
    """

    name = "digits"
    provides = ("image", "label")

    def __init__(
        self,
        image_size: int = 16,
        batch_size: int = 128,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8 (the digits are 8×8), got {image_size}.")
        self.image_size, self.batch_size = image_size, batch_size
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.seed, self.num_workers = seed, num_workers
        self.splits: dict[str, TensorImageDataset] = {}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.image_size, self.image_size)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images, labels = load_digits_uint8(self.image_size)
        for name, idx in split_indices(len(images), self.val_fraction, self.test_fraction, self.seed).items():
            self.splits[name] = TensorImageDataset(images[idx], labels[idx])

    def split(self, name: str) -> TensorImageDataset:
        self.setup()
        return self.splits[name]

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        ds = self.split(name)
        if shuffle:
            sampler = self.train_sampler(ds, self.seed)
        else:
            trainer = getattr(self, "trainer", None)
            world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
            sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=False)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            drop_last=shuffle,
            generator=torch.Generator().manual_seed(self.seed),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
