"""Defects 5 and 6: a resumed run keeps every row of its CSV log; a checkpoint never silently
overrides the config (another model class is refused, options given now apply and are listed);
and a failed fit leaves no empty run folder."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from tests_helpers import ROOT, tiny_diffusion_args

from lit_genvision.cli import main

FLOW = ROOT / "configs" / "flow_matching" / "digits.yaml"


def steps_logged(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def test_resume_keeps_the_rows_logged_before_it(tmp_path):
    args = tiny_diffusion_args(tmp_path, "log", max_steps=20, **{"trainer.log_every_n_steps": "2"})
    assert main(["fit", *args]) == 0
    run = tmp_path / "log" / "version_0"
    before = steps_logged(run)
    assert before and max(before) < 20
    resumed = tiny_diffusion_args(tmp_path, "log", max_steps=40, **{"trainer.log_every_n_steps": "2"})
    assert main(["fit", *resumed, "--ckpt_path", str(run / "checkpoints" / "last.ckpt")]) == 0
    after = steps_logged(run)
    assert after[: len(before)] == before  # every earlier row, in order
    assert max(after) >= 38 and not (tmp_path / "log" / "version_1").exists()


def test_a_checkpoint_of_another_model_class_is_refused(tiny_checkpoint, tmp_path, capsys):
    rc = main(
        ["fit", *tiny_diffusion_args(tmp_path, "flow", max_steps=25, config=FLOW), "--ckpt_path", str(tiny_checkpoint)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("error: --ckpt_path") and "DiffusionMethod" in err[-1] and "FlowMethod" in err[-1]
    assert not list(tmp_path.rglob("*.ckpt"))


def test_an_option_given_with_a_resume_applies_and_is_listed(tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "lr" / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    shutil.copy(tiny_checkpoint, folder / "last.ckpt")
    args = tiny_diffusion_args(tmp_path, "lr", max_steps=22, **{"model.init_args.optimizer.init_args.lr": "0.123"})
    assert main(["fit", *args, "--ckpt_path", str(folder / "last.ckpt")]) == 0
    err = capsys.readouterr().err
    assert "model.init_args.optimizer.init_args.lr = 0.123 (checkpoint: 0.001)" in err
    final = torch.load(folder / "last.ckpt", weights_only=True)
    assert final["global_step"] == 22
    assert final["optimizer_states"][0]["param_groups"][0]["initial_lr"] == 0.123
    assert final["hyper_parameters"]["optimizer"]["init_args"]["lr"] == 0.123


def test_an_option_the_weights_cannot_take_is_one_sentence(tiny_checkpoint, tmp_path, capsys):
    args = tiny_diffusion_args(tmp_path, "wide", max_steps=22, **{"model.init_args.net.init_args.channels": "16"})
    assert main(["fit", *args, "--ckpt_path", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the weights in") and "do not fit the configured network" in err[-1]


class FailAtStart(Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        raise ValueError("the data went away; mount it again.")


def test_a_failed_fit_leaves_no_empty_run_folder(tmp_path, capsys):
    assert main(["fit", *tiny_diffusion_args(tmp_path, "fail", max_steps=4)], callbacks=[FailAtStart()]) == 2
    err = capsys.readouterr().err
    assert "error: the data went away; mount it again." in err and "removed" in err
    assert not (tmp_path / "fail" / "version_0").exists()


def test_max_steps_zero_is_refused_before_training(tmp_path, capsys):
    assert main(["fit", *tiny_diffusion_args(tmp_path, "zero", max_steps=0)]) == 2
    assert "max_steps must be positive" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.ckpt"))
