"""A fit killed with SIGKILL after its first scheduled checkpoint resumes from ``last.ckpt``.

Every shipped config writes ``last.ckpt`` on a step schedule (so a killed or interrupted run loses
at most one period) and once more at the end of fit (so ``last.ckpt`` holds the final weights even
when ``max_steps`` is not a multiple of the period). For one digits config per family, a temporary
copy with the period lowered to a few steps is trained in a subprocess, killed right after the first
scheduled save, and resumed from the file it left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from tests_helpers import tiny_diffusion_args

from lit_genvision.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
CHECKPOINT = "lightning.pytorch.callbacks.ModelCheckpoint"
PERIOD = 6  # optimiser steps between scheduled saves in the temporary copies (even: a GAN batch is 2 steps)
FINAL = 16  # max_steps of the resumed fit: not a multiple of PERIOD, so the end-of-fit save must write it
TIMEOUT_S = 120  # for the first save to appear (imports, data set-up and a few steps on a loaded CPU)


class StallAfterStep(L.Callback):
    """Stops a fit from making progress once ``global_step`` reaches ``step``, so the process is
    killed exactly after the first scheduled save whatever the machine's load (the save happens at
    the end of batch ``step``; this waits at the start of the next one)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args) -> None:
        while trainer.global_step >= self.step:
            time.sleep(1.0)


SMALL_CONV_AUTOENCODER = {
    "model.init_args.encoder.init_args.channels": "[8, 16]",
    "model.init_args.decoder.init_args.channels": "[16, 8]",
}

# One digits config per family and the command-line overrides that make it a seconds-long run.
FAMILIES = {
    "classifier": ("classifier/digits.yaml", {"model.init_args.net.init_args.width": "8"}),
    "autoencoder": ("autoencoder/digits.yaml", SMALL_CONV_AUTOENCODER),
    "vae": ("vae/digits.yaml", SMALL_CONV_AUTOENCODER),
    "gan": (
        "gan/digits.yaml",
        {"model.init_args.generator.init_args.width": "16", "model.init_args.discriminator.init_args.width": "16"},
    ),
    "diffusion": ("diffusion/digits.yaml", None),  # None: tests_helpers.tiny_diffusion_args
    "flow_matching": ("flow_matching/digits.yaml", None),
}


def _checkpoint_entries(config: dict) -> list[dict]:
    return [cb.get("init_args") or {} for cb in config["trainer"]["callbacks"] if cb["class_path"] == CHECKPOINT]


def _scheduled(entry: dict) -> bool:
    return bool(entry.get("every_n_train_steps")) or entry.get("train_time_interval") is not None


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_writes_last_ckpt_on_a_schedule_and_at_the_end(path):
    entries = _checkpoint_entries(yaml.safe_load(path.read_text()))
    writers = [e for e in entries if e.get("save_last")]
    scheduled = [e for e in writers if _scheduled(e)]
    assert scheduled, f"{path}: no ModelCheckpoint writes last.ckpt on a step or time schedule"
    # Lightning refreshes last.ckpt at the end of fit only from a ModelCheckpoint that has never
    # saved; the unscheduled, top-k-free entry is that one.
    assert any(not _scheduled(e) and not e.get("monitor") and e.get("save_top_k") == 0 for e in writers), (
        f"{path}: nothing writes last.ckpt at the end of fit, so it would hold the last scheduled step"
    )
    # All writers share last.ckpt; with the version counter a resumed run would write last-v1.ckpt.
    assert all(e.get("enable_version_counter") is False for e in writers), path
    if path.parent.name == "gan":  # global_step advances by 2 (D and G) per batch
        assert all(e["every_n_train_steps"] % 2 == 0 for e in scheduled), path


def _temporary_config(shipped: Path, out: Path, stall: bool) -> Path:
    config = yaml.safe_load(shipped.read_text())
    callbacks = config["trainer"]["callbacks"]
    for cb in callbacks:
        if cb["class_path"] == CHECKPOINT and _scheduled(cb["init_args"]):
            cb["init_args"]["every_n_train_steps"] = PERIOD
    if stall:
        name = f"{StallAfterStep.__module__}.{StallAfterStep.__qualname__}"
        callbacks.append({"class_path": name, "init_args": {"step": PERIOD}})
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def _fit_args(family: str, config: Path, run_root: Path, max_steps: int) -> list[str]:
    shipped, overrides = FAMILIES[family]
    if overrides is None:
        return tiny_diffusion_args(run_root, family, max_steps=max_steps, config=config)
    args = ["--config", str(config)]
    for key, value in {
        **overrides,
        "trainer.max_steps": str(max_steps),
        "trainer.enable_progress_bar": "false",
        "trainer.enable_model_summary": "false",
        "trainer.default_root_dir": str(run_root),
        "trainer.logger.init_args.save_dir": str(run_root),
        "trainer.logger.init_args.name": family,
    }.items():
        args += [f"--{key}", value]
    return args


def _kill_after_first_save(args: list[str], last: Path, log: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), env.get("PYTHONPATH")]))
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lit_genvision", "fit", *args], cwd=ROOT, env=env, stdout=out, stderr=out
        )
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while not last.exists():  # the checkpoint is renamed into place, so it appears whole
                assert proc.poll() is None, f"fit exited ({proc.returncode}) before saving:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"no {last} after {TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fit_killed_after_its_first_scheduled_save_resumes_from_last_ckpt(family, tmp_path):
    shipped = ROOT / "configs" / FAMILIES[family][0]
    last = tmp_path / family / "version_0" / "checkpoints" / "last.ckpt"

    stalling = _temporary_config(shipped, tmp_path / "stall.yaml", stall=True)
    _kill_after_first_save(_fit_args(family, stalling, tmp_path, max_steps=100_000), last, tmp_path / "fit.log")
    killed = torch.load(last, map_location="cpu", weights_only=True)
    assert killed["global_step"] == PERIOD
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]  # no top-k files, no partial file

    resume = _temporary_config(shipped, tmp_path / "resume.yaml", stall=False)
    assert main(["fit", *_fit_args(family, resume, tmp_path, max_steps=FINAL), "--ckpt_path", str(last)]) == 0
    final = torch.load(last, map_location="cpu", weights_only=True)  # the same run folder, continued
    assert final["global_step"] == FINAL
    assert not (tmp_path / family / "version_1").exists()
