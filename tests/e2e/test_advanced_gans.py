"""ProGAN and StyleGAN2 end to end through the CLI on tiny networks: growth resumes mid-fade-in exactly,
StyleGAN's lazy regularisers and ADA resume exactly, and the commands that read them (sample --truncation,
--interpolate in W, stylemix, evaluate --truncation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests_helpers import ROOT

from lit_genvision.cli import main
from lit_genvision.experiments.store import ResultsStore

TINY = {
    "trainer.enable_progress_bar": "false",
    "trainer.enable_model_summary": "false",
    "trainer.num_sanity_val_steps": "0",
    "trainer.check_val_every_n_epoch": "100",
    "data.init_args.image_size": "8",
}
PROGAN = {
    "model.init_args.generator.init_args.latent_dim": "8",
    "model.init_args.generator.init_args.max_resolution": "8",
    "model.init_args.generator.init_args.channels": "{4: 8, 8: 8}",
    "model.init_args.discriminator.init_args.max_resolution": "8",
    "model.init_args.discriminator.init_args.channels": "{4: 8, 8: 8}",
    "model.init_args.stable_images": "128",
    "model.init_args.fade_images": "256",
    "data.init_args.batch_size": "64",
}
STYLEGAN = {
    "model.init_args.generator.init_args.z_dim": "8",
    "model.init_args.generator.init_args.w_dim": "8",
    "model.init_args.generator.init_args.img_resolution": "8",
    "model.init_args.generator.init_args.mapping_layers": "2",
    "model.init_args.generator.init_args.channel_base": "64",
    "model.init_args.generator.init_args.channel_max": "8",
    "model.init_args.discriminator.init_args.img_resolution": "8",
    "model.init_args.discriminator.init_args.channel_base": "64",
    "model.init_args.discriminator.init_args.channel_max": "8",
    "model.init_args.r1_interval": "2",
    "model.init_args.pl_interval": "2",
    "model.init_args.augment.init_args.speed_kimg": "0.05",
    "model.init_args.augment.init_args.interval": "2",
    "model.init_args.augment.init_args.p_init": "0.5",
    "data.init_args.batch_size": "16",
}


def fit(config: str, root: Path, name: str, steps: int, overrides: dict, *extra: str) -> Path:
    args = ["fit", "--config", str(ROOT / "configs" / "gan" / config)]
    given = (
        TINY
        | overrides
        | {
            "trainer.max_steps": str(steps),
            "trainer.default_root_dir": str(root),
            "trainer.logger.init_args.save_dir": str(root),
            "trainer.logger.init_args.name": name,
        }
    )
    for key, value in given.items():
        args += [f"--{key}", value]
    assert main([*args, *extra]) == 0
    return root / name / "version_0" / "checkpoints" / "last.ckpt"


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_run(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"]
    for key, value in a["state_dict"].items():
        assert torch.equal(b["state_dict"][key], value), key
    for key, value in a["callbacks"]["EMA"]["shadow"].items():
        assert torch.equal(b["callbacks"]["EMA"]["shadow"][key], value), key


@pytest.fixture(scope="module")
def progan_runs(tmp_path_factory) -> tuple[dict, dict, dict, Path]:
    """A 12-step ProGAN run (6 batches of 64), and the same run stopped after 6 steps (192 real images:
    stage 1 with α = (192 − 128)/256 = 0.25, mid-fade-in) and resumed from its checkpoint."""
    root = tmp_path_factory.mktemp("progan")
    full = fit("digits_progan.yaml", root, "full", 12, PROGAN)
    first = fit("digits_progan.yaml", root, "split", 6, PROGAN)
    stopped = load(first)
    resumed = fit("digits_progan.yaml", root, "split", 12, PROGAN, "--ckpt_path", str(first))
    return load(full), stopped, load(resumed), resumed


def test_progan_checkpoint_records_the_growth_state(progan_runs):
    _, stopped, _, _ = progan_runs
    assert stopped["state_dict"]["images_seen"].item() == 192
    assert stopped["lit_genvision"]["growth"] == {"images_seen": 192, "stage": 1, "alpha": 0.25, "resolution": 8}


def test_progan_resumed_mid_fade_in_equals_an_uninterrupted_run(progan_runs):
    full, _, resumed, _ = progan_runs
    assert full["lit_genvision"]["growth"]["alpha"] == 1.0  # the full run finished the fade-in (384 images)
    assert_same_run(full, resumed)


@pytest.fixture(scope="module")
def stylegan_ckpt(tmp_path_factory) -> Path:
    return fit("digits_stylegan2.yaml", tmp_path_factory.mktemp("stylegan"), "tiny", 8, STYLEGAN)


def test_stylegan_with_ada_resumes_exactly(tmp_path, stylegan_ckpt):
    """Lazy-regulariser step counters, the path-length mean, ADA's p and its pending statistics all resume."""
    first = fit("digits_stylegan2.yaml", tmp_path, "split", 4, STYLEGAN)
    resumed = fit("digits_stylegan2.yaml", tmp_path, "split", 8, STYLEGAN, "--ckpt_path", str(first))
    full = load(stylegan_ckpt)
    assert full["state_dict"]["d_steps"].item() == full["state_dict"]["g_steps"].item() == 4
    assert full["state_dict"]["pl_mean"].item() > 0 and full["state_dict"]["augment.p"].item() != 0.5
    assert_same_run(full, load(resumed))


