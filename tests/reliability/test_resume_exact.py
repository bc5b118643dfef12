"""Defect 4: resume is bitwise exact, mid-epoch and at an epoch boundary, with validation on or off.

A run interrupted after step k (its checkpoint written on the step schedule) and resumed to N
steps ends with exactly the weights, EMA, optimizer state and RNG of an uninterrupted N-step run
of the same config: the interrupted pass continues from its next batch, and validation draws its
own random numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from tests_helpers import DIGITS_DDPM, Killed, kill_after, tiny_diffusion_args

from lit_genvision.cli import main

BATCHES_PER_EPOCH = 1258 // 128  # digits train split / the shipped batch size, drop_last: 9
SHIPPED_TOTAL = BATCHES_PER_EPOCH + 5  # the resumed part always crosses an epoch boundary


def shipped_args(root: Path, name: str, max_steps: int, **extra: str) -> list[str]:
    """The shipped digits DDPM config as it is, but for the step count and where it writes."""
    args = ["--config", str(DIGITS_DDPM), "--trainer.max_steps", str(max_steps)]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    args += ["--trainer.default_root_dir", str(root), "--trainer.logger.init_args.save_dir", str(root)]
    args += ["--trainer.logger.init_args.name", name]
    for key, value in extra.items():
        args += [f"--{key}", value]
    return args


def final_checkpoint(root: Path, name: str) -> dict:
    versions = sorted((root / name).glob("version_*"))
    return torch.load(versions[-1] / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def interrupted_and_resumed(root: Path, args_for, kill_at: int, total: int) -> dict:
    """Run until the step-``kill_at`` checkpoint, stop there, resume from that checkpoint to ``total``."""
    saves = root / "saves"
    schedule = ModelCheckpoint(dirpath=saves, filename="at", every_n_train_steps=kill_at, save_top_k=-1)
    with pytest.raises(Killed):
        main(["fit", *args_for("split", total)], callbacks=[schedule, kill_after(kill_at)])
    ckpt = saves / "at.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == kill_at
    assert main(["fit", *args_for("split", total), "--ckpt_path", str(ckpt)]) == 0
    return final_checkpoint(root, "split")


def assert_same_run(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"]
    for key, value in a["state_dict"].items():
        assert torch.equal(b["state_dict"][key], value), key
    for key, value in a["callbacks"]["EMA"]["shadow"].items():
        assert torch.equal(b["callbacks"]["EMA"]["shadow"][key], value), f"EMA {key}"
    states = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    for sa, sb in zip(states[0].values(), states[1].values(), strict=True):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(a["callbacks"]["RNGState"]["torch"], b["callbacks"]["RNGState"]["torch"])


@pytest.fixture(scope="module")
def shipped_uninterrupted(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("full")
    assert main(["fit", *shipped_args(root, "full", SHIPPED_TOTAL)]) == 0
    return final_checkpoint(root, "full")


@pytest.mark.parametrize("kill_at", [4, BATCHES_PER_EPOCH], ids=["mid-epoch", "epoch-boundary"])
def test_shipped_digits_config_resumes_bitwise(tmp_path, shipped_uninterrupted, kill_at):
    resumed = interrupted_and_resumed(
        tmp_path, lambda name, steps: shipped_args(tmp_path, name, steps), kill_at, SHIPPED_TOTAL
    )
    assert_same_run(shipped_uninterrupted, resumed)


@pytest.mark.parametrize("kill_at", [5, 19], ids=["mid-epoch", "epoch-boundary"])
def test_resume_is_bitwise_with_validation_every_epoch(tmp_path, kill_at):
    """Tiny DDPM (19 batches of 64 per epoch), validation after every epoch, which draws noise."""
    total = 19 + 7

    def args_for(name: str, steps: int) -> list[str]:
        return tiny_diffusion_args(tmp_path, name, max_steps=steps)

    assert main(["fit", *args_for("full", total)]) == 0
    assert_same_run(final_checkpoint(tmp_path, "full"), interrupted_and_resumed(tmp_path, args_for, kill_at, total))
