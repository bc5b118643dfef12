"""``lit-genvision evaluate``: generate through ``sample()``, score against cached reference
statistics, and append one record per metric to the results store.

Nothing is written until every metric is computed, so an interrupted evaluation leaves no
partial record.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor

from lit_genvision.checkpoint_io import sha256_of
from lit_genvision.checks import check_int, check_writable
from lit_genvision.data.digits import DigitsDataModule
from lit_genvision.experiments.checkpoints import load_model, run_datamodule
from lit_genvision.experiments.sample import (
    add_sampling_arguments,
    check_sampling_arguments,
    generate_batches,
    parse_labels,
    progress_bar,
    resolve_device,
    sampling_from_arguments,
)
from lit_genvision.experiments.store import ResultsStore, default_store_path
from lit_genvision.metrics import scoring
from lit_genvision.metrics.generation import dist_rank_world, gather_to_rank0
from lit_genvision.metrics.inception import InceptionExtractor
from lit_genvision.metrics.reference import image_batches
from lit_genvision.metrics.scoring import (
    METRICS,
    Scorer,
    check_sample_count,
    parse_metrics,
    with_label_metrics,
)

BASELINES = ("real", "noise", "one-class", "mean-image")


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if rev.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def file_hash(path: str | Path) -> str:
    """The checkpoint hash a record carries: the first 16 hex digits of its SHA-256."""
    return sha256_of(path)[:16]


def build_scorers(
    metrics: list[str],
    datamodule,
    split: str,
    image_size: int,
    *,
    inception_weights: str | Path | None = None,
    download_weights: bool = False,
) -> list[Scorer]:
    """One scorer per registered extractor family the metrics need, each with its cached reference
    (``metrics.scoring.build_scorers`` with the extractor options ``evaluate`` has)."""
    options = {"inception_weights": inception_weights, "download_weights": download_weights}
    return scoring.build_scorers(metrics, datamodule, split, image_size, options)


def baseline_images(name: str, datamodule, num: int, seed: int) -> Tensor:
    """Reference points for the metric's scale, as uint8 (num, C, H, W): ``real`` a random subset
    of the train split (scored against the reference split, this is the floor a generator that
    learned the train distribution perfectly would reach), uniform noise, one class only, and the
    mean train image."""
    g = torch.Generator().manual_seed(seed)
    datamodule.setup("fit")
    train = datamodule.split("train")
    if name == "real":
        if num > len(train.images):
            raise ValueError(f"the real-data floor needs --num-samples ≤ {len(train.images)} (the train images).")
        return train.images[torch.randperm(len(train.images), generator=g)[:num]]
    if name == "noise":
        return torch.randint(0, 256, (num, *train.images.shape[1:]), generator=g, dtype=torch.uint8)
    if name == "one-class":
        ones = train.images[train.labels == 0]
        return ones[torch.randint(0, len(ones), (num,), generator=g)]
    if name == "mean-image":
        mean = train.images.float().mean(0, keepdim=True)
        jitter = torch.randn((num, *mean.shape[1:]), generator=g) * 2.0  # a point mass has no covariance
        return (mean + jitter).round().clamp(0, 255).to(torch.uint8)
    raise ValueError(f"--baseline must be one of {', '.join(BASELINES)}, got {name!r}.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="checkpoint of a generative model")
    src.add_argument("--baseline", choices=BASELINES, help="score a reference baseline on digits instead")
    p.add_argument("--metrics", default="digits_fd", help=f"comma-separated: {', '.join(METRICS)}")
    p.add_argument("--num-samples", type=int, default=500)
    add_sampling_arguments(p)
    p.add_argument("--split", default="test", help="reference split (held out from training)")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--repeats", type=int, default=5, help="subsets averaged for --baseline real")
    p.add_argument("--name", default=None, help="model name in the leaderboard (default: the run folder)")
    p.add_argument("--store", default=None, help="results store (default runs/results.sqlite)")
    p.add_argument("--inception-weights", default=None, help=f"local {InceptionExtractor.__module__} weights file")
    p.add_argument("--download-weights", action="store_true", help="download the Inception weights if missing")
    p.add_argument("--wandb", action="store_true", help="also log the results to W&B (WANDB_MODE=offline works)")
    p.add_argument(
        "--devices",
        type=int,
        default=1,
        help="processes to shard generation and features over (Lightning Fabric DDP; also under torchrun)",
    )


def _score(scorers: list[Scorer], batches: Callable[[], Iterator[Tensor | tuple[Tensor, Tensor]]]) -> dict[str, float]:
    """Feed every batch (images, or images with the labels they were generated for) to every scorer."""
    for batch in batches():
        images, labels = batch if isinstance(batch, tuple) else (batch, None)
        for scorer in scorers:
            scorer.update(images, labels)
    out: dict[str, float] = {}
    for scorer in scorers:
        out.update(scorer.compute())
    return out


def check_arguments(args: argparse.Namespace, metrics: list[str]) -> None:
    """Refuse, before any model is loaded or image sampled, arguments that would fail only after
    the work: a sample count too small for a requested metric, invalid sampling options, and a
    results store that cannot be written."""
    if args.num_samples < 2:
        raise ValueError(f"--num-samples must be at least 2, got {args.num_samples}.")
    check_sample_count(metrics, args.num_samples)
    check_sampling_arguments(args)
    check_int("--repeats", args.repeats, low=1, hint="pass the number of subsets to average")
    check_int("--devices", args.devices, low=1, hint="pass 1 to evaluate in this process")
    check_writable(args.store or default_store_path(), "--store")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    metrics = parse_metrics(args.metrics)
    check_arguments(args, metrics)
    start = time.perf_counter()
    if not args.baseline and (args.devices > 1 or "LOCAL_RANK" in os.environ):
        args.device = launch_ranks(args.devices, args.device)
    return _run_rank(args, metrics, start)


def launch_ranks(devices: int, device: str = "auto") -> str:
    """Start (or join, under torchrun) a process group of ``devices`` processes with Fabric.

    Returns the device this rank should use: its own GPU (``cuda:<local rank>``) when ``device``
    allows CUDA and one is visible, else ``device`` unchanged."""
    import lightning as L

    accelerator = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    fabric = L.Fabric(accelerator=accelerator, devices=devices, strategy="ddp")
    fabric.launch()
    return str(fabric.device) if accelerator == "cuda" else device


def evaluation_batches(
    model,
    args: argparse.Namespace,
    sampler: object | None,
    labels: Tensor | None = None,
    rank: int = 0,
    world: int = 1,
) -> Iterator[tuple[int, Tensor, Tensor | None]]:
    """The (batch index, images, labels) that ``evaluate`` scores on this rank, drawn by the seed
    rule of ``sample`` (``generate_batches``): batch b from its own seed (seed, b), ranks taking
    every world-th batch, so the generated set, and so every score, does not depend on the number
    of processes, and ``sample --seed S`` writes the images ``evaluate --seed S`` scores."""
    return generate_batches(
        model,
        args.num_samples,
        batch_size=args.batch_size,
        seed=args.seed,
        steps=args.steps,
        sampler=sampler,
        labels=labels,
        rank=rank,
        world=world,
    )


def _extractor_options(args: argparse.Namespace) -> dict[str, Any]:
    """The extractor options of ``evaluate``'s command line, as ``build_scorers`` keywords."""
    return {
        "inception_weights": getattr(args, "inception_weights", None),
        "download_weights": bool(getattr(args, "download_weights", False)),
    }


