"""Shared fixtures: a tiny digits diffusion run driven through the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
DIGITS_DDPM = ROOT / "configs" / "diffusion" / "digits.yaml"

os.environ.setdefault("WANDB_MODE", "offline")
# The digits classifier and reference statistics are cached here once per checkout (rebuilt on a fresh clone).
os.environ.setdefault("LIT_GENVISION_CACHE", str(ROOT / ".pytest_cache" / "lit_genvision"))
torch.set_num_threads(min(2, torch.get_num_threads()))


def spy_scored_batches(monkeypatch) -> list:
    """A list that collects the images of every batch ``evaluate``'s samples source draws (through
    ``experiments.sources.evaluation_batches``), for comparing them with what ``sample`` writes."""
    from lit_genvision.experiments import sources

    scored: list = []
    original = sources.evaluation_batches

    def spy(*args, **kwargs):
        for batch in original(*args, **kwargs):
            scored.append(batch.images)
            yield batch

    monkeypatch.setattr(sources, "evaluation_batches", spy)
    return scored


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Move every parameter of ``module`` off its init (zero gates, zero decoders, unit norms) to N(0, 0.3²),
    seeded, so no branch is trivially silent; returns it in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return module.eval()


def tiny_diffusion_args(
    run_root: Path, name: str = "tiny", max_steps: int = 8, config: Path = DIGITS_DDPM, **extra: str
) -> list[str]:
    """CLI overrides that shrink a digits config (diffusion or flow matching) to a seconds-long run."""
    overrides = {
        "model.init_args.net.init_args.image_size": "8",
        "model.init_args.net.init_args.channels": "8",
        "model.init_args.net.init_args.channel_mults": "[1, 2]",
        "model.init_args.net.init_args.norm_groups": "4",
        "model.init_args.net.init_args.heads": "2",
        "model.init_args.lr_scheduler.init_args.warmup_steps": "2",
        "data.init_args.image_size": "8",
        "data.init_args.batch_size": "64",
        "trainer.max_steps": str(max_steps),
        "trainer.check_val_every_n_epoch": "1",
        "trainer.enable_progress_bar": "false",
        "trainer.enable_model_summary": "false",
        "trainer.default_root_dir": str(run_root),
        "trainer.logger.init_args.save_dir": str(run_root),
        "trainer.logger.init_args.name": name,
    }
    method = yaml.safe_load(Path(config).read_text())["model"]["init_args"]["method"]["class_path"]
    if method.endswith("FlowMethod"):  # an ODE solver
        overrides["model.init_args.method.init_args.solver.init_args.steps"] = "5"
    else:
        overrides["model.init_args.method.init_args.schedule.init_args.timesteps"] = "50"
        overrides["model.init_args.method.init_args.sampler.init_args.steps"] = "5"
    args = ["--config", str(config)]
    for key, value in overrides.items():
        args += [f"--{key}", value]
    for key, value in extra.items():
        args += [f"--{key}", value]
    return args


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of a tiny digits DDPM trained for a few steps through `lit-genvision fit`."""
    from lit_genvision.cli import main

    root = tmp_path_factory.mktemp("runs")
    main(["fit", *tiny_diffusion_args(root, max_steps=20)])
    ckpt = root / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    return ckpt


@pytest.fixture(scope="session")
def classifier_checkpoint(tmp_path_factory) -> Path:
    """A digits classifier trained for one short epoch through `lit-genvision fit`."""
    from lit_genvision.cli import main

    root = tmp_path_factory.mktemp("clf")
    main(
        [
            "fit",
            "--config",
            str(ROOT / "configs" / "classifier" / "digits.yaml"),
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "5",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.default_root_dir",
            str(root),
            "--trainer.logger.init_args.save_dir",
            str(root),
        ]
    )
    return root / "classifier-digits" / "version_0" / "checkpoints" / "last.ckpt"


def run_rank_job(argv: list[str], what: str, timeout: float = 180) -> str:
    """Run a multi-process (gloo) job script in its own session, with one thread per rank; a job that
    does not finish within ``timeout`` s (a hung rank) is killed with all its ranks and fails the test.
    Returns its output, after asserting it exited 0."""
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,  # so a hung job can be ended with both its ranks
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"the {what} did not finish within {timeout:g} s (a rank hung):\n{output[-3000:]}")
    assert proc.returncode == 0, output[-3000:]
    return output


class Killed(Exception):
    """Stands for SIGKILL: the run stops between two steps, after its scheduled checkpoint."""


def kill_after(step: int):
    """A callback that raises `Killed` before the first training batch at or after ``step``."""
    from lightning.pytorch.callbacks import Callback

    class KillAfter(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if trainer.global_step >= step:
                raise Killed

    return KillAfter()


def one_step_checkpoint(root: Path, family: str, name: str, *overrides: str) -> Path:
    """The checkpoint of one training step of configs/<family>/<name> (with ``overrides``), for the configs built on
    one (a CLIP, a tokenizer, a first stage)."""
    from lit_genvision.cli import main

    args = ["--config", str(ROOT / "configs" / family / name), "--trainer.max_steps", "1", *overrides]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.limit_val_batches", "1"]
    args += ["--trainer.default_root_dir", str(root), "--trainer.logger.init_args.save_dir", str(root)]
    assert main(["fit", *args]) == 0
    return next(root.rglob("last.ckpt"))


@pytest.fixture(scope="session")
def clip_ckpt(tmp_path_factory) -> Path:
    """One training step of the digits CLIP: what the captioner and the text-conditioned configs read."""
    return one_step_checkpoint(tmp_path_factory.mktemp("clip"), "clip", "digits.yaml")


@pytest.fixture(scope="session")
def wide_clip_ckpt(tmp_path_factory) -> Path:
    """One training step of the digits CLIP at the LAION CLIP's widths (512-wide embeddings and text tokens): what
    the LAION unCLIP configs are built on in tests (configs/clip/laion.yaml's ViT-B/32 cannot train on a CPU)."""
    tower = "--model.init_args.net.init_args"
    wide = [f"{tower}.image_tower.init_args.embed_dim", "512", f"{tower}.text_tower.init_args.embed_dim", "512"]
    wide += [f"{tower}.text_tower.init_args.dim", "512"]
    return one_step_checkpoint(tmp_path_factory.mktemp("wide_clip"), "clip", "digits.yaml", *wide)


@pytest.fixture(scope="session")
def kl_ckpt(tmp_path_factory) -> Path:
    """One training step of the digits KL autoencoder: the first stage of the latent digits configs."""
    return one_step_checkpoint(tmp_path_factory.mktemp("kl"), "tokenizer", "digits_kl.yaml")
