"""Writing generated images and videos: PNG grids, GIFs, and the .npz layout outside evaluation suites read.

Everything here takes images (N, C, H, W) or videos (N, C, T, H, W) in [-1, 1], through the frame adapter
of `lit_genvision.metrics.frames`: a video grid is one row of T frames per video; a GIF plays the videos
side by side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

from lit_genvision.data.base import to_uint8
from lit_genvision.metrics.frames import as_frames, from_frames, is_video, num_frames


def grid_image(images: Tensor, nrow: int | None = None) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] → an (H', W', C) uint8 grid, about square by default (``nrow`` per row).

    Videos (N, C, T, H, W): one row per video, its T frames left to right (``nrow`` is then T).
    """
    if is_video(images):
        images, nrow = as_frames(images), num_frames(images)  # (N·T, C, H, W), a video per row
    nrow = nrow or max(1, int(round(len(images) ** 0.5)))
    grid = make_grid(to_uint8(images.detach().cpu()), nrow=nrow, padding=2, pad_value=128)  # (C, H', W')
    return grid.permute(1, 2, 0).numpy()


def _pil(grid: np.ndarray) -> Image.Image:
    """An (H, W, C) uint8 array as a PIL image: grey for one channel, RGB for three."""
    return Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)


def npz_array(images: Tensor) -> np.ndarray:
    """The ``.npz`` layout: uint8 channels last, (N, H, W, C) for images, (N, T, H, W, C) for videos."""
    pixels = to_uint8(images.detach().cpu())
    return (pixels.permute(0, 2, 3, 4, 1) if is_video(pixels) else pixels.permute(0, 2, 3, 1)).numpy()


def save_images(images: Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save by suffix: ``.png``/``.jpg`` a grid (`grid_image`); ``.gif`` the videos playing side by side
    (`save_gif`, at its default fps); ``.npz`` the raw samples as uint8 ``arr_0`` of shape (N, H, W, C)
    (the layout of the guided-diffusion evaluation suite), or (N, T, H, W, C) for videos."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npz":
        np.savez(path, arr_0=npz_array(images))
    elif path.suffix.lower() in {".png", ".jpg", ".jpeg"}:
        _pil(grid_image(images, nrow)).save(path)
    elif path.suffix.lower() == ".gif":
        save_gif(images if is_video(images) else images[:, :, None], path, nrow=nrow)  # images: one frame each
    else:
        raise ValueError(f"output must end in .png, .jpg, .gif or .npz, got {path.name!r}.")
    return path


def save_gif(videos: Tensor, path: str | Path, fps: float = 8.0, nrow: int | None = None) -> Path:
    """An animated GIF, looping forever, of one video (C, T, H, W) or many (N, C, T, H, W) in [-1, 1]:
    frame t is the grid of every video's frame t side by side (``nrow`` videos per row; default all in
    one row), shown for 1/fps seconds."""
    if videos.ndim == 4:
        videos = videos[None]  # one video
    if not is_video(videos):
        raise ValueError(f"save_gif takes a video (C, T, H, W) or videos (N, C, T, H, W), got {tuple(videos.shape)}.")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}.")
    frames = [_pil(grid_image(videos[:, :, f], nrow or len(videos))) for f in range(num_frames(videos))]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)
    return path


def upscale_for_view(images: Tensor, min_size: int = 64) -> Tensor:
    """Nearest-neighbour upscaling so tiny images (digits are 16×16) are visible in a grid; a video's
    frames are upscaled alike, its length kept."""
    factor = max(1, min_size // images.shape[-1])
    if factor == 1:
        return images
    up = torch.nn.functional.interpolate(as_frames(images), scale_factor=factor, mode="nearest")
    return from_frames(up, num_frames(images)) if is_video(images) else up
