"""``lit-genvision evaluate``: score a source of images — a checkpoint's samples, a tokenizer's reconstructions,
or a baseline (``sources``) — against cached reference statistics, and append one record per metric to the
results store (``records``).

``evaluate(EvaluateOptions(...))`` is the typed entry point that Python callers (the sweep
runner) use; ``run(args)`` is the argparse edge of the CLI, which only translates its namespace
into those options. Nothing is written until every metric is computed, so an interrupted
evaluation leaves no partial record.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lit_genvision.checks import check_int, check_writable
from lit_genvision.experiments.arguments import (
    BATCH_SIZE,
    add_deprecated_alias,
    add_sampling_arguments,
    check_sampling_arguments,
    progress_bar,
)
from lit_genvision.experiments.records import build_records, file_hash, git_revision, log_wandb, print_records
from lit_genvision.experiments.sources import (
    BASELINES,
    Source,
    baseline_images,
    build_scorers,
    clip_extractor,
    evaluation_batches,
    open_source,
)
from lit_genvision.experiments.store import ResultsStore, default_store_path
from lit_genvision.metrics.frames import frame_batch, takes_video
from lit_genvision.metrics.generation import dist_rank_world, gather_to_rank0
from lit_genvision.metrics.inception import InceptionExtractor
from lit_genvision.metrics.scoring import METRICS, check_sample_count, parse_metrics

__all__ = [  # the names callers have imported from here (sources and records hold them now)
    "BASELINES", "EvaluateOptions", "add_arguments", "baseline_images", "build_scorers", "clip_extractor",
    "evaluate", "evaluation_batches", "file_hash", "git_revision", "run", "score",
]  # fmt: skip


@dataclass(frozen=True)
class EvaluateOptions:
    """What one evaluation scores and how: the options of ``lit-genvision evaluate``, typed, with
    the command line's defaults (a test holds the two sets of defaults equal). Exactly one of
    ``ckpt`` and ``baseline`` is given."""

    ckpt: str | Path | None = None
    """Checkpoint of a generative model (a local file; the CLI downloads a URL first)."""
    baseline: str | None = None
    """Score a reference baseline on digits instead: one of ``BASELINES``."""
    metrics: str | list[str] = "digits_fd"
    """Registered metric names, comma-separated or as a list."""
    num_samples: int = 500
    """Generated samples scored (``--num``)."""
    split: str = "test"
    """The reference split (held out from training)."""
    batch_size: int = BATCH_SIZE
    """Images generated at once (part of the seed rule; the default of every command that samples)."""
    repeats: int = 5
    """Subsets averaged for the ``real`` baseline."""
    image_size: int = 16
    """Side of the digits a baseline is drawn at (32 for the 32×32 GANs' floor); a checkpoint's own data decides its."""
    name: str | None = None
    """Model name in the leaderboard (None: the run folder)."""
    store: str | Path | None = None
    """The results store (None: ``runs/results.sqlite``)."""
    inception_weights: str | Path | None = None
    """A local Inception-v3 weights file (FID, KID, IS)."""
    clip: str | Path | None = None
    """A CLIP checkpoint (``clip_score``); its hash names the extractor: two CLIPs' scores are never ranked together."""
    download_weights: bool = False
    """Download the Inception weights if missing."""
    wandb: bool = False
    """Also log the results to W&B."""
    devices: int = 1
    """Processes to shard generation and features over (Fabric DDP; also joins a torchrun group)."""
    sampler: str | None = None
    """Override the model's sampler (None: the checkpoint's own)."""
    steps: int | None = None
    """Sampler steps (None: the checkpoint's sampler steps)."""
    eta: float | None = None
    """DDIM η (None: the sampler's; given alone it selects DDIM)."""
    rtol: float | None = None
    """dopri5 relative tolerance (None: 1e-3; given alone it selects dopri5)."""
    atol: float | None = None
    """dopri5 absolute tolerance (None: 1e-3; given alone it selects dopri5)."""
    guidance: float | None = None
    """Classifier-free guidance scale (None: the model's)."""
    temperature: float | None = None
    """Softmax temperature of a token prior (None: the model's)."""
    top_k: int | None = None
    """Top-k of a token prior (None: the model's)."""
    truncation: float | None = None
    """A StyleGAN's truncation ψ (None: the model's, 1 unless configured)."""
    seed: int = 0
    """Batch b is drawn with a generator seeded from (seed, b)."""
    label: str | None = None
    """Class of a class-conditional model, ``"K"`` or ``"K,K,..."`` (None: balanced labels)."""
    device: str = "auto"
    """``auto``, ``cpu``, ``cuda`` or ``cuda:<index>``."""
    no_ema: bool = False
    """Use the raw weights instead of the EMA."""
    ckpt_source: str | None = None
    """The URL ``ckpt`` was downloaded from, recorded instead of the temporary file."""
    prompt: list[str] | None = None
    """Prompts of a text-conditioned model: sample i gets prompt i mod P (None: the model's class prompts)."""
    prompt_file: str | Path | None = None
    """A text file of prompts, one per line, used like ``prompt``."""
    reconstruct: bool = False
    """Score the model's reconstructions of the split's images (a tokenizer or autoencoder), not samples."""

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> EvaluateOptions:
        """The options of a parsed ``evaluate`` command line (attributes it lacks keep their default)."""
        given = vars(args)
        return cls(**{f.name: given[f.name] for f in dataclasses.fields(cls) if f.name in given})


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="checkpoint of a generative model (a path or a URL)")
    src.add_argument("--baseline", choices=BASELINES, help="score a reference baseline on digits instead")
    p.add_argument("--metrics", default="digits_fd", help=f"comma-separated: {', '.join(METRICS)}")
    p.add_argument("--num", dest="num_samples", type=int, default=500, help="number of samples scored")
    add_deprecated_alias(p, "--num-samples", "--num", "num_samples", type=int)
    add_sampling_arguments(p)
    add_deprecated_alias(p, "--prompts", "--prompt-file", "prompt_file", metavar="TXT")
    p.add_argument("--split", default="test", help="reference split (held out from training)")
    p.add_argument("--repeats", type=int, default=5, help="subsets averaged for --baseline real")
    p.add_argument("--image-size", type=int, default=16, help="side of the digits a --baseline is drawn at")
    p.add_argument("--name", default=None, help="model name in the leaderboard (default: the run folder)")
    p.add_argument("--store", default=None, help="results store (default runs/results.sqlite)")
    p.add_argument("--inception-weights", default=None, help=f"local {InceptionExtractor.__module__} weights file")
    p.add_argument("--download-weights", action="store_true", help="download the Inception weights if missing")
    p.add_argument("--clip", default=None, help="CLIP checkpoint for --metrics clip_score (configs/clip/digits.yaml)")
    p.add_argument("--wandb", action="store_true", help="also log the results to W&B (WANDB_MODE=offline works)")
    p.add_argument(
        "--reconstruct",
        action="store_true",
        help="score a tokenizer's (or autoencoder's) reconstructions of the --split images instead of samples, "
        "with MSE, bits per image and codebook utilisation",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=1,
        help="processes to shard generation and features over (Lightning Fabric DDP; also under torchrun)",
    )


