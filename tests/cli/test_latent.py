"""AE/VAE through the CLI: fit on digits, sample and evaluate a VAE, and every latent tool."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.cli import instantiate_module
from PIL import Image
from safetensors.torch import load_file
from tests_helpers import ROOT

from lit_genvision.cli import main
from lit_genvision.experiments.store import ResultsStore


def _fit(root, config: str, name: str, epochs: int = 2) -> str:
    main(
        [
            "fit",
            "--config",
            str(ROOT / "configs" / config),
            "--trainer.max_epochs",
            str(epochs),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
            "--trainer.default_root_dir",
            str(root),
            "--trainer.logger.init_args.save_dir",
            str(root),
            "--trainer.logger.init_args.name",
            name,
        ]
    )
    return str(root / name / "version_0" / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("latent")
    return {"ae": _fit(root, "autoencoder/digits.yaml", "ae"), "vae": _fit(root, "vae/digits.yaml", "vae")}


def test_vae_samples_from_the_prior_and_is_scored(ckpts, tmp_path):
    store = tmp_path / "r.sqlite"
    assert main(["evaluate", "--ckpt", ckpts["vae"], "--num-samples", "100", "--store", str(store)]) == 0
    rec = ResultsStore(store).records(metric="digits_fd")[0]
    assert rec["family"] == "vae" and rec["steps"] == 1 and rec["sampler"] == "direct"


@pytest.mark.parametrize("model", ["ae", "vae"])
def test_embed_scatter(ckpts, tmp_path, model):
    out = tmp_path / "embed.png"
    assert main(["latent", "embed", "--ckpt", ckpts[model], "--out", str(out)]) == 0
    assert Image.open(out).size[0] > 100


def test_attribute_vector_traverse_blend_reconstruct(ckpts, tmp_path):
    vec = tmp_path / "seven.safetensors"
    assert (
        main(
            [
                "latent",
                "attribute-vector",
                "--ckpt",
                ckpts["vae"],
                "--attribute",
                "label=7",
                "--against",
                "label=1",
                "--out",
                str(vec),
            ]
        )
        == 0
    )
    v = load_file(vec)["vector"]
    assert v.shape == (8,) and v.norm() > 0
    trav = tmp_path / "trav.png"
    assert (
        main(
            [
                "latent",
                "traverse",
                "--ckpt",
                ckpts["vae"],
                "--vector",
                str(vec),
                "--start",
                "label=1",
                "--rows",
                "3",
                "--num",
                "5",
                "--low",
                "0",
                "--high",
                "1",
                "--out",
                str(trav),
            ]
        )
        == 0
    )
    w, h = Image.open(trav).size
    assert w > h  # 5 columns, 3 rows
    for cmd in (["blend", "--a", "0", "--b", "3", "--num", "6"], ["reconstruct", "--num", "8"]):
        out = tmp_path / f"{cmd[0]}.png"
        assert main(["latent", *cmd, "--ckpt", ckpts["vae"], "--out", str(out)]) == 0
        assert out.is_file()


def test_unknown_selection_and_non_latent_checkpoint(ckpts, tiny_checkpoint, tmp_path, capsys):
    assert (
        main(
            [
                "latent",
                "attribute-vector",
                "--ckpt",
                ckpts["vae"],
                "--attribute",
                "Smiling",
                "--out",
                str(tmp_path / "v.safetensors"),
            ]
        )
        == 2
    )
    assert "unknown attribute 'Smiling'" in capsys.readouterr().err
    assert main(["latent", "embed", "--ckpt", str(tiny_checkpoint), "--out", str(tmp_path / "e.png")]) == 2
    assert "has no latent space" in capsys.readouterr().err


def test_vae_reconstruction_improves_with_training(ckpts):
    """Held-out digits are reconstructed better by the trained VAE than by the same model freshly
    initialised (the fit's own seed), by a clear margin; its prior samples have the image shape."""
    from lit_genvision.data.base import to_unit_range
    from lit_genvision.experiments.checkpoints import load_model, read_checkpoint, run_datamodule

    trained = load_model(ckpts["vae"])
    hparams = {k: v for k, v in read_checkpoint(ckpts["vae"])["hyper_parameters"].items() if k != "_instantiator"}
    torch.manual_seed(0)  # seed_everything: 0, as the fit started
    initial = instantiate_module(type(trained), hparams).eval()
    assert not torch.equal(initial.decoder.out.weight, trained.decoder.out.weight)
    dm = run_datamodule(ckpts["vae"])
    x = to_unit_range(dm.split("test").images)  # never seen in training
    assert x.shape == (len(x), 1, 16, 16) and len(x) > 300

    def mse(model) -> float:
        return (model.reconstruct(x) - x).pow(2).mean().item()

    before, after = mse(initial), mse(trained)
    assert after < 0.5 * before, f"reconstruction MSE {before:.3f} at initialisation, {after:.3f} after training"
    assert trained.sample(6).shape == (6, 1, 16, 16)


def test_sample_interpolate_walks_between_two_prior_draws_of_a_vae(ckpts, tmp_path):
    """--interpolate starts from noise of the model's sample shape: z (latent_dim,) for a VAE."""
    out = tmp_path / "row.npz"
    assert main(["sample", "--ckpt", ckpts["vae"], "--interpolate", "5", "--seed", "3", "--out", str(out)]) == 0
    import numpy as np

    with np.load(out) as f:
        row = f["arr_0"].astype(float)
    assert row.shape == (5, 16, 16, 1)
    steps = [np.abs(row[i + 1] - row[i]).mean() for i in range(4)]
    assert np.abs(row[-1] - row[0]).mean() > max(steps)  # a gradual path, not five unrelated images
