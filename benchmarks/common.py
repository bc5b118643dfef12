"""Shared helpers for the benchmark scripts: timing, machine description, result files."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, str | int]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = str(torch.version.cuda)
        try:
            import triton

            info["triton"] = triton.__version__
        except ImportError:
            pass
    return info


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def save(name: str, payload: dict) -> Path:
    rev = os.environ.get("LIT_GENVISION_REVISION", "")  # set where the tree travels without .git (a GPU host)
    try:
        git = ["git", "rev-parse", "--short", "HEAD"]
        rev = rev or subprocess.run(git, capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    command = " ".join(["python", *sys.argv])
    head = {"benchmark": name, "date": dt.date.today().isoformat(), "command": command, "git_revision": rev}
    payload = head | {"machine": machine()} | payload
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"saved {path}")
    return path


def train_config(name: str, config: str, run_dir: Path, *overrides: str) -> Path:
    """Fit ``config`` (relative to the repository) into ``run_dir/name`` unless that run already has a
    last checkpoint; returns the checkpoint's path."""
    from lit_genvision.experiments.fit import fit

    ckpt = run_dir / name / "version_0" / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        root = Path(__file__).resolve().parents[1]
        fit(
            [
                "--config",
                str(root / config),
                *overrides,
                "--trainer.enable_progress_bar",
                "false",
                "--trainer.default_root_dir",
                str(run_dir),
                "--trainer.logger.init_args.save_dir",
                str(run_dir),
                "--trainer.logger.init_args.name",
                name,
            ]
        )
    return ckpt
