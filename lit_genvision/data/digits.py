"""scikit-learn's bundled digits (1,797 real 8×8 handwritten digits, 10 classes): the embedded,
offline default on which every family trains on a CPU in minutes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_genvision.data.base import InMemoryDataModule, TensorImageDataset
from lit_genvision.data.captions import caption_for, label_templates, make_captions, read_captions

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
        captions: None: no text; ``"templates"``: a caption per digit from its split's own template
            set (`captions.make_captions`, attributes measured at 16×16, seeded by ``seed``); a path
            ending in ``.parquet``: captions read with `captions.read_captions`, keyed by ``str(id)``.

    Batches carry ``image``, ``label``, ``id`` (the digit's index in scikit-learn's ``load_digits()``
    order) and, with captions, ``text`` (a list of strings in batch order).
    """

    name = "digits"

    def __init__(
        self,
        image_size: int = 16,
        batch_size: int = 128,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        num_workers: int = 0,
        augment_crop: int = 0,
        captions: str | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, num_workers=num_workers, augment_crop=augment_crop)
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8 (the digits are 8×8), got {image_size}.")
        if captions is not None and captions != "templates" and not str(captions).endswith(".parquet"):
            raise ValueError(
                f"captions must be None, 'templates' or a path ending in .parquet, got {captions!r}; pass one of these."
            )
        self.image_size, self.captions = image_size, captions
        #: Batch keys provided: ``text`` only when captions are on.
        self.provides = ("image", "label", "text") if captions is not None else ("image", "label")
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.image_size, self.image_size)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images, labels = load_digits_uint8(self.image_size)
        texts = self.file_captions(len(images)) if self.captions not in (None, "templates") else None
        measured = None
        if self.captions == "templates":  # attributes are measured at 16×16, where the thresholds were fixed
            measured = images if self.image_size == 16 else load_digits_uint8(16)[0]
        for name, idx in split_indices(len(images), self.val_fraction, self.test_fraction, self.seed).items():
            extra: dict = {"id": idx}
            if measured is not None:  # each split captioned from its own template set
                extra["text"] = make_captions(measured[idx], labels[idx], name, self.seed)
            elif texts is not None:
                extra["text"] = [texts[i] for i in idx.tolist()]
            self.splits[name] = TensorImageDataset(images[idx], labels[idx], **extra)

    def caption_corpus(self, split: str = "train") -> list[str]:
        """The captions of ``split`` (a text tower's tokenizer is trained on the training ones)."""
        self.setup("fit")
        dataset = self.split(split)
        if "text" not in dataset.fields:
            raise ValueError("these digits have no captions; pass captions: templates (or a captions .parquet).")
        return list(dataset.fields["text"])

    def zero_shot_prompts(self, split: str = "test") -> list[list[str]]:
        """Per class, the prompts of ``split``'s label-only templates ("a handwritten seven", …): zero-shot
        classification of a split uses its own templates, which training never saw for the test split."""
        return [[caption_for(k, {}, t) for t in label_templates(split)] for k in range(DIGITS_CLASSES)]

    def file_captions(self, n: int) -> list[str]:
        """The caption of each of the ``n`` digits, read from the ``captions`` parquet by ``str(id)``."""
        found = read_captions(self.captions)
        missing = [i for i in range(n) if str(i) not in found]
        if missing:
            raise ValueError(
                f"{self.captions} has no caption for {len(missing)} of the {n} digit ids (the first is {missing[0]}); "
                f"write one row per id 0 … {n - 1} (key = str(id)) with write_captions."
            )
        return [found[str(i)] for i in range(n)]
