"""The records ``evaluate`` writes: one per metric, each carrying the protocol its number was measured under
(what a source describes, ``sources.Source.describe``), the value, the extractor that measured it, the wall
time and the code's revision; and how they are shown (a table, W&B)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lit_genvision.checkpoint_io import sha256_of
from lit_genvision.metrics.scoring import Scorer


def git_revision() -> str:
    """The short commit of the working tree (``-dirty`` with uncommitted changes), or ``unknown``."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if rev.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def file_hash(path: str | Path) -> str:
    """The checkpoint hash a record carries: the first 16 hex digits of its SHA-256."""
    return sha256_of(path)[:16]


def build_records(
    described: dict[str, Any], values: dict[str, float], extractors: dict[str, str], wall_time_s: float
) -> list[dict[str, Any]]:
    """One record per metric of ``values``: the protocol fields ``described`` (num_samples, split, model, family,
    dataset, checkpoint, sampler, steps, …), the value, the name of the extractor that measured it, the wall time
    of the whole evaluation, and when and at which revision it was measured."""
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    revision = git_revision()
    return [
        described
        | {
            "created": created,
            "metric": metric,
            "value": value,
            "extractor": extractors[metric],
            "wall_time_s": wall_time_s,
            "git_revision": revision,
            "status": "ok",
        }
        for metric, value in values.items()
    ]


def print_records(records: list[dict[str, Any]], store_path: Path, scorers: list[Scorer]) -> None:
    """The records as a table, the digits classifier's own accuracy where it scored, and where they went."""
    table = Table(
        title=f"{records[0]['model']} · {records[0]['sampler']} × {records[0]['steps']} NFE · "
        f"N = {records[0]['num_samples']} vs {records[0]['dataset']}/{records[0]['split']}"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("extractor")
    for r in records:
        table.add_row(r["metric"], f"{r['value']:.4f}", r["extractor"])
    console = Console()
    console.print(table)
    for s in scorers:
        if hasattr(s.extractor, "test_accuracy"):
            console.print(f"digits classifier test accuracy: {s.extractor.test_accuracy:.2%}")
    console.print(f"Recorded {len(records)} results in {store_path} (wall time {records[0]['wall_time_s']:.1f} s)")


def log_wandb(records: list[dict[str, Any]]) -> None:
    """The records' values as one W&B run of the ``lit-genvision-eval`` project."""
    import wandb

    r0 = records[0]
    with wandb.init(
        project="lit-genvision-eval",
        job_type="evaluate",
        config={k: r0[k] for k in ("model", "dataset", "split", "sampler", "steps", "num_samples", "checkpoint_hash")},
    ) as run:
        run.log({f"eval/{r['metric']}": r["value"] for r in records})
