"""W&B sweep files and the offline sweep runner."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml
from tests_helpers import ROOT

from lit_genvision.cli import main
from lit_genvision.experiments import evaluate
from lit_genvision.experiments.store import ResultsStore
from lit_genvision.experiments.sweep import SweepError, load_sweep, parameter_grid, validate

SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))
LR = "model.init_args.optimizer.init_args.lr"  # the diffusion config's injected AdamW
TINY = [
    "--model.init_args.net.init_args.image_size=8",
    "--model.init_args.net.init_args.channel_mults=[1, 2]",
    "--model.init_args.net.init_args.norm_groups=4",
    "--model.init_args.method.init_args.schedule.init_args.timesteps=50",
    "--model.init_args.method.init_args.sampler.init_args.steps=3",
    "--data.init_args.image_size=8",
    "--data.init_args.batch_size=64",
    "--trainer.max_steps=6",
    "--trainer.check_val_every_n_epoch=1",
    "--trainer.enable_model_summary=false",
]


def test_there_is_a_sweep_per_family_and_dataset():
    names = {p.stem for p in SWEEPS}
    assert {
        "diffusion_digits",
        "flow_digits",
        "vae_digits",
        "gan_digits",
        "diffusion_cifar10",
        "flow_cifar10",
        "vae_cifar10",
    } <= names


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_file_is_wandb_format_and_its_values_pass_the_cli(path):
    config = load_sweep(path)
    assert "${args}" in config["command"] and config["method"] in ("grid", "random", "bayes")
    assert config["early_terminate"]["type"] == "hyperband"
    assert len(parameter_grid(config["parameters"])) >= 2
    validate(config)  # dry-runs every listed value and range bound through the CLI parser


def _write(tmp_path: Path, **changes) -> Path:
    config = yaml.safe_load((ROOT / "sweeps" / "diffusion_digits.yaml").read_text())
    config.update(changes)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_unknown_top_level_key_is_named(tmp_path):
    with pytest.raises(SweepError, match="unknown key.*early_stop"):
        load_sweep(_write(tmp_path, early_stop={"type": "hyperband"}))


def test_parameter_the_cli_does_not_accept_is_rejected_before_any_trial(tmp_path, capsys):
    path = _write(tmp_path, parameters={"model.init_args.learning_rate": {"values": [1e-3]}})
    code = main(["sweep", str(path), "--count", "1", "--run-dir", str(tmp_path / "runs")])
    assert code == 2 and "model.init_args.learning_rate" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_offline_sweep_runs_records_fails_and_resumes(tmp_path):
    """Three trials of a grid: the one with a negative learning rate fails (AdamW refuses it at fit
    time), is recorded as failed, and the sweep goes on; an interrupted trial is resumed, not redrawn."""
    path = _write(
        tmp_path,
        method="grid",
        metric={"name": "val/digits_fd", "goal": "minimize"},
        parameters={
            "model.init_args.net.init_args.channels": {"values": [8, 16]},
            "trainer.max_epochs": {"values": [-1, 0]},  # 0 passes the parser and fails when the trial runs
        },
    )
    path.write_text(path.read_text().replace("early_terminate", "description"))
    config = yaml.safe_load(path.read_text())
    config["description"] = "test sweep"
    config["command"] = [t for t in config["command"] if "ClassCoverage" not in str(t)]
    path.write_text(yaml.safe_dump(config))
    run_dir, store = tmp_path / "runs", tmp_path / "r.sqlite"
    common = [
        "--run-dir",
        str(run_dir),
        "--store",
        str(store),
        "--logger",
        "csv",
        "--num-samples",
        "70",
        "--extra",
        *TINY,
    ]
    assert main(["sweep", str(path), "--count", "3", *common]) == 0
    trials = json.loads((run_dir / "sweep_state.json").read_text())
    assert [t["state"] for t in trials].count("finished") == 2 and [t["state"] for t in trials].count("failed") == 1
    failed = [r for r in ResultsStore(store).records() if r["status"] == "failed"]
    assert len(failed) == 1 and "max_epochs must be positive" in failed[0]["notes"]
    ok = [r for r in ResultsStore(store).records(metric="digits_fd") if r["status"] == "ok"]
    assert len(ok) == 2 and all(t.get("value") for t in trials if t["state"] == "finished")

    trials[0]["state"] = "running"  # as if the machine died during trial 0
    (run_dir / "sweep_state.json").write_text(json.dumps(trials))
    assert main(["sweep", str(path), "--count", "1", *common]) == 0
    again = json.loads((run_dir / "sweep_state.json").read_text())
    assert len(again) == 3 and again[0]["state"] == "finished"
    assert main(["leaderboard", "--store", str(store), "--metric", "digits_fd", "--out", str(tmp_path / "lb")]) == 0
    assert "test sweep" not in (tmp_path / "lb.md").read_text() and "trial-00" in (tmp_path / "lb.md").read_text()


def test_a_value_the_model_refuses_stops_the_sweep_before_any_trial(tmp_path, capsys):
    path = _write(tmp_path, method="grid", parameters={LR: {"values": [1e-3, -1.0]}})
    args = ["--run-dir", str(tmp_path / "runs"), "--store", str(tmp_path / "r.sqlite"), "--extra", *TINY]
    assert main(["sweep", str(path), "--count", "2", *args]) == 2
    assert "model.init_args.optimizer.init_args.lr=-1.0 is not accepted" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "sweep_state.json").exists()


def test_random_trials_draw_different_values_despite_each_trial_reseeding(tmp_path):
    path = _write(
        tmp_path,
        parameters={LR: {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}},
    )
    config = yaml.safe_load(path.read_text())
    config.pop("early_terminate")
    config["command"] = [t for t in config["command"] if "ClassCoverage" not in str(t)]
    path.write_text(yaml.safe_dump(config))
    run_dir = tmp_path / "runs"
    args = ["--run-dir", str(run_dir), "--store", str(tmp_path / "r.sqlite"), "--logger", "csv", "--num-samples", "70"]
    assert main(["sweep", str(path), "--count", "2", *args, "--extra", *TINY]) == 0
    trials = json.loads((run_dir / "sweep_state.json").read_text())
    lrs = [t["config"][LR]["value"] for t in trials]
    assert len(set(lrs)) == 2 and all(t["state"] == "finished" for t in trials)


def test_a_trial_is_evaluated_through_typed_options_without_a_parser(tmp_path, monkeypatch):
    """The sweep calls `evaluate(EvaluateOptions)` below the CLI: no argparse parser and no argv
    list between the sweep runner and evaluate (issue 14, "keep argparse at the edge")."""
    path = _write(tmp_path, method="grid", parameters={LR: {"values": [1e-3]}})
    config = yaml.safe_load(path.read_text())
    config.pop("early_terminate")
    config["command"] = [t for t in config["command"] if "ClassCoverage" not in str(t)]
    path.write_text(yaml.safe_dump(config))
    seen: list[evaluate.EvaluateOptions] = []
    typed, plain_init = evaluate.evaluate, argparse.ArgumentParser.__init__

    def no_plain_parser(self, *args, **kwargs):  # jsonargparse's subclass still rebuilds the model's config
        if type(self) is argparse.ArgumentParser:
            raise AssertionError("the sweep's evaluation built an argparse parser")
        plain_init(self, *args, **kwargs)

    def spy(options: evaluate.EvaluateOptions) -> list[dict]:
        seen.append(options)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(argparse.ArgumentParser, "__init__", no_plain_parser)
            return typed(options)

    monkeypatch.setattr(evaluate, "evaluate", spy)
    monkeypatch.setattr(evaluate, "run", lambda args: pytest.fail("the sweep called evaluate's argparse edge"))
    run_dir, store = tmp_path / "runs", tmp_path / "r.sqlite"
    args = ["--run-dir", str(run_dir), "--store", str(store), "--logger", "csv", "--num-samples", "70"]
    assert main(["sweep", str(path), "--count", "1", *args, "--extra", *TINY]) == 0
    trials = json.loads((run_dir / "sweep_state.json").read_text())
    assert [t["state"] for t in trials] == ["finished"], trials
    assert len(seen) == 1 and isinstance(seen[0], evaluate.EvaluateOptions)
    assert seen[0].num_samples == 70 and seen[0].name == "diffusion-digits/trial-000"
    assert str(seen[0].store) == str(store)
    assert "digits_fd" in {r["metric"] for r in ResultsStore(store).records(model="diffusion-digits/trial-000")}