def check_arguments(options: EvaluateOptions, metrics: list[str]) -> None:
    """Refuse, before any model is loaded or image sampled, options that would fail only after
    the work: a sample count too small for a requested metric, invalid sampling options, and a
    results store that cannot be written."""
    if (options.ckpt is None) == (options.baseline is None):
        raise ValueError("evaluate needs exactly one of a checkpoint (--ckpt) and a baseline (--baseline).")
    if options.baseline is not None and options.baseline not in BASELINES:
        raise ValueError(f"--baseline must be one of {', '.join(BASELINES)}, got {options.baseline!r}.")
    if options.num_samples < 2:
        raise ValueError(f"--num must be at least 2, got {options.num_samples}.")
    check_sample_count(metrics, options.num_samples)
    check_sampling_arguments(options)  # reads the sampling attributes, which the options share with argparse's
    check_int("--repeats", options.repeats, low=1, hint="pass the number of subsets to average")
    check_int("--devices", options.devices, low=1, hint="pass 1 to evaluate in this process")
    if any(METRICS[m].family == "clip" for m in metrics) and options.clip is None:
        raise ValueError("clip_score needs the CLIP checkpoint to score with; pass --clip PATH.")
    if options.reconstruct and (options.baseline is not None or options.devices > 1):
        raise ValueError("--reconstruct scores one checkpoint in one process; omit --baseline and --devices.")
    check_writable(options.store or default_store_path(), "--store")


