"""Every YAML under configs/ builds its model, data module and trainer through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from tests_helpers import one_step_checkpoint

from lit_genvision.cli import GenVisionCLI
from lit_genvision.models.base import PlatformModule

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml"))


def test_there_are_configs():
    assert any(p.parent.name == "diffusion" and p.name == "digits.yaml" for p in CONFIGS)


@pytest.fixture(scope="module")
def tokenizer_ckpt(tmp_path_factory) -> Path:
    """A tokenizer checkpoint for the token prior config (the FSQ digits tokenizer)."""
    return one_step_checkpoint(tmp_path_factory.mktemp("tokenizer"), "tokenizer", "digits_fsq.yaml")


def plain(value: Any) -> Any:
    """``value`` as dicts, lists and scalars only, so ``torch.load(weights_only=True)`` reads it back
    (a parsed config may hold a jsonargparse ``Namespace`` or tuples)."""
    if hasattr(value, "as_dict"):  # jsonargparse.Namespace
        value = value.as_dict()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"hyperparameter value {value!r} ({type(value).__name__}) is not a plain config value")


def untrained_checkpoint(config: Path, root: Path) -> Path:
    """A checkpoint of the model configs/<family>/<config> builds, untrained: what `lit-genvision fit`
    writes (state_dict, the saved config, the lit_genvision entry), without a training step — GPU-sized
    first stages cannot train on a CPU test machine, and building one reads no data."""
    cli = GenVisionCLI(args=["--config", str(config), "--trainer.logger.init_args.save_dir", str(root)], run=False)
    model = cli.model
    ckpt: dict[str, Any] = {"state_dict": model.state_dict(), "hyper_parameters": plain(dict(model.hparams))}
    model.on_save_checkpoint(ckpt)
    path = root / "untrained.ckpt"
    torch.save(ckpt, path)
    return path


def first_stage_config(path: Path) -> Path:
    """The tokenizer config whose run writes the checkpoint that ``path``'s ``space`` reads
    (runs/tokenizer-cifar10-kl/… ↔ the config whose logger is named tokenizer-cifar10-kl)."""
    checkpoint = yaml.safe_load(path.read_text())["model"]["init_args"]["space"]["init_args"]["checkpoint"]
    run = Path(checkpoint).parts[1]  # runs/<name>/version_0/checkpoints/last.ckpt
    found = [
        p
        for p in CONFIGS
        if p.parent.name == "tokenizer"
        and yaml.safe_load(p.read_text())["trainer"]["logger"]["init_args"]["name"] == run
    ]
    assert len(found) == 1, f"{path.name}: no single tokenizer config writes {checkpoint}"
    return found[0]


@pytest.fixture(scope="module")
def untrained_first_stage(tmp_path_factory):
    """Untrained first-stage checkpoints by tokenizer config, each built once for the module."""
    cache: dict[Path, Path] = {}

    def get(config: Path) -> Path:
        if config not in cache:
            cache[config] = untrained_checkpoint(config, tmp_path_factory.mktemp(config.stem))
        return cache[config]

    return get


def first_stage_checkpoint(path: Path, request) -> Path:
    """The first stage for a latent config: the digits KL after one real training step (CPU-sized), an
    untrained checkpoint of the named tokenizer config otherwise."""
    tokenizer = first_stage_config(path)
    if tokenizer.name == "digits_kl.yaml":
        return request.getfixturevalue("kl_ckpt")
    return request.getfixturevalue("untrained_first_stage")(tokenizer)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_instantiates(path, tmp_path, request):
    args = ["--config", str(path), "--trainer.logger.init_args.save_dir", str(tmp_path)]
    if "TokenPriorModel" in path.read_text():  # built on a tokenizer checkpoint, which a user trains first
        args += ["--model.init_args.tokenizer", str(request.getfixturevalue("tokenizer_ckpt"))]
    if path.parent.name == "captioner":  # built on a CLIP checkpoint
        args += ["--model.init_args.clip", str(request.getfixturevalue("clip_ckpt"))]
    text = path.read_text()
    # the CLIP a config reads: the digits one, or one at the LAION CLIP's widths for a config on runs/clip-laion
    clip = str(request.getfixturevalue("wide_clip_ckpt" if "runs/clip-laion/" in text else "clip_ckpt"))
    if "CLIPTextEncoder" in text:  # a text-conditioned model reading a CLIP's text tower
        args += ["--model.init_args.net.init_args.text_encoder.init_args.checkpoint", clip]
    if "CLIPImageSpace" in text:  # a model of CLIP image embeddings (DALL-E 2's prior)
        args += ["--model.init_args.space.init_args.checkpoint", clip]
    if "CLIPImageEncoder" in text:  # a decoder conditioned on CLIP image embeddings (DALL-E 2's)
        args += ["--model.init_args.net.init_args.conditions.init_args.encoder.init_args.checkpoint", clip]
    if "FirstStage" in text:  # a latent model on a frozen autoencoder
        args += ["--model.init_args.space.init_args.checkpoint", str(first_stage_checkpoint(path, request))]
    cli = GenVisionCLI(args=args, run=False)
    assert isinstance(cli.model, PlatformModule)
    assert all(k in cli.datamodule.provides for k in cli.model.required_keys())


def test_an_untrained_first_stage_checkpoint_loads_as_fit_writes_it(untrained_first_stage):
    """The checkpoints the GPU latent configs are tested with load through ``load_pretrained``
    (``weights_only=True``) as a frozen autoencoder: KL-f4 maps 32×32 CIFAR-10 images to 8×8×3."""
    from lit_genvision.models.pretrained import load_pretrained

    config = next(p for p in CONFIGS if p.parent.name == "tokenizer" and p.name == "cifar10_kl.yaml")
    model, info = load_pretrained(untrained_first_stage(config))
    assert info["class"] == "lit_genvision.models.tokenizer.VQModel"
    assert not any(p.requires_grad for p in model.parameters())
    assert model.encode(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 8, 8)


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
