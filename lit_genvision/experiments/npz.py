"""The ``.npz`` image files the commands read: ``arr_0`` uint8 N×H×W×C (images) or N×H×W (masks), checked with one
sentence for each way they can be wrong."""

from __future__ import annotations

import numpy as np


def read_array(path: str, flag: str, ndim: int, what: str) -> np.ndarray:
    """``arr_0`` of the .npz at ``path`` (for the flag ``flag``), which must have ``ndim`` axes (``what`` it holds)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "arr_0" not in data:
                raise ValueError(f"{flag} {path} has no arr_0; save the array with np.savez(path, array).")
            array = data["arr_0"]
    except FileNotFoundError:
        raise ValueError(f"{flag} {path} does not exist; pass an .npz file of {what}.") from None
    if array.ndim != ndim:
        raise ValueError(f"{flag} {path} holds a {array.ndim}-d array; expected {what}.")
    return array


def read_images(path: str, flag: str, image_shape: tuple[int, ...]) -> np.ndarray:
    """uint8 images (N, H, W, C) from ``path``, checked against a model's image shape (C, H, W)."""
    images = read_array(path, flag, 4, "uint8 images N×H×W×C")
    c, h, w = image_shape
    if images.dtype != np.uint8:
        raise ValueError(f"{flag} must be uint8 (0 … 255), got {images.dtype}; convert with .astype(np.uint8).")
    if images.shape[1:] != (h, w, c):
        raise ValueError(f"{flag} are {images.shape[1:]} (H, W, C) but the model draws {(h, w, c)}; resize them.")
    return images
