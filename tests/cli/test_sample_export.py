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
        (None, ["--out", "x.gif"], "must end in .png, .jpg or .npz"),
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
