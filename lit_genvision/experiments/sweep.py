"""``lit-genvision sweep sweeps/FILE.yaml --count N``: run a W&B sweep file with no W&B server.

The file is W&B's own format (``program``/``command`` with ``${args}``, ``method`` grid | random |
bayes, ``metric``, ``parameters`` named by the CLI's dotted keys, ``early_terminate`` hyperband),
so the same file works with ``wandb sweep`` + ``wandb agent`` online. Offline, W&B's open-source
search algorithms (the ``sweeps`` package) propose each trial; a trial is a ``fit`` followed by
``evaluate`` (the typed functions below the CLI, ``fit`` and ``evaluate(EvaluateOptions)``), each
result a record in the results store. The sweep's state lives in
``RUN_DIR/sweep_state.json``: rerunning the command after an interruption resumes the
interrupted trial from its last checkpoint and continues the sweep.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import traceback
import warnings
import zlib
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import yaml

from lit_genvision.checks import check_writable
from lit_genvision.experiments.arguments import add_deprecated_alias

TOP_LEVEL_KEYS = {
    "program",
    "command",
    "method",
    "metric",
    "parameters",
    "early_terminate",
    "name",
    "description",
    "project",
    "entity",
    "run_cap",
}
MACROS = {"${env}", "${interpreter}", "${program}", "${args}", "${args_no_hyphens}", "${args_json}"}


class SweepError(ValueError):
    """A sweep file that cannot run."""


def load_sweep(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file not found: {path}; pass a file under sweeps/.")
    config = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(config) - TOP_LEVEL_KEYS)
    if unknown:
        raise SweepError(
            f"{path.name}: unknown key(s) {', '.join(unknown)}; a W&B sweep file takes "
            f"{', '.join(sorted(TOP_LEVEL_KEYS))}."
        )
    for key in ("method", "metric", "parameters", "command"):
        if key not in config:
            raise SweepError(f"{path.name}: missing '{key}'; see the files under sweeps/ for the expected form.")
    return config


def fit_arguments(config: dict[str, Any]) -> list[str]:
    """The fixed ``fit`` arguments of the sweep's command (without the W&B macros)."""
    cmd = [str(t) for t in config["command"] if str(t) not in MACROS]
    if "fit" not in cmd:
        raise SweepError("the sweep's command must run `lit-genvision fit …`.")
    return cmd[cmd.index("fit") + 1 :]


def trial_arguments(params: dict[str, Any]) -> list[str]:
    """W&B's ${args}: one ``--key=value`` per parameter."""
    out = []
    for key, value in params.items():
        value = value.get("value") if isinstance(value, dict) else value
        value = value.item() if hasattr(value, "item") else value
        out.append(f"--{key}={json.dumps(value) if isinstance(value, list | bool) else value}")
    return out