def test_sample_truncation_and_interpolation_in_w(tmp_path, stylegan_ckpt):
    out = tmp_path / "t.npz"
    assert main(["sample", "--ckpt", str(stylegan_ckpt), "--num", "6", "--truncation", "0", "--out", str(out)]) == 0
    images = np.load(out)["arr_0"]
    assert images.shape == (6, 8, 8, 1) and (images == images[0]).all()  # ψ = 0: every z draws the mean w
    path = tmp_path / "path.npz"
    assert main(["sample", "--ckpt", str(stylegan_ckpt), "--interpolate", "5", "--out", str(path)]) == 0
    ends = tmp_path / "ends.npz"
    assert main(["sample", "--ckpt", str(stylegan_ckpt), "--num", "1", "--out", str(ends)]) == 0
    assert np.array_equal(np.load(path)["arr_0"][0], np.load(ends)["arr_0"][0])  # the path starts at seed 0's image


def test_stylemix_writes_the_papers_grid(tmp_path, stylegan_ckpt):
    out = tmp_path / "mix.npz"
    args = ["stylemix", "--ckpt", str(stylegan_ckpt), "--rows", "2", "--cols", "3", "--crossover", "fine"]
    assert main([*args, "--out", str(out)]) == 0
    grid = np.load(out)["arr_0"]
    assert grid.shape == (3 * 4, 8, 8, 1) and (grid[0] == 255).all()  # (rows + 1)·(cols + 1), blank corner
    png = tmp_path / "mix.png"
    assert main([*args, "--out", str(png)]) == 0
    assert Image.open(png).size[0] > Image.open(png).size[1]  # 4 columns, 3 rows


def test_evaluate_records_the_truncation_in_the_protocol(tmp_path, stylegan_ckpt):
    store = tmp_path / "r.sqlite"
    args = ["evaluate", "--ckpt", str(stylegan_ckpt), "--num-samples", "100", "--truncation", "0.5"]
    assert main([*args, "--store", str(store)]) == 0
    assert {r["sampler"] for r in ResultsStore(store).records()} == {"truncation0.5"}


def test_stylegan_options_on_another_family_are_one_clear_error(tmp_path, capsys, progan_runs):
    ckpt = progan_runs[-1]
    assert main(["stylemix", "--ckpt", str(ckpt), "--out", str(tmp_path / "m.png")]) == 2
    assert "stylemix needs a StyleGAN checkpoint" in capsys.readouterr().err
    assert main(["sample", "--ckpt", str(ckpt), "--truncation", "0.7", "--out", str(tmp_path / "s.png")]) == 2
    assert "--truncation applies to a StyleGAN" in capsys.readouterr().err
