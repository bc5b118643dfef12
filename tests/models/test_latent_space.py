"""A diffusion model in the latent space of a frozen autoencoder, through the real CLI: it trains on
encoded images, samples latents without clipping x̂_0, decodes them, and `evaluate` records the
decoded image's size (16), not the latent's (8)."""

from __future__ import annotations

import json

import torch
from fixtures.latent import PoolAutoencoder
from tests_helpers import tiny_diffusion_args

from lit_genvision.cli import main
from lit_genvision.experiments.store import ResultsStore
from lit_genvision.methods import DDIMSampler, LinearSchedule
from lit_genvision.methods.space import LatentSpace
from lit_genvision.models import DiffusionModel
from lit_genvision.models.pretrained import TRUSTED_ENV, load_model
from lit_genvision.nn import UNet

SPACE = {
    "class_path": "lit_genvision.methods.space.LatentSpace",
    "init_args": {"autoencoder": {"class_path": "fixtures.latent.PoolAutoencoder"}, "scale_factor": 0.5},
}


def latent_model() -> DiffusionModel:
    net = UNet(image_size=8, channels=8, channel_mults=[1, 2], norm_groups=4, attention_at=[])
    return DiffusionModel(net, LinearSchedule(20), DDIMSampler(steps=3), space=LatentSpace(PoolAutoencoder(), 0.5))


def test_a_latent_model_trains_on_latents_and_samples_decoded_images():
    torch.manual_seed(0)
    model = latent_model()
    assert model.image_shape == (1, 16, 16) and model.sample_shape == (1, 8, 8)
    inputs: list[torch.Tensor] = []
    model.net.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    model.training_step({"image": images}, 0)
    assert inputs[-1].shape == (4, 1, 8, 8)  # the network saw z_t of the latents
    out = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 16, 16) and out.abs().max() <= 1
    assert inputs[-1].shape == (3, 1, 8, 8)


def test_x0_is_not_clipped_in_latent_space(monkeypatch):
    model = latent_model()
    seen: list[bool] = []
    original = DDIMSampler.__call__

    def spy(self, *args, clip=True, **kw):
        seen.append(clip)
        return original(self, *args, clip=clip, **kw)

    monkeypatch.setattr(DDIMSampler, "__call__", spy)
    model.sample(1)
    pixel = DiffusionModel(model.net, LinearSchedule(20), DDIMSampler(steps=3), image_shape=(1, 8, 8))
    pixel.sample(1)
    assert seen == [False, True]  # latents: never clipped; pixels: clipped


def test_evaluate_records_the_decoded_image_size(tmp_path, monkeypatch):
    monkeypatch.setenv(TRUSTED_ENV, "fixtures")  # the test autoencoder's module: trusted by this user
    args = tiny_diffusion_args(tmp_path, max_steps=2)
    args += ["--data.init_args.image_size", "16", "--model.init_args.space", json.dumps(SPACE)]
    assert main(["fit", *args]) == 0
    ckpt = next(tmp_path.rglob("last.ckpt"))
    model = load_model(ckpt)
    assert model.image_shape == (1, 16, 16) and model.sample_shape == (1, 8, 8)
    assert float(model.space.scale_factor) == 0.5
    store = tmp_path / "r.sqlite"
    assert main(["evaluate", "--ckpt", str(ckpt), "--num-samples", "65", "--steps", "2", "--store", str(store)]) == 0
    sizes = {r["image_size"] for r in ResultsStore(store).records()}
    assert sizes == {16}


def test_without_trust_the_test_autoencoder_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(TRUSTED_ENV, "fixtures")
    args = tiny_diffusion_args(tmp_path, max_steps=1)
    args += ["--data.init_args.image_size", "16", "--model.init_args.space", json.dumps(SPACE)]
    assert main(["fit", *args]) == 0
    monkeypatch.delenv(TRUSTED_ENV)
    ckpt = next(tmp_path.rglob("last.ckpt"))
    assert main(["sample", "--ckpt", str(ckpt), "--num", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert "fixtures.latent.PoolAutoencoder" in capsys.readouterr().err
