"""``lit-genvision evaluate``: generate through ``sample()``, score against cached reference
statistics, and append one record per metric to the results store.

``evaluate(EvaluateOptions(...))`` is the typed entry point that Python callers (the sweep
runner) use; ``run(args)`` is the argparse edge of the CLI, which only translates its namespace
into those options. Nothing is written until every metric is computed, so an interrupted
evaluation leaves no partial record.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
    configure_sampling,
    generate_batches,
    parse_labels,
    progress_bar,
    resolve_device,
)
from lit_genvision.experiments.store import ResultsStore, default_store_path
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.metrics import scoring
from lit_genvision.metrics.clip_score import CLIPExtractor
from lit_genvision.metrics.generation import GeneratedBatch, dist_rank_world, gather_to_rank0
from lit_genvision.metrics.inception import InceptionExtractor
from lit_genvision.metrics.reference import image_batches
from lit_genvision.metrics.scoring import (
    METRICS,
    Scorer,
    check_sample_count,
    parse_metrics,
    with_label_metrics,
)
from lit_genvision.metrics.tokens import codebook_statistics

BASELINES = ("real", "noise", "one-class", "mean-image")


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
    """Generated samples scored."""
    split: str = "test"
    """The reference split (held out from training)."""
    batch_size: int = 250
    """Images generated at once (part of the seed rule)."""
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
    prompts: str | None = None
    """A text file of prompts, one per line, for a text-conditioned model: sample i gets prompt i mod P
    (None: the model's class prompts)."""
    reconstruct: bool = False
    """Score the model's reconstructions of the split's images (a tokenizer or autoencoder), not samples."""

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> EvaluateOptions:
        """The options of a parsed ``evaluate`` command line (attributes it lacks keep their default)."""
        given = vars(args)
        return cls(**{f.name: given[f.name] for f in dataclasses.fields(cls) if f.name in given})


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
    clip: str | Path | None = None,
    device: str = "auto",
) -> list[Scorer]:
    """One scorer per registered extractor family the metrics need, each with its cached reference
    (``metrics.scoring.build_scorers`` with the extractor options ``evaluate`` has); ``clip`` is
    loaded into the CLIP family's extractor only when a metric of that family is asked for."""
    options: dict[str, Any] = {"inception_weights": inception_weights, "download_weights": download_weights}
    if clip is not None and any(METRICS[m].family == "clip" for m in metrics):
        options["clip"] = clip_extractor(clip, datamodule, split, device)
    return scoring.build_scorers(metrics, datamodule, split, image_size, options)


def clip_extractor(path: str | Path, datamodule, split: str, device: str = "auto") -> CLIPExtractor:
    """The `CLIPExtractor` of a CLIP checkpoint, its classes prompted by the data module's templates of
    ``split`` (held out from training), named by the checkpoint's hash."""
    from lit_genvision.experiments.clip import class_prompts, load_clip

    model = load_clip(str(path), device)
    if hasattr(datamodule, "zero_shot_prompts"):
        prompts = datamodule.zero_shot_prompts(split)
    else:
        prompts = class_prompts(["a photo of a {}"], [str(k) for k in range(getattr(datamodule, "num_classes", 10))])
    return CLIPExtractor(model.net, f"clip:{file_hash(path)}", prompts, model.net.image_tower.image_size)


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
    p.add_argument("--image-size", type=int, default=16, help="side of the digits a --baseline is drawn at")
    p.add_argument("--name", default=None, help="model name in the leaderboard (default: the run folder)")
    p.add_argument("--store", default=None, help="results store (default runs/results.sqlite)")
    p.add_argument("--inception-weights", default=None, help=f"local {InceptionExtractor.__module__} weights file")
    p.add_argument("--download-weights", action="store_true", help="download the Inception weights if missing")
    p.add_argument("--clip", default=None, help="CLIP checkpoint for --metrics clip_score (configs/clip/digits.yaml)")
    p.add_argument(
        "--prompts",
        default=None,
        metavar="TXT",
        help="a text-conditioned model's prompts, one per line; sample i gets prompt i mod P "
        "(default: the model's class prompts)",
    )
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


def read_prompts(path: str | None, model) -> list[str] | None:
    """The prompts of ``--prompts`` (one per non-empty line) for a model that reads text; None without it."""
    if path is None:
        return None
    if "text" not in model.conditioning.batch_keys:
        raise ValueError(
            f"--prompts needs a text-conditioned model, and this {model.family} model reads "
            f"{', '.join(model.conditioning.batch_keys) or 'no condition'}; omit --prompts."
        )
    try:
        prompts = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise ValueError(f"--prompts {path} does not exist; pass a text file with one prompt per line.") from None
    if not prompts:
        raise ValueError(f"--prompts {path} has no prompt; write one prompt per line.")
    return prompts


