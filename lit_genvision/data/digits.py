"""scikit-learn's bundled digits (1,797 real 8×8 handwritten digits, 10 classes): the embedded,
offline default on which every family trains on a CPU in minutes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_genvision.data.base import InMemoryDataModule, TensorImageDataset

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


class DigitsDataModule(InMemoryDataModule):
    """Digits at ``image_size`` (16 by default), split train/val/test with a fixed seed.

    Args:
        image_size: side of the (square) images after upsampling from 8×8.
        batch_size: per-process batch size.
        val_fraction: share of the 1,797 images held out for validation.
        test_fraction: share held out for test.
        seed: seed of the split and of the shuffling.
        num_workers: DataLoader workers (0: the data is already in memory).
        augment_crop: random shifts of up to this many pixels on training batches (no flips:
            a mirrored digit is another shape).
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
        augment_crop: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, num_workers=num_workers, augment_crop=augment_crop)
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8 (the digits are 8×8), got {image_size}.")
        self.image_size = image_size
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.image_size, self.image_size)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images, labels = load_digits_uint8(self.image_size)
        for name, idx in split_indices(len(images), self.val_fraction, self.test_fraction, self.seed).items():
            self.splits[name] = TensorImageDataset(images[idx], labels[idx])