def _run_rank(args: argparse.Namespace, metrics: list[str], start: float) -> list[dict[str, Any]]:
    rank = dist_rank_world()[0]
    store = ResultsStore(args.store) if rank == 0 else None  # open (and check) the store before spending time
    common: dict[str, Any] = {"num_samples": args.num_samples, "split": args.split}
    if args.baseline:
        datamodule = DigitsDataModule()
        scorers = build_scorers(metrics, datamodule, args.split, datamodule.image_size, **_extractor_options(args))
        repeats = args.repeats if args.baseline == "real" else 1
        runs = []
        for r in range(repeats):
            fresh = [s.fresh() for s in scorers]
            images = baseline_images(args.baseline, datamodule, args.num_samples, args.seed + r)
            runs.append(_score(fresh, lambda images=images: image_batches(images, 250)))
        values = {m: sum(r[m] for r in runs) / len(runs) for m in runs[0]}
        common |= {
            "model": f"baseline:{args.baseline}",
            "family": "baseline",
            "dataset": datamodule.name,
            "checkpoint": None,
            "checkpoint_hash": None,
            "sampler": "-",
            "steps": 0,
            "image_size": datamodule.image_size,
            "device": "cpu",
            "notes": f"mean of {repeats} subsets" if repeats > 1 else None,
        }
    else:
        ckpt = Path(args.ckpt)
        device = resolve_device(args.device)
        model = load_model(ckpt, use_ema=not args.no_ema, generative=True).to(device)
        datamodule = run_datamodule(ckpt)
        if model.num_classes:
            metrics = with_label_metrics(metrics)  # e.g. label_agreement: does it draw the digit asked for?
        scorers = build_scorers(metrics, datamodule, args.split, model.image_shape[-1], **_extractor_options(args))
        sampler = sampling_from_arguments(model, args)
        labels = parse_labels(getattr(args, "label", None), args.num_samples, model.num_classes)
        rank, world = dist_rank_world()
        parts = []
        with progress_bar() as progress:
            task = progress.add_task(f"evaluate {model.family} (rank {rank}/{world})", total=args.num_samples)
            for b, images, batch_labels in evaluation_batches(model, args, sampler, labels, rank, world):
                nfe = model.sampling_protocol(args.steps, sampler)[1]
                parts.append((b, [s.extractor(images) for s in scorers], batch_labels, nfe))
                progress.advance(task, len(images) * world)
        parts = gather_to_rank0(parts)
        if rank != 0:
            return []
        nfes = []
        for _, extracted, labels, nfe in sorted(parts, key=lambda p: p[0]):
            for scorer, (feats, probs) in zip(scorers, extracted, strict=True):
                scorer.add(feats, probs, labels)
            nfes.append(nfe)
        values = {k: v for s in scorers for k, v in s.compute().items()}
        sampler_name = model.sampling_protocol(args.steps, sampler)[0]
        nfe = round(sum(nfes) / len(nfes))
        source = getattr(args, "ckpt_source", None)  # a URL the CLI downloaded into a temporary file
        run_name = args.name or (source.rsplit("/", 1)[-1] if source else "/".join(ckpt.resolve().parts[-4:-2]))
        device = torch.cuda.get_device_name(model.device) if model.device.type == "cuda" else "cpu"
        common |= {
            "model": run_name,
            "family": model.family,
            "dataset": datamodule.name,
            "checkpoint": getattr(args, "ckpt_source", None) or str(ckpt),
            "checkpoint_hash": file_hash(ckpt),
            "sampler": sampler_name,
            "steps": nfe,
            "image_size": model.image_shape[-1],
            "device": device,
            "notes": None if getattr(model, "ema_loaded", False) else "raw weights",
        }
    wall = time.perf_counter() - start
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    revision = git_revision()
    extractor_of = {m: s.extractor.name for s in scorers for m in s.metrics}
    records = [
        common
        | {
            "created": created,
            "metric": m,
            "value": v,
            "extractor": extractor_of[m],
            "wall_time_s": wall,
            "git_revision": revision,
            "status": "ok",
        }
        for m, v in values.items()
    ]
    store.add(records)
    store.close()
    _print(records, store.path, scorers)
    if args.wandb:
        _log_wandb(records)
    return records


def _print(records: list[dict[str, Any]], store_path: Path, scorers: list[Scorer]) -> None:
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


def _log_wandb(records: list[dict[str, Any]]) -> None:
    import wandb

    r0 = records[0]
    with wandb.init(
        project="lit-genvision-eval",
        job_type="evaluate",
        config={k: r0[k] for k in ("model", "dataset", "split", "sampler", "steps", "num_samples", "checkpoint_hash")},
    ) as run:
        run.log({f"eval/{r['metric']}": r["value"] for r in records})
