"""CIFAR-10 (Krizhevsky 2009) from its official python batches, the release tarball, or a
Hugging Face parquet copy; held in memory as uint8 with batched flip/crop on the device.

On-disk layouts read:
    ROOT/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}   (pickled dicts)
    ROOT/cifar-10-python.tar.gz                                            (the same, packed)
    ROOT/{train,test}-*.parquet  or  ROOT/plain_text/{train,test}-*.parquet (columns img{bytes}, label)
and, only with ``download=True``, the hub dataset ``uoft-cs/cifar10``.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from lit_genvision.data.base import InMemoryDataModule, TensorImageDataset

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
LAYOUT = (
    "cifar-10-batches-py/ with data_batch_1..5, test_batch and batches.meta (the python version), "
    "cifar-10-python.tar.gz, or {train,test}-*.parquet with columns img and label"
)


class _BatchUnpickler(pickle.Unpickler):
    """The CIFAR batches are pickles of dicts, lists, bytes and numpy arrays: allow those and
    nothing else, so a doctored file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}, which a CIFAR batch never contains.")


def _load_batch(fileobj, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _BatchUnpickler(fileobj, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ValueError(
            f"CIFAR-10 batch {name} is not a valid python batch ({err}); re-extract the dataset."
        ) from None
    data, labels = d.get(b"data"), d.get(b"labels")
    if data is None or labels is None:
        raise ValueError(f"CIFAR-10 batch {name} has no b'data'/b'labels' keys; expected the python version.")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(f"CIFAR-10 batch {name} holds {data.shape} data for {len(labels)} labels; expected N×3072.")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def read_python_batches(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': (images N×3×32×32 uint8, labels), 'test': ...} from the folder or the tarball."""
    folder, tarball = root / "cifar-10-batches-py", root / "cifar-10-python.tar.gz"
    names = {"train": TRAIN_BATCHES, "test": ("test_batch",)}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if folder.is_dir():
        missing = [n for n in (*TRAIN_BATCHES, "test_batch") if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(f"CIFAR-10 folder {folder} lacks {', '.join(missing)}; expected {LAYOUT}.")
        for split, files in names.items():
            parts = []
            for n in files:
                with open(folder / n, "rb") as f:
                    parts.append(_load_batch(f, n))
            out[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        return out
    with tarfile.open(tarball, "r:gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        for split, files in names.items():
            parts = []
            for n in files:
                if n not in members:
                    raise FileNotFoundError(f"{tarball} lacks {n}; expected the cifar-10-python.tar.gz release.")
                parts.append(_load_batch(tar.extractfile(members[n]), n))
            out[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return out


def read_parquet(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from Hugging Face parquet files (``img`` {bytes} or ``image``, ``label``)."""
    import pyarrow.parquet as pq
    from PIL import Image

    images, labels = [], []
    for file in files:
        table = pq.read_table(file)
        cols = set(table.column_names)
        img_col = "img" if "img" in cols else "image" if "image" in cols else None
        if img_col is None or "label" not in cols:
            raise ValueError(f"{file} has columns {sorted(cols)}; expected img (or image) and label.")
        for cell, label in zip(table.column(img_col).to_pylist(), table.column("label").to_pylist(), strict=True):
            raw = cell["bytes"] if isinstance(cell, dict) else cell
            img = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
            if img.shape != (32, 32, 3):
                raise ValueError(f"{file} holds a {img.shape} image; CIFAR-10 images are 32×32×3.")
            images.append(img.transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _parquet_splits(root: Path) -> dict[str, list[Path]]:
    found = {
        s: sorted([*root.glob(f"{s}-*.parquet"), *root.glob(f"plain_text/{s}-*.parquet")]) for s in ("train", "test")
    }
    return found if all(found.values()) else {}


def load_cifar10(root: str | Path, download: bool = False) -> dict[str, tuple[Tensor, Tensor]]:
    """CIFAR-10 as uint8 tensors: {'train': (50000×3×32×32, labels), 'test': (10000×…, labels)}."""
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir() or (root / "cifar-10-python.tar.gz").is_file():
        arrays = read_python_batches(root)
    elif parquet := _parquet_splits(root):
        arrays = {s: read_parquet(files) for s, files in parquet.items()}
    elif download:
        arrays = _from_hub()
    else:
        raise FileNotFoundError(f"no CIFAR-10 found under {root}; expected {LAYOUT} (or pass download: true online).")
    return {s: (torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)) for s, (x, y) in arrays.items()}


def _from_hub() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        from datasets import load_dataset

        ds = load_dataset("uoft-cs/cifar10")
    except Exception as err:  # offline, or the hub refused
        raise FileNotFoundError(
            f"could not download uoft-cs/cifar10 ({type(err).__name__}); put {LAYOUT} under "
            "the data root and set download: false."
        ) from None
    out = {}
    for split in ("train", "test"):
        rows = ds[split]
        out[split] = (
            np.stack([np.asarray(im.convert("RGB")).transpose(2, 0, 1) for im in rows["img"]]),
            np.asarray(rows["label"], dtype=np.int64),
        )
    return out


class CIFAR10DataModule(InMemoryDataModule):
    """CIFAR-10 in memory; ``val_size`` images of the train set (seeded) form the val split.

    Args:
        root: folder holding one of the layouts above.
        batch_size: per-process batch size.
        val_size: train images held out for validation.
        seed: seed of the val split and of the shuffling.
        augment_crop: reflection-pad-and-crop pixels on training batches (4 in the ResNet recipes).
        augment_flip: random horizontal flips on training batches.
        download: fetch ``uoft-cs/cifar10`` from the hub when nothing is under ``root``.
        num_workers: DataLoader workers (0 is right: batches are one index into memory).
        pin_memory: pin host batches for faster GPU copies.
    """

    name = "cifar10"
    provides = ("image", "label")
    image_size = 32

    def __init__(
        self,
        root: str = "data/cifar10",
        batch_size: int = 128,
        val_size: int = 5000,
        seed: int = 0,
        augment_crop: int = 4,
        augment_flip: bool = True,
        download: bool = False,
        num_workers: int = 0,
        pin_memory: bool = True,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            seed=seed,
            num_workers=num_workers,
            pin_memory=pin_memory,
            augment_crop=augment_crop,
            augment_flip=augment_flip,
        )
        self.root, self.val_size, self.download = root, val_size, download

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, 32, 32)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        data = load_cifar10(self.root, self.download)
        x, y = data["train"]
        if not 0 <= self.val_size < len(x):
            raise ValueError(f"val_size must be between 0 and {len(x) - 1}, got {self.val_size}.")
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
        val, train = perm[: self.val_size], perm[self.val_size :]
        self.splits = {
            "train": TensorImageDataset(x[train], y[train]),
            "val": TensorImageDataset(x[val], y[val]),
            "test": TensorImageDataset(*data["test"]),
        }
        rank_zero_info(f"CIFAR-10 from {self.root}: " + ", ".join(f"{k} {len(v)}" for k, v in self.splits.items()))
