"""Writing generated images: PNG grids and the .npz layout outside evaluation suites read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

from lit_genvision.data.base import to_uint8


def grid_image(images: Tensor, nrow: int | None = None) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] → an (H', W', C) uint8 grid, about square by default."""
    nrow = nrow or max(1, int(round(len(images) ** 0.5)))
    grid = make_grid(to_uint8(images.detach().cpu()), nrow=nrow, padding=2, pad_value=128)  # (C, H', W')
    return grid.permute(1, 2, 0).numpy()


def save_images(images: Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save by suffix: ``.png``/``.jpg`` a grid; ``.npz`` the raw samples as uint8 ``arr_0`` of
    shape (N, H, W, C) (the layout of the guided-diffusion evaluation suite)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npz":
        arr = to_uint8(images.detach().cpu()).permute(0, 2, 3, 1).numpy()
        np.savez(path, arr_0=arr)
    elif path.suffix.lower() in {".png", ".jpg", ".jpeg"}:
        grid = grid_image(images, nrow)
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    else:
        raise ValueError(f"output must end in .png, .jpg or .npz, got {path.name!r}.")
    return path


def upscale_for_view(images: Tensor, min_size: int = 64) -> Tensor:
    """Nearest-neighbour upscaling so tiny images (digits are 16×16) are visible in a grid."""
    factor = max(1, min_size // images.shape[-1])
    return images if factor == 1 else torch.nn.functional.interpolate(images, scale_factor=factor, mode="nearest")
