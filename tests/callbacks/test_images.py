"""Grids, GIFs and .npz of images (N, C, H, W) and videos (N, C, T, H, W), and the sample-grid callback
writing a video model's samples."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from lit_genvision.callbacks.images import grid_image, save_gif, save_images, upscale_for_view
from lit_genvision.callbacks.sample_grid import SampleGrid
from lit_genvision.data.base import to_uint8


def _videos(n: int = 2, c: int = 1, t: int = 3, side: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, c, t, side, side, generator=g) * 2 - 1


def _cell(grid: np.ndarray, row: int, col: int, side: int) -> np.ndarray:
    """The tile at (row, col) of a make_grid grid with padding 2."""
    top, left = 2 + row * (side + 2), 2 + col * (side + 2)
    return grid[top : top + side, left : left + side]


def test_a_video_grid_is_one_row_of_frames_per_video():
    videos = _videos(n=2, c=3, t=3)
    grid = grid_image(videos, nrow=5)  # nrow is T for videos
    assert grid.shape == (2 + 2 * 6, 2 + 3 * 6, 3)
    for v in range(2):
        for f in range(3):
            expected = to_uint8(videos[v, :, f]).permute(1, 2, 0).numpy()
            assert np.array_equal(_cell(grid, v, f, 4), expected)


def test_an_image_grid_is_unchanged():
    images = _videos(n=4, c=1)[:, :, 0]  # (4, 1, 4, 4)
    grid = grid_image(images)
    assert grid.shape == (2 + 2 * 6, 2 + 2 * 6, 3)  # about square: 2 × 2 (make_grid turns grey into RGB)
    assert np.array_equal(_cell(grid, 1, 0, 4)[..., 0], to_uint8(images[2, 0]).numpy())


def test_upscale_keeps_the_frames_and_scales_each():
    videos = _videos(side=4)
    up = upscale_for_view(videos, min_size=16)
    assert up.shape == (2, 1, 3, 16, 16)
    assert torch.equal(up[1, :, 2], upscale_for_view(videos[1:2, :, 2], min_size=16)[0])
    assert upscale_for_view(videos, min_size=4) is videos


def test_save_images_writes_videos_as_n_t_h_w_c_npz_and_a_png(tmp_path):
    videos = _videos(c=3)
    save_images(videos, tmp_path / "v.npz")
    with np.load(tmp_path / "v.npz") as z:
        arr = z["arr_0"]
    assert arr.shape == (2, 3, 4, 4, 3) and arr.dtype == np.uint8
    assert np.array_equal(arr[1, 2], to_uint8(videos[1, :, 2]).permute(1, 2, 0).numpy())
    png = save_images(videos, tmp_path / "v.png")
    assert np.array_equal(np.asarray(Image.open(png)), grid_image(videos))


def test_save_gif_plays_the_videos_side_by_side(tmp_path):
    videos = _videos(n=3, c=1, t=4)
    path = save_gif(videos, tmp_path / "v.gif", fps=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 4
        assert gif.info["duration"] == 100 and gif.info["loop"] == 0
        for f in range(4):
            gif.seek(f)
            frame = np.asarray(gif.convert("L"))
            assert np.array_equal(frame, grid_image(videos[:, :, f], nrow=3)[..., 0])  # one row of 3 videos
    one = save_gif(videos[0], tmp_path / "one.gif")  # a single video (C, T, H, W)
    with Image.open(one) as gif:
        assert gif.n_frames == 4 and gif.size == (4, 4)  # make_grid leaves a lone frame unpadded
    with pytest.raises(ValueError, match="fps"):
        save_gif(videos, tmp_path / "x.gif", fps=0)


def test_sample_grid_writes_a_png_and_a_gif_for_a_video_model(tmp_path):
    class VideoModel:
        device = torch.device("cpu")

        def sample(self, num, steps=None, generator=None):
            return torch.rand(num, 1, 3, 16, 16, generator=generator) * 2 - 1

    trainer = SimpleNamespace(
        log_dir=str(tmp_path), default_root_dir=str(tmp_path), is_global_zero=True, callbacks=[], loggers=[]
    )
    cb = SampleGrid(num=4, fps=4)
    cb._write(trainer, VideoModel(), "final")
    assert cb.last_path == tmp_path / "samples" / "final.png"
    assert Image.open(cb.last_path).size == (2 + 3 * 66, 2 + 4 * 66)  # 4 rows of 3 frames, upscaled to 64
    with Image.open(tmp_path / "samples" / "final.gif") as gif:
        assert gif.n_frames == 3 and gif.size == (2 + 2 * 66, 2 + 2 * 66)  # 2 × 2 videos