def evaluate(options: EvaluateOptions) -> list[dict[str, Any]]:
    """Score the source ``options`` name (a checkpoint's samples, a tokenizer's reconstructions, a baseline) and
    append one record per metric to the results store; returns the records on rank 0 and an empty list on the
    other ranks.

    With ``devices`` > 1, or inside a torchrun group, generation and features are sharded over
    the ranks of a Fabric DDP group that this call starts or joins."""
    metrics = parse_metrics(options.metrics)
    check_arguments(options, metrics)
    start = time.perf_counter()
    if options.baseline is None and (options.devices > 1 or "LOCAL_RANK" in os.environ):
        options = dataclasses.replace(options, device=launch_ranks(options.devices, options.device))
    rank, world = dist_rank_world()
    store = ResultsStore(options.store) if rank == 0 else None  # open (and check) the store before spending time
    source = open_source(options, metrics)
    scored = score(source, rank, world)
    if scored is None:  # another rank's features went to rank 0, which records them
        return []
    values, extractors, nfe = scored
    records = build_records(source.describe(nfe), values, extractors, time.perf_counter() - start)
    store.add(records)
    store.close()
    print_records(records, store.path, source.scorers)
    if options.wandb:
        log_wandb(records)
    return records


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The argparse edge: ``evaluate`` with the options of the parsed command line."""
    return evaluate(EvaluateOptions.from_namespace(args))


def launch_ranks(devices: int, device: str = "auto") -> str:
    """Start (or join, under torchrun) a process group of ``devices`` processes with Fabric.

    Returns the device this rank should use: its own GPU (``cuda:<local rank>``) when ``device``
    allows CUDA and one is visible, else ``device`` unchanged."""
    import lightning as L

    accelerator = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    fabric = L.Fabric(accelerator=accelerator, devices=devices, strategy="ddp")
    fabric.launch()
    return str(fabric.device) if accelerator == "cuda" else device


def score(source: Source, rank: int = 0, world: int = 1) -> tuple[dict[str, float], dict[str, str], int] | None:
    """Feed every batch of every draw of ``source`` to fresh copies of its scorers, in batch order whichever rank
    drew it. On rank 0: the metrics (averaged over the draws) followed by what the source measured itself, the
    extractor name of each, and the mean NFE of the batches; None on the other ranks."""
    runs: list[dict[str, float]] = []
    nfes: list[int] = []
    with progress_bar() as progress:
        task = progress.add_task(f"{source.title} (rank {rank}/{world})", total=source.total * source.draws)
        for draw in range(source.draws):
            scorers = [s.fresh() for s in source.scorers]
            parts = []
            for batch in source.batches(draw, rank, world):
                progress.advance(task, len(batch.images) * world)
                # a video is scored frame by frame, each frame with its video's label and prompt (whole clips
                # by an extractor that takes them: digits-FVD's)
                seen = [
                    frame_batch(batch.images, batch.labels, batch.prompts, takes_video(s.extractor)) for s in scorers
                ]
                extracted = [
                    (*s.extractor(x), labels, prompts) for s, (x, labels, prompts) in zip(scorers, seen, strict=True)
                ]
                parts.append((batch.index, extracted, batch.nfe))
            parts = gather_to_rank0(parts)
            if rank != 0:
                continue
            for _, extracted, nfe in sorted(parts, key=lambda p: p[0]):
                for scorer, (feats, probs, labels, prompts) in zip(scorers, extracted, strict=True):
                    scorer.add(feats, probs, labels, prompts)
                nfes.append(nfe)
            runs.append({k: v for s in scorers for k, v in s.compute().items()})
    if rank != 0:
        return None
    values = {m: sum(r[m] for r in runs) / len(runs) for m in runs[0]}
    measured, measured_by = source.measured()
    extractors = {m: s.extractor.name for s in source.scorers for m in s.metrics} | measured_by
    return values | measured, extractors, round(sum(nfes) / len(nfes)) if nfes else 0