def parameter_grid(parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """Representative values of each parameter (every listed value, the bounds of a range), one
    parameter varied at a time, for validating the sweep against the CLI before any trial."""
    combos = []
    for key, spec in parameters.items():
        if "values" in spec:
            values = spec["values"]
        elif "value" in spec:
            values = [spec["value"]]
        elif "min" in spec and "max" in spec:
            values = [spec["min"], spec["max"]]
        else:
            raise SweepError(f"parameter {key}: give values, value, or min and max.")
        combos += [{key: v} for v in values]
    return combos


def validate(config: dict[str, Any]) -> None:
    """Reject the sweep before any trial when a parameter or value is not accepted by the CLI."""
    from lit_genvision.experiments.fit import GenVisionCLI

    base = fit_arguments(config)
    for combo in parameter_grid(config["parameters"]):
        args = [*base, *trial_arguments(combo), "--trainer.logger", "false"]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                GenVisionCLI(args=args, run=False, parser_kwargs={"exit_on_error": False})
        except (SystemExit, Exception) as err:  # jsonargparse reports unknown keys and bad values here
            key = next(iter(combo))
            raise SweepError(
                f"parameter {key}={combo[key]!r} is not accepted by `lit-genvision fit` "
                f"({str(err).splitlines()[0] if str(err) else type(err).__name__})."
            ) from None


class _HyperbandStop(L.Callback):
    """Reports the sweep metric after each validation and stops the trial when W&B's hyperband
    rule (``sweeps.stop_runs``) says so."""

    def __init__(self, config: dict[str, Any], history: list, name: str, trial_config: dict) -> None:
        self.config, self.history, self.name, self.trial_config = config, history, name, trial_config
        self.metric = config["metric"]["name"]

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from sweeps import RunState, SweepRun, stop_runs

        value = trainer.callback_metrics.get(self.metric)
        if value is None or trainer.sanity_checking:
            return
        runs = [
            SweepRun(
                name=t["name"],
                state=RunState.finished,
                config=t["config"],
                history=t.get("history", []),
                summary_metrics={},
            )
            for t in self.history
        ]
        entry = {self.metric: float(value)}
        self.current = getattr(self, "current", []) + [entry]
        runs.append(SweepRun(name=self.name, state=RunState.running, config=self.trial_config, history=self.current))
        if any(r.name == self.name for r in stop_runs(self.config, runs)):
            trainer.should_stop = True
            pl_module.print(f"hyperband: stopping {self.name} at step {trainer.global_step}")


class _Outputs(L.Callback):
    """Remembers the trial's log folder (W&B and CSV lay them out differently)."""

    def __init__(self, trial: dict[str, Any]) -> None:
        self.trial = trial

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.trial["log_dir"] = trainer.log_dir


def last_checkpoint(run_dir: Path, version: str) -> Path | None:
    """``RUN_DIR/<logger name or W&B project>/<version>/checkpoints/last.ckpt`` of a trial, if written."""
    found = sorted(run_dir.glob(f"*/{version}/checkpoints/last.ckpt"))
    return found[-1] if found else None


def _metric_value(metric: str, trial_dir: Path, records: list[dict[str, Any]]) -> float | None:
    """The trial's objective: an `evaluate` record of that metric, else the last logged value."""
    name = metric.removeprefix("val/").removeprefix("eval/")
    for r in records:
        if r["metric"] == name:
            return float(r["value"])
    csv_path = trial_dir / "metrics.csv"
    if csv_path.is_file():
        values = [row[metric] for row in csv.DictReader(open(csv_path)) if row.get(metric)]
        if values:
            return float(values[-1])
    return None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a W&B sweep file (sweeps/*.yaml)")
    p.add_argument("--count", type=int, default=4, help="trials to run in this call")
    p.add_argument("--run-dir", default=None, help="where trials and the sweep state go (default runs/sweeps/NAME)")
    p.add_argument("--store", default=None, help="results store (default runs/results.sqlite)")
    p.add_argument("--num", dest="num_samples", type=int, default=500, help="evaluate's sample count")
    add_deprecated_alias(p, "--num-samples", "--num", "num_samples", type=int)
    p.add_argument(
        "--logger",
        choices=["file", "csv"],
        default="file",
        help="file: the logger the sweep file names (W&B offline when WANDB_MODE is unset); csv: CSV",
    )
    p.add_argument("--dry-run", action="store_true", help="validate the file against the CLI and stop")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more fit arguments for every trial")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from lit_genvision.experiments.evaluate import EvaluateOptions, evaluate
    from lit_genvision.experiments.fit import fit as fit_run
    from lit_genvision.experiments.store import ResultsStore
    from sweeps import RunState, SweepRun, next_run

    check_writable(args.store or "runs/results.sqlite", "--store")  # where every trial's evaluation is recorded
    config = load_sweep(args.file)
    validate(config)
    if args.dry_run:
        print(f"{args.file}: {len(parameter_grid(config['parameters']))} parameter values accepted by the CLI")
        return []
    name = config.get("name") or Path(args.file).stem
    run_dir = Path(args.run_dir or f"runs/sweeps/{name}")
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "sweep_state.json"
    trials: list[dict[str, Any]] = json.loads(state_path.read_text()) if state_path.is_file() else []
    os.environ.setdefault("WANDB_MODE", "offline")

    def save_state() -> None:
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(trials, indent=2, default=float))
        tmp.replace(state_path)

    goal = config["metric"].get("goal", "minimize")
    started = 0
    while started < args.count:
        pending = next((t for t in trials if t["state"] == "running"), None)  # interrupted: resume it
        if pending is None:
            done = [
                SweepRun(
                    name=t["name"],
                    state=RunState.finished if t["state"] == "finished" else RunState.failed,
                    config=t["config"],
                    summary_metrics={config["metric"]["name"]: t["value"]} if t.get("value") is not None else {},
                )
                for t in trials
            ]
            # The sweeps package draws from the global RNGs, which each trial's seed_everything
            # resets: seed them per trial so proposals differ, and a rerun of the sweep repeats them.
            random.seed(zlib.crc32(name.encode()) + len(trials))
            np.random.seed(zlib.crc32(name.encode()) + len(trials))
            proposal = next_run(config, done, validate=True)
            if proposal is None:
                print("the sweep has tried every combination of its grid")
                break
            pending = {"name": f"trial-{len(trials):03d}", "config": proposal.config, "state": "running"}
            trials.append(pending)
            save_state()
        started += 1
        version = f"{name}-{pending['name']}"
        fit = [
            *fit_arguments(config),
            *trial_arguments(pending["config"]),
            *args.extra,
            "--trainer.default_root_dir",
            str(run_dir),
            "--trainer.enable_progress_bar",
            "false",
        ]
        if args.logger == "csv":
            fit += ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger"]
        # A run id unique to the trial: W&B keys runs by it, and the CSV logger's folder is named by it.
        fit += [
            "--trainer.logger.init_args.save_dir",
            str(run_dir),
            "--trainer.logger.init_args.name",
            pending["name"],
            "--trainer.logger.init_args.version",
            version,
        ]
        if (resume := last_checkpoint(run_dir, version)) is not None:
            fit += ["--ckpt_path", str(resume)]
        # The trial's own lines are its progress (a live bar would fight fit's and evaluate's output).
        print(
            f"[sweep {name}] {pending['name']} ({started}/{args.count}): {' '.join(trial_arguments(pending['config']))}"
        )
        try:
            callbacks: list[L.Callback] = [_Outputs(pending)]
            if "early_terminate" in config:
                others = [t for t in trials if t is not pending]
                callbacks.append(_HyperbandStop(config, others, pending["name"], pending["config"]))
            try:
                fit_run(fit, callbacks=callbacks)
            finally:
                _finish_wandb_run()
            ckpt = last_checkpoint(run_dir, version)
            if ckpt is None:
                raise RuntimeError(f"trial {pending['name']} wrote no last.ckpt under {run_dir}")
            store = args.store or str(Path("runs/results.sqlite"))
            trial_name = f"{name}/{pending['name']}"
            evaluate(EvaluateOptions(ckpt=ckpt, name=trial_name, store=store, num_samples=args.num_samples))
            records = [r for r in ResultsStore(store).records(model=trial_name)]
            pending["value"] = _metric_value(config["metric"]["name"], Path(pending.get("log_dir") or run_dir), records)
            pending["state"] = "finished"
        except KeyboardInterrupt:
            save_state()
            raise
        except Exception as err:  # one failed trial is recorded and the sweep goes on
            pending["state"], pending["error"] = "failed", f"{type(err).__name__}: {err}"
            traceback.print_exc()
            _record_failure(args.store, name, pending)
        save_state()
    finished = [t for t in trials if t["state"] == "finished" and t.get("value") is not None]
    if finished:
        best = (min if goal == "minimize" else max)(finished, key=lambda t: t["value"])
        print(
            f"[sweep {name}] best of {len(finished)}: {best['name']} {config['metric']['name']} = {best['value']:.4f} "
            f"({' '.join(trial_arguments(best['config']))})"
        )
    return trials


def _finish_wandb_run() -> None:
    """Close the trial's W&B run: WandbLogger attaches to an open run, so the next trial would
    otherwise log (and checkpoint) into this one."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def _record_failure(store_path: str | None, sweep: str, trial: dict[str, Any]) -> None:
    import datetime as dt

    from lit_genvision.experiments.store import ResultsStore

    store = ResultsStore(store_path)
    store.add(
        [
            {
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "model": f"{sweep}/{trial['name']}",
                "status": "failed",
                "notes": trial.get("error", "")[:500],
            }
        ]
    )
    store.close()
