"""Decoding and resizing real-world images, and skipping the broken ones without crashing."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

BAD_IMAGE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class SkippedFiles:
    """Counts files skipped as unreadable and warns once per file, naming it."""

    def __init__(self, what: str = "image") -> None:
        self.what, self.count, self.names = what, 0, set()

    def skip(self, name: str, err: BaseException) -> None:
        self.count += 1
        if name not in self.names:
            self.names.add(name)
            warnings.warn(f"skipped unreadable {self.what} {name} ({type(err).__name__}: {err})", stacklevel=2)


def open_rgb(source: bytes | str | Path) -> Image.Image:
    """Decode an image fully (truncated files fail here, not later) and convert it to RGB."""
    img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    img.load()
    return img.convert("RGB")


def center_crop_resize(img: Image.Image, size: int, crop: int | None = None) -> Tensor:
    """Center-crop to a ``crop``-pixel square (the largest square when None), resize to ``size``
    with an antialiasing filter; returns uint8 (3, size, size)."""
    w, h = img.size
    c = min(crop or min(w, h), w, h)
    left, top = (w - c) // 2, (h - c) // 2
    img = img.crop((left, top, left + c, top + c))
    if c != size:
        img = img.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=None)
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


def resize_to(img: Image.Image, size: int) -> Tensor:
    """Resize (no crop) to size×size; returns uint8 (3, size, size)."""
    img = img.resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
