"""`lit-genvision sample` and `export` on a checkpoint written by `fit`, and their bad-input messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from lit_genvision.cli import main


def test_png_grid(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", "--ckpt", str(tiny_checkpoint), "--num", "9", "--steps", "3", "--out", str(out)]) == 0
    img = Image.open(out)
    assert img.size[0] == img.size[1] > 3 * 8  # a 3×3 grid of upscaled 8×8 digits
    assert "Wrote 9 images" in capsys.readouterr().out


def test_npz_layout_and_seed_reproducibility(tiny_checkpoint, tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    for out in (a, b):
        main(
            [
                "sample",
                "--ckpt",
                str(tiny_checkpoint),
                "--num",
                "5",
                "--sampler",
                "ddim",
                "--steps",
                "4",
                "--seed",
                "7",
                "--out",
                str(out),
            ]
        )
    arr = np.load(a)["arr_0"]
    assert arr.shape == (5, 8, 8, 1) and arr.dtype == np.uint8
    np.testing.assert_array_equal(arr, np.load(b)["arr_0"])


def test_ddpm_sampler_and_batches(tiny_checkpoint, tmp_path):
    out = tmp_path / "ddpm.npz"
    main(
        [
            "sample",
            "--ckpt",
            str(tiny_checkpoint),
            "--num",
            "5",
            "--sampler",
            "ddpm",
            "--batch-size",
            "2",
            "--out",
            str(out),
        ]
    )
    assert np.load(out)["arr_0"].shape[0] == 5


def test_interpolation_row(tiny_checkpoint, tmp_path):
    out = tmp_path / "interp.png"
    main(["sample", "--ckpt", str(tiny_checkpoint), "--interpolate", "6", "--steps", "3", "--out", str(out)])
    w, h = Image.open(out).size
    assert w > 5 * h  # one row of six


@pytest.mark.parametrize(
    "make, args, message",
    [
        (None, ["--steps", "5000"], "steps must be an integer between 1 and 50"),
        (None, ["--out", "x.bmp"], "must end in .png, .jpg, .gif or .npz"),
        (None, ["--out", "x.gif"], "a .gif shows videos and this diffusion model draws images; use .png."),
        ("missing", [], "checkpoint not found"),
        ("truncated", [], "corrupt or truncated"),
        ("garbage", [], "corrupt or truncated"),
        ("foreign", [], "not a lit-genvision checkpoint"),
    ],
)
def test_bad_input_is_one_clear_sentence(tiny_checkpoint, tmp_path, capsys, make, args, message):
    ckpt = tiny_checkpoint
    if make == "missing":
        ckpt = tmp_path / "nope.ckpt"
    elif make == "truncated":
        ckpt = tmp_path / "cut.ckpt"
        data = tiny_checkpoint.read_bytes()
        ckpt.write_bytes(data[: len(data) // 2])
    elif make == "garbage":
        ckpt = tmp_path / "garbage.ckpt"
        ckpt.write_bytes(b"not a checkpoint at all")
    elif make == "foreign":
        ckpt = tmp_path / "foreign.ckpt"
        torch.save({"state_dict": {"w": torch.zeros(1)}}, ckpt)
    out = tmp_path / "o.png"
    code = main(["sample", "--ckpt", str(ckpt), "--num", "2", "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and err.count("\n") == 0
    assert not out.exists()


def test_export_ema_to_safetensors(tiny_checkpoint, tmp_path):
    out = tmp_path / "ema.safetensors"
    assert main(["export", "--ckpt", str(tiny_checkpoint), "--out", str(out)]) == 0
    tensors = load_file(out)
    shadow = torch.load(tiny_checkpoint, weights_only=True)["callbacks"]["EMA"]["shadow"]
    assert set(shadow) <= set(tensors)
    for name, value in shadow.items():
        torch.testing.assert_close(tensors[name], value)


def test_save_npz_writes_images_and_videos_channels_last(tmp_path):
    """An image .npz is N×H×W×C, a video .npz N×T×H×W×C, both uint8 ``arr_0`` (the design's .npz contract)."""
    from lit_genvision.data.base import to_uint8
    from lit_genvision.experiments.sample import save_npz

    g = torch.Generator().manual_seed(0)
    images, video = torch.rand(2, 3, 4, 5, generator=g) * 2 - 1, torch.rand(2, 3, 6, 4, 5, generator=g) * 2 - 1
    save_npz(images, None, tmp_path / "i.npz")
    save_npz(video, torch.tensor([1, 2]), tmp_path / "v.npz")
    i, v = np.load(tmp_path / "i.npz"), np.load(tmp_path / "v.npz")
    assert i["arr_0"].shape == (2, 4, 5, 3) and v["arr_0"].shape == (2, 6, 4, 5, 3) and v["arr_0"].dtype == np.uint8
    assert v["arr_0"][1, 5, 3, 4, 2] == to_uint8(video)[1, 2, 5, 3, 4]  # [n, t, h, w, c] is sample n's pixel
    assert v["labels"].tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"samples must be images \(N, C, H, W\) or videos \(N, C, T, H, W\)"):
        save_npz(torch.zeros(2, 3, 4), None, tmp_path / "x.npz")


@pytest.fixture
def video_model(monkeypatch):
    """The tiny checkpoint's model, its ``sample`` drawing (N, 1, 3, 8, 8) videos by the seed rule's generators and
    its image shape that of a 3-frame video, as ``sample`` loads it."""
    import lit_genvision.experiments.sample as sample_command
    from lit_genvision.experiments.checkpoints import load_model

    def load(*args, **kwargs):
        model = load_model(*args, **kwargs)
        model.image_shape = (1, 3, 8, 8)  # (C, T, H, W)

        def sample(num, *, cond=None, steps=None, generator=None, options=None):
            return torch.rand(num, 1, 3, 8, 8, generator=generator) * 2 - 1

        model.sample = sample
        return model

    monkeypatch.setattr(sample_command, "load_model", load)


def test_sample_writes_videos_as_npz_grid_and_gif(tiny_checkpoint, tmp_path, video_model, capsys):
    from PIL import Image

    out = tmp_path / "v.npz"
    argv = ["sample", "--ckpt", str(tiny_checkpoint), "--num", "5", "--batch-size", "2", "--seed", "3"]
    assert main([*argv, "--out", str(out)]) == 0
    arr = np.load(out)["arr_0"]
    assert arr.shape == (5, 3, 8, 8, 1) and arr.dtype == np.uint8
    assert "Wrote 5 videos" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "v.png")]) == 0  # one row of 3 frames per video
    with Image.open(tmp_path / "v.png") as grid:
        assert grid.size[0] < grid.size[1]  # 5 rows of 3 frames: taller than wide
    assert main([*argv, "--out", str(tmp_path / "v.gif")]) == 0
    with Image.open(tmp_path / "v.gif") as gif:
        assert gif.n_frames == 3


def test_a_records_image_size_is_the_side_h_of_images_and_videos():
    from lit_genvision.experiments.sources import image_side

    assert (
        image_side((3, 16, 16)) == 16 and image_side((3, 5, 12, 16)) == 12 and image_side(torch.Size([9, 1, 8, 8])) == 8
    )
