"""CelebA (Liu et al. 2015), aligned and cropped faces with 40 binary attributes.

On-disk layout (the official release):
    ROOT/img_align_celeba/000001.jpg …
    ROOT/list_attr_celeba.txt        line 1: image count; line 2: the 40 attribute names;
                                     then "000001.jpg -1  1  1 -1 …" (±1 per attribute)
    ROOT/list_eval_partition.txt     "000001.jpg 0" (0 train, 1 val, 2 test)
Images are decoded lazily (with workers), center-cropped and resized (64×64 by default).
"""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torch.utils.data import Dataset

from lit_genvision.data.base import ImageDataModule
from lit_genvision.data.images import BAD_IMAGE_ERRORS, SkippedFiles, center_crop_resize, open_rgb

LAYOUT = "img_align_celeba/*.jpg, list_attr_celeba.txt and list_eval_partition.txt"
SPLITS = {"train": 0, "val": 1, "test": 2}


def read_attributes(path: Path) -> tuple[list[str], dict[str, list[int]]]:
    """(attribute names, {image file: [±1] × 40}) from ``list_attr_celeba.txt``."""
    lines = path.read_text().splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise ValueError(f"{path} must start with the image count and the attribute names; it does not.")
    names = lines[1].split()
    rows: dict[str, list[int]] = {}
    for n, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1 or any(v not in ("1", "-1") for v in parts[1:]):
            raise ValueError(f"{path} line {n} has {len(parts) - 1} values; expected {len(names)} values of ±1.")
        rows[parts[0]] = [int(v) for v in parts[1:]]
    if int(lines[0]) != len(rows):
        raise ValueError(f"{path} announces {int(lines[0])} images but lists {len(rows)}; the file is truncated.")
    return names, rows


def read_partition(path: Path) -> dict[str, int]:
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise ValueError(f"{path} line {n} is {line!r}; expected '<image>.jpg 0|1|2'.")
        out[parts[0]] = int(parts[1])
    return out


class CelebAImages(Dataset):
    """Lazily decoded faces with their attributes; an unreadable image is skipped (counted,
    warned once with its path) and the next readable one is returned in its place."""

    def __init__(self, folder: Path, files: list[str], attributes: Tensor, image_size: int, crop: int | None) -> None:
        self.folder, self.files, self.attributes = folder, files, attributes
        self.image_size, self.crop = image_size, crop
        self.skipped = SkippedFiles("CelebA image")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        for k in range(len(self.files)):
            j = (i + k) % len(self.files)
            path = self.folder / self.files[j]
            try:
                image = center_crop_resize(open_rgb(path), self.image_size, self.crop)
            except BAD_IMAGE_ERRORS as err:
                self.skipped.skip(str(path), err)
                continue
            return {"image": image, "attributes": self.attributes[j]}
        raise RuntimeError(f"no readable image in {self.folder}; every CelebA image failed to decode.")


class CelebADataModule(ImageDataModule):
    """CelebA faces (``image``) with their 40 attributes (``attributes``, float 0/1; names in
    ``attribute_names``), using the official train/val/test partition.

    Args:
        root: folder holding the official layout.
        image_size: output side (64 by default).
        crop: side of the center square cut before resizing (140 keeps the face, as in DCGAN/VAE
            CelebA setups; None = the full 178-pixel width).
        attributes: keep only images whose named attributes have these values, e.g. {Smiling: true}.
        batch_size: per-process batch size.
        seed: seed of the shuffling.
        num_workers: DataLoader workers decoding JPEGs.
        augment_flip: random horizontal flips on training batches (faces are symmetric enough).
        pin_memory: pin host batches.
    """

    name = "celeba"
    provides = ("image", "attributes")

    def __init__(
        self,
        root: str = "data/celeba",
        image_size: int = 64,
        crop: int | None = 140,
        attributes: dict[str, bool] | None = None,
        batch_size: int = 128,
        seed: int = 0,
        num_workers: int = 2,
        augment_flip: bool = True,
        pin_memory: bool = True,
    ) -> None:
        super().__init__(batch_size, seed, num_workers, pin_memory, augment_flip=augment_flip)
        self.root, self.image_size, self.crop, self.filter = Path(root), image_size, crop, attributes or {}
        self.attribute_names: list[str] = []

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        folder = self.root / "img_align_celeba"
        attr_file, part_file = self.root / "list_attr_celeba.txt", self.root / "list_eval_partition.txt"
        for p in (folder, attr_file, part_file):
            if not p.exists():
                raise FileNotFoundError(f"CelebA: {p} is missing; expected {LAYOUT} under {self.root}.")
        self.attribute_names, attrs = read_attributes(attr_file)
        partition = read_partition(part_file)
        on_disk = {p.name for p in folder.iterdir()}
        unknown = [k for k in self.filter if k not in self.attribute_names]
        if unknown:
            raise ValueError(
                f"unknown CelebA attribute(s) {', '.join(unknown)}; choose from the 40 in {attr_file.name}."
            )
        missing = [f for f in attrs if f not in on_disk]
        if missing:
            raise ValueError(
                f"{len(missing)} images listed in {attr_file.name} are not in {folder} (first: {missing[0]}); "
                "the label file does not match the images."
            )
        if set(partition) != set(attrs):
            diff = sorted(set(partition) ^ set(attrs))
            raise ValueError(
                f"{part_file.name} and {attr_file.name} list different images ({len(diff)} differ, "
                f"first: {diff[0]}); use the files of one release."
            )
        cols = {name: i for i, name in enumerate(self.attribute_names)}
        keep = [f for f, a in attrs.items() if all((a[cols[k]] > 0) == bool(v) for k, v in self.filter.items())]
        for split, code in SPLITS.items():
            files = sorted(f for f in keep if partition[f] == code)
            values = torch.tensor([attrs[f] for f in files], dtype=torch.float32).reshape(-1, len(cols))
            self.splits[split] = CelebAImages(folder, files, (values > 0).float(), self.image_size, self.crop)
        summary = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        rank_zero_info(f"CelebA from {self.root}: {summary} (filter {self.filter or 'none'})")