def check_arguments(options: EvaluateOptions, metrics: list[str]) -> None:
    """Refuse, before any model is loaded or image sampled, options that would fail only after
    the work: a sample count too small for a requested metric, invalid sampling options, and a
    results store that cannot be written."""
    if (options.ckpt is None) == (options.baseline is None):
        raise ValueError("evaluate needs exactly one of a checkpoint (--ckpt) and a baseline (--baseline).")
    if options.baseline is not None and options.baseline not in BASELINES:
        raise ValueError(f"--baseline must be one of {', '.join(BASELINES)}, got {options.baseline!r}.")
    if options.num_samples < 2:
        raise ValueError(f"--num-samples must be at least 2, got {options.num_samples}.")
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
    """Score a checkpoint (or a baseline) as ``options`` say and append one record per metric to
    the results store; returns the records on rank 0 and an empty list on the other ranks.

    With ``devices`` > 1, or inside a torchrun group, generation and features are sharded over
    the ranks of a Fabric DDP group that this call starts or joins."""
    metrics = parse_metrics(options.metrics)
    check_arguments(options, metrics)
    start = time.perf_counter()
    if options.baseline is None and (options.devices > 1 or "LOCAL_RANK" in os.environ):
        options = dataclasses.replace(options, device=launch_ranks(options.devices, options.device))
    return _run_rank(options, metrics, start)


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


def evaluation_batches(
    model,
    options: EvaluateOptions,
    sampling: SampleOptions,
    labels: Tensor | None = None,
    rank: int = 0,
    world: int = 1,
    cond: dict[str, Any] | None = None,
) -> Iterator[GeneratedBatch]:
    """The (batch index, images, labels, prompts) that ``evaluate`` scores on this rank, drawn by the seed
    rule of ``sample`` (``generate_batches``): batch b from its own seed (seed, b), ranks taking
    every world-th batch, so the generated set, and so every score, does not depend on the number
    of processes, and ``sample --seed S`` writes the images ``evaluate --seed S`` scores."""
    return generate_batches(
        model,
        options.num_samples,
        batch_size=options.batch_size,
        seed=options.seed,
        steps=options.steps,
        options=sampling,
        labels=labels,
        cond=cond,
        rank=rank,
        world=world,
    )


def _extractor_options(options: EvaluateOptions) -> dict[str, Any]:
    """The extractor options of an evaluation, as ``build_scorers`` keywords."""
    return {
        "inception_weights": options.inception_weights, "download_weights": options.download_weights,
        "clip": options.clip, "device": options.device,
    }  # fmt: skip


