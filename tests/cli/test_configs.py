"""Every YAML under configs/ builds its model, data module and trainer through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from lit_genvision.cli import GenVisionCLI
from lit_genvision.models.base import PlatformModule

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml"))


def test_there_are_configs():
    assert any(p.parent.name == "diffusion" and p.name == "digits.yaml" for p in CONFIGS)


def one_step_checkpoint(root: Path, family: str, name: str) -> Path:
    """The checkpoint of one training step of configs/<family>/<name>, for the configs built on one."""
    from lit_genvision.cli import main

    config = next(p for p in CONFIGS if p.parent.name == family and p.name == name)
    args = ["--config", str(config), "--trainer.max_steps", "1", "--trainer.enable_progress_bar", "false"]
    assert (
        main(["fit", *args, "--trainer.default_root_dir", str(root), "--trainer.logger.init_args.save_dir", str(root)])
        == 0
    )
    return next(root.rglob("last.ckpt"))


@pytest.fixture(scope="module")
def tokenizer_ckpt(tmp_path_factory) -> Path:
    """A tokenizer checkpoint for the token prior config (the FSQ digits tokenizer)."""
    return one_step_checkpoint(tmp_path_factory.mktemp("tokenizer"), "tokenizer", "digits_fsq.yaml")


@pytest.fixture(scope="module")
def clip_ckpt(tmp_path_factory) -> Path:
    """A CLIP checkpoint for the captioner config (the digits CLIP)."""
    return one_step_checkpoint(tmp_path_factory.mktemp("clip"), "clip", "digits.yaml")


@pytest.fixture(scope="module")
def kl_ckpt(tmp_path_factory) -> Path:
    """A first-stage checkpoint for the latent diffusion configs (the digits KL autoencoder)."""
    return one_step_checkpoint(tmp_path_factory.mktemp("kl"), "tokenizer", "digits_kl.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_instantiates(path, tmp_path, request):
    args = ["--config", str(path), "--trainer.logger.init_args.save_dir", str(tmp_path)]
    if path.parent.name == "token_prior":  # built on a tokenizer checkpoint, which a user trains first
        args += ["--model.init_args.tokenizer", str(request.getfixturevalue("tokenizer_ckpt"))]
    if path.parent.name == "captioner":  # built on a CLIP checkpoint
        args += ["--model.init_args.clip", str(request.getfixturevalue("clip_ckpt"))]
    text = path.read_text()
    if "CLIPTextEncoder" in text:  # a text-conditioned model reading a CLIP's text tower
        key = "--model.init_args.net.init_args.text_encoder.init_args.checkpoint"
        args += [key, str(request.getfixturevalue("clip_ckpt"))]
    if "FirstStage" in text:  # a latent model on a frozen autoencoder
        args += ["--model.init_args.space.init_args.checkpoint", str(request.getfixturevalue("kl_ckpt"))]
    cli = GenVisionCLI(args=args, run=False)
    assert isinstance(cli.model, PlatformModule)
    assert all(k in cli.datamodule.provides for k in cli.model.required_keys())


def test_model_and_data_init_args_are_overridable_from_the_command_line(tmp_path):
    cfg = CONFIGS[0]
    cli = GenVisionCLI(
        args=[
            "--config",
            str(cfg),
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
            "--model.init_args.lr",
            "0.123",
            "--data.init_args.batch_size",
            "7",
        ],
        run=False,
    )
    assert cli.model.lr == 0.123 and cli.datamodule.batch_size == 7


def test_unknown_config_key_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        GenVisionCLI(args=["--config", str(CONFIGS[0]), "--model.init_args.learning_rat", "1"], run=False)
    assert exc.value.code != 0
    assert "learning_rat" in capsys.readouterr().err
