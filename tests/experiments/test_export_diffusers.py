"""`export --format diffusers`: a DDPM-layout U-Net (Ho et al. 2020) becomes a diffusers UNet2DModel folder
whose outputs equal ours on the same input."""

from __future__ import annotations

import json

import pytest
import torch
from tests_helpers import tiny_diffusion_args

from lit_genvision.cli import main
from lit_genvision.experiments.checkpoints import load_model
from lit_genvision.experiments.export import diffusers_config, write_diffusers
from lit_genvision.nn import UNet

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _diffusers_out(folder, x, t, labels=None):
    ref = diffusers.UNet2DModel.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        return ref, ref(x, t, class_labels=labels).sample


@pytest.mark.parametrize(
    "kw",
    [
        dict(channels=32, channel_mults=[1, 2, 2, 2], attention_at=[16], heads=1, norm_groups=32, dropout=0.1),
        dict(channels=16, channel_mults=[1, 2, 2], attention_at=[8, 4], heads=2, norm_groups=8, num_classes=3),
    ],
)
def test_exported_unet_equals_ours(kw, tmp_path):
    torch.manual_seed(0)
    image_size = 32 if len(kw["channel_mults"]) == 4 else 16
    net = UNet(in_channels=3, image_size=image_size, layout="ddpm", **kw).eval()
    with torch.no_grad():
        for p in net.parameters():  # move the zero-initialised convs and projections off zero
            p.add_(torch.randn_like(p) * 0.05)
    write_diffusers(net, tmp_path / "unet")
    assert {f.name for f in (tmp_path / "unet").iterdir()} == {"config.json", "diffusion_pytorch_model.safetensors"}

    x, t = torch.randn(3, 3, image_size, image_size), torch.tensor([0, 417, 999])
    labels = torch.tensor([0, 2, 3]) if "num_classes" in kw else None  # 3: the null label
    ref, expected = _diffusers_out(tmp_path / "unet", x, t, labels)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in net.parameters())
    with torch.no_grad():
        ours = net(x, t, None if labels is None else {"label": labels})
    assert ours.abs().max() > 0.1  # a real signal, not two zero outputs
    torch.testing.assert_close(expected, ours, rtol=1e-5, atol=1e-5)


def test_export_command_writes_the_ema_weights(tmp_path):
    root = tmp_path / "runs"
    extra = {"model.init_args.net.init_args.layout": "ddpm", "model.init_args.net.init_args.norm_groups": "8"}
    main(["fit", *tiny_diffusion_args(root, max_steps=6, **extra)])
    ckpt = root / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    out = tmp_path / "ddpm-unet"
    assert main(["export", "--ckpt", str(ckpt), "--format", "diffusers", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["_class_name"] == "UNet2DModel"

    model = load_model(ckpt)
    assert model.ema_loaded
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 40])
    _, expected = _diffusers_out(out, x, t)
    with torch.no_grad():
        torch.testing.assert_close(expected, model.net(x, t), rtol=1e-5, atol=1e-5)


def test_lecture_layout_is_refused_in_one_sentence():
    with pytest.raises(ValueError, match=r"^--format diffusers needs a U-Net built with layout: ddpm, .*\.$"):
        diffusers_config(UNet(image_size=8, channels=8, channel_mults=[1, 2], norm_groups=4))


def test_diffusers_out_must_be_a_folder(capsys):
    assert main(["export", "--ckpt", "x.ckpt", "--format", "diffusers", "--out", "unet.safetensors"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--out must be a folder name" in err and err.count("\n") == 0