def _run_rank(options: EvaluateOptions, metrics: list[str], start: float) -> list[dict[str, Any]]:
    rank = dist_rank_world()[0]
    store = ResultsStore(options.store) if rank == 0 else None  # open (and check) the store before spending time
    common: dict[str, Any] = {"num_samples": options.num_samples, "split": options.split}
    extra_extractors: dict[str, str] = {}
    if options.reconstruct:
        values, common, scorers, extra_extractors = _reconstructions(options, metrics, common)
    elif options.baseline:
        datamodule = DigitsDataModule(image_size=options.image_size)
        scorers = build_scorers(
            metrics, datamodule, options.split, datamodule.image_size, **_extractor_options(options)
        )
        repeats = options.repeats if options.baseline == "real" else 1
        runs = []
        for r in range(repeats):
            fresh = [s.fresh() for s in scorers]
            images = baseline_images(options.baseline, datamodule, options.num_samples, options.seed + r)
            runs.append(_score(fresh, lambda images=images: image_batches(images, 250)))
        values = {m: sum(r[m] for r in runs) / len(runs) for m in runs[0]}
        common |= {
            "model": f"baseline:{options.baseline}",
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
        ckpt = Path(options.ckpt)
        device = resolve_device(options.device)
        model = load_model(ckpt, use_ema=not options.no_ema, generative=True).to(device)
        datamodule = run_datamodule(ckpt)
        prompts = read_prompts(options.prompts, model)
        if (model.num_classes or getattr(model, "class_prompts", None)) and prompts is None:
            metrics = with_label_metrics(metrics)  # e.g. label_agreement: does it draw the digit asked for?
        elif "clip_score" in metrics and prompts is None:
            raise ValueError(
                f"clip_score scores images against the prompts they were asked to show, and this {model.family} "
                "model takes none; score a conditional model."
            )
        scorers = build_scorers(
            metrics, datamodule, options.split, model.image_shape[-1], **_extractor_options(options)
        )
        sampling = configure_sampling(
            model,
            sampler=options.sampler,
            guidance=options.guidance,
            eta=options.eta,
            rtol=options.rtol,
            atol=options.atol,
            temperature=options.temperature,
            top_k=options.top_k,
            truncation=options.truncation,
        )
        labels = parse_labels(options.label, options.num_samples, getattr(model, "label_count", model.num_classes))
        cond = {"text": [prompts[i % len(prompts)] for i in range(options.num_samples)]} if prompts else None
        rank, world = dist_rank_world()
        parts = []
        with progress_bar() as progress:
            task = progress.add_task(f"evaluate {model.family} (rank {rank}/{world})", total=options.num_samples)
            for b, images, batch_labels, batch_prompts in evaluation_batches(
                model, options, sampling, labels, rank, world, cond
            ):
                nfe = model.sampling_protocol(options.steps, sampling)[1]
                parts.append((b, [s.extractor(images) for s in scorers], batch_labels, batch_prompts, nfe))
                progress.advance(task, len(images) * world)
        parts = gather_to_rank0(parts)
        if rank != 0:
            return []
        nfes = []
        for _, extracted, labels, batch_prompts, nfe in sorted(parts, key=lambda p: p[0]):
            for scorer, (feats, probs) in zip(scorers, extracted, strict=True):
                scorer.add(feats, probs, labels, batch_prompts)
            nfes.append(nfe)
        values = {k: v for s in scorers for k, v in s.compute().items()}
        sampler_name = model.sampling_protocol(options.steps, sampling)[0]
        nfe = round(sum(nfes) / len(nfes))
        source = options.ckpt_source  # a URL the CLI downloaded into a temporary file
        run_name = options.name or (source.rsplit("/", 1)[-1] if source else "/".join(ckpt.resolve().parts[-4:-2]))
        device = torch.cuda.get_device_name(model.device) if model.device.type == "cuda" else "cpu"
        common |= {
            "model": run_name,
            "family": model.family,
            "dataset": datamodule.name,
            "checkpoint": source or str(ckpt),
            "checkpoint_hash": file_hash(ckpt),
            "sampler": sampler_name,
            "steps": nfe,
            "image_size": model.image_shape[-1],
            "device": device,
            "notes": "; ".join(
                note
                for note in (
                    None if getattr(model, "ema_loaded", False) else "raw weights",
                    f"prompts from {Path(options.prompts).name} ({len(prompts)})" if prompts else None,
                )
                if note
            )
            or None,
        }
    wall = time.perf_counter() - start
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    revision = git_revision()
    extractor_of = {m: s.extractor.name for s in scorers for m in s.metrics} | extra_extractors
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
    if options.wandb:
        _log_wandb(records)
    return records


@torch.no_grad()
def _reconstructions(
    options: EvaluateOptions, metrics: list[str], common: dict[str, Any]
) -> tuple[dict[str, float], dict[str, Any], list[Scorer], dict[str, str]]:
    """Score ``model.reconstruct`` of the first ``num_samples`` images of the split (all of them if
    fewer) against the split's reference: the metrics, the MSE per pixel in [-1, 1], and for a
    tokenizer its bits per image and the codebook utilisation and perplexity of those images' tokens."""
    ckpt = Path(options.ckpt)
    model = load_model(ckpt, use_ema=not options.no_ema).to(resolve_device(options.device))
    if not hasattr(model, "reconstruct"):
        raise ValueError(
            f"--reconstruct needs a tokenizer or autoencoder, and {ckpt} holds a {type(model).__name__} "
            f"({model.family} family); omit --reconstruct to score its samples."
        )
    datamodule = run_datamodule(ckpt)
    images = datamodule.split(options.split).images[: options.num_samples]
    size = images.shape[-1]
    scorers = build_scorers(metrics, datamodule, options.split, size, **_extractor_options(options))
    squared, tokens = 0.0, []
    for batch in image_batches(images, options.batch_size):
        x = batch.to(model.device)
        x_hat = model.reconstruct(x)
        squared += (x_hat - x).pow(2).sum().item()
        for scorer in scorers:
            scorer.update(x_hat.cpu(), None)
        if hasattr(model, "encode_indices") and getattr(model, "has_tokens", True):  # not a KL autoencoder
            tokens.append(model.encode_indices(x).cpu())
    values = {k: v for s in scorers for k, v in s.compute().items()}
    values["recon_mse"] = squared / images.numel()
    extractors = {"recon_mse": "pixels"}
    bits = None
    if tokens:
        bits = model.bits_per_image()
        values |= codebook_statistics(torch.cat(tokens), model.vocab_size) | {"bits_per_image": bits}
        extractors |= dict.fromkeys(("utilisation", "perplexity", "bits_per_image"), "tokens")
    run_name = options.name or "/".join(ckpt.resolve().parts[-4:-2])
    common = common | {
        "model": run_name,
        "family": model.family,
        "dataset": datamodule.name,
        "num_samples": len(images),
        "checkpoint": options.ckpt_source or str(ckpt),
        "checkpoint_hash": file_hash(ckpt),
        "sampler": "reconstruct",
        "steps": 0,
        "image_size": size,
        "device": "cpu" if model.device.type == "cpu" else torch.cuda.get_device_name(model.device),
        "notes": None if getattr(model, "ema_loaded", False) else "raw weights",
        "bits_per_image": bits,
    }
    return values, common, scorers, extractors


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
