"""What ``evaluate`` scores: sources of image batches, each saying what its records describe.

A source is opened from the options (the checkpoint loaded, every argument checked, the scorers built against
the reference split) and then gives, for each of its ``draws``, the batches of this rank: images in [-1, 1] on
the CPU with the labels and prompts they were asked to show and the network evaluations (NFE) each sample took.
``evaluate`` feeds them to the scorers and turns ``describe`` and the values into records.

- ``Samples``: a generative checkpoint's ``sample()``, by the seed rule of ``sample`` and sharded over ranks.
- ``Reconstructions``: a tokenizer's or autoencoder's reconstructions of the split's images, plus the figures it
  measures itself (MSE, bits per image, codebook use).
- ``Baseline``: reference points for the metric's scale on the digits (``BASELINES``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import torch
from torch import Tensor

from lit_genvision.data.digits import DigitsDataModule
from lit_genvision.experiments.arguments import resolve_device
from lit_genvision.experiments.checkpoints import load_model, run_datamodule
from lit_genvision.experiments.conditions import check_text_model, given_prompts
from lit_genvision.experiments.records import file_hash
from lit_genvision.experiments.sample import configure_sampling, generate_batches, parse_labels
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.metrics import scoring
from lit_genvision.metrics.clip_score import CLIPExtractor
from lit_genvision.metrics.generation import GeneratedBatch
from lit_genvision.metrics.reference import image_batches
from lit_genvision.metrics.scoring import METRICS, Scorer, with_label_metrics
from lit_genvision.metrics.tokens import codebook_statistics

if TYPE_CHECKING:
    from lit_genvision.experiments.evaluate import EvaluateOptions

BASELINES = ("real", "noise", "one-class", "mean-image")
#: Images per batch of a baseline's features (not a sampling batch: no seed rule depends on it).
BASELINE_BATCH = 250


class SourceBatch(NamedTuple):
    """One batch a source gives ``evaluate``."""

    index: int
    """Its place in the run (batches are scored in this order, whichever rank drew them)."""
    images: Tensor
    """(n, C, H, W), or (n, C, T, H, W) for video, in [-1, 1], on the CPU."""
    labels: Tensor | None = None
    """(n,) the classes the images were asked to show, if any."""
    prompts: list[str] | None = None
    """The n prompts they were asked to show, if any."""
    nfe: int = 0
    """Network evaluations each sample took (0 where nothing was sampled)."""


class Source(Protocol):
    """What ``evaluate`` scores and what its records describe."""

    title: str
    """The progress bar's description."""
    total: int
    """Images per draw."""
    draws: int
    """Independent draws, each scored by fresh scorers, whose metrics are averaged (the real-data floor's subsets)."""
    scorers: list[Scorer]
    """The metrics' scorers, each against the cached statistics of the reference split."""

    def batches(self, draw: int, rank: int, world: int) -> Iterator[SourceBatch]:
        """The batches of draw ``draw`` that rank ``rank`` of ``world`` gives."""
        ...

    def measured(self) -> tuple[dict[str, float], dict[str, str]]:
        """Figures the source measured itself while giving its batches, and the extractor name of each."""
        ...

    def describe(self, nfe: int) -> dict[str, Any]:
        """The record's protocol fields (num_samples, split, model, family, dataset, checkpoint, checkpoint_hash,
        sampler, steps, image_size, device, notes, …), given the NFE the batches reported on average."""
        ...


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


def _scorers(options: EvaluateOptions, metrics: list[str], datamodule, image_size: int) -> list[Scorer]:
    """``build_scorers`` with the extractor options of ``options``."""
    return build_scorers(
        metrics, datamodule, options.split, image_size, inception_weights=options.inception_weights,
        download_weights=options.download_weights, clip=options.clip, device=options.device,
    )  # fmt: skip


def image_side(shape: tuple[int, ...] | torch.Size) -> int:
    """The side a record's ``image_size`` gives: H of (…, H, W), whether an image (C, H, W) or a video (C, T, H, W)."""
    return int(shape[-2])


def run_name(options: EvaluateOptions, ckpt: Path) -> str:
    """The model's name in the leaderboard: ``--name``, else the URL's file name, else the run folder."""
    source = options.ckpt_source  # a URL the CLI downloaded into a temporary file
    return options.name or (source.rsplit("/", 1)[-1] if source else "/".join(ckpt.resolve().parts[-4:-2]))


def device_name(device: torch.device) -> str:
    """The GPU's name, or ``cpu``."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def checkpoint_record(options: EvaluateOptions, model: Any, ckpt: Path, datamodule: Any, side: int) -> dict[str, Any]:
    """The fields of a result record that name the checkpoint, its model and where it was scored (samples and
    reconstructions alike)."""
    return {
        "split": options.split,
        "model": run_name(options, ckpt),
        "family": model.family,
        "dataset": datamodule.name,
        "checkpoint": options.ckpt_source or str(ckpt),
        "checkpoint_hash": file_hash(ckpt),
        "image_size": side,
        "device": device_name(model.device),
    }


def evaluation_batches(
    model,
    options: EvaluateOptions,
    sampling: SampleOptions | None,
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
        model, options.num_samples, batch_size=options.batch_size, seed=options.seed, steps=options.steps,
        options=sampling, labels=labels, cond=cond, rank=rank, world=world,
    )  # fmt: skip


class Samples:
    """The samples of a generative checkpoint, drawn through ``sample()`` by the seed rule of ``sample``."""

    draws = 1

    def __init__(self, options: EvaluateOptions, metrics: list[str]) -> None:
        self.options, self.ckpt = options, Path(options.ckpt)
        device = resolve_device(options.device)  # a device that is not there is refused before the model loads
        self.model = load_model(self.ckpt, use_ema=not options.no_ema, generative=True).to(device)
        self.datamodule = run_datamodule(self.ckpt)
        model = self.model
        if options.prompt or options.prompt_file:
            check_text_model(model, "--prompt-file" if options.prompt_file else "--prompt")
        self.prompts = given_prompts(options.prompt, options.prompt_file)
        if (model.num_classes or getattr(model, "class_prompts", None)) and self.prompts is None:
            metrics = with_label_metrics(metrics)  # e.g. label_agreement: does it draw the digit asked for?
        elif "clip_score" in metrics and self.prompts is None:
            raise ValueError(
                f"clip_score scores images against the prompts they were asked to show, and this {model.family} "
                "model takes none; score a conditional model."
            )
        self.side = image_side(model.image_shape)
        self.scorers = _scorers(options, metrics, self.datamodule, self.side)
        names = ("sampler", "guidance", "eta", "rtol", "atol", "temperature", "top_k", "truncation")
        self.sampling = configure_sampling(model, **{name: getattr(options, name) for name in names})
        self.labels = parse_labels(options.label, options.num_samples, getattr(model, "label_count", model.num_classes))
        num, prompts = options.num_samples, self.prompts
        self.cond = {"text": [prompts[i % len(prompts)] for i in range(num)]} if prompts else None
        self.title, self.total = f"evaluate {model.family}", options.num_samples

    def batches(self, draw: int, rank: int, world: int) -> Iterator[SourceBatch]:
        drawn = evaluation_batches(self.model, self.options, self.sampling, self.labels, rank, world, self.cond)
        for b, images, labels, prompts in drawn:
            nfe = self.model.sampling_protocol(self.options.steps, self.sampling)[1]  # an adaptive solver's, as spent
            yield SourceBatch(b, images, labels, prompts, nfe)

    def measured(self) -> tuple[dict[str, float], dict[str, str]]:
        return {}, {}

    def describe(self, nfe: int) -> dict[str, Any]:
        options, model = self.options, self.model
        notes = (
            None if getattr(model, "ema_loaded", False) else "raw weights",
            self._prompt_note(),
        )
        return checkpoint_record(options, model, self.ckpt, self.datamodule, self.side) | {
            "num_samples": options.num_samples,
            "sampler": model.sampling_protocol(options.steps, self.sampling)[0],
            "steps": nfe,
            "notes": "; ".join(note for note in notes if note) or None,
        }

    def _prompt_note(self) -> str | None:
        if not self.prompts:
            return None
        if self.options.prompt_file:
            return f"prompts from {Path(self.options.prompt_file).name} ({len(self.prompts)})"
        return f"prompts from --prompt ({len(self.prompts)})"


class Reconstructions:
    """A tokenizer's (or autoencoder's) reconstructions ``model.reconstruct`` of the first ``num_samples``
    images of the split (all of them if fewer), with the MSE per pixel in [-1, 1], and for a tokenizer its
    bits per image and the codebook utilisation and perplexity of those images' tokens. One process draws them."""

    draws = 1

    def __init__(self, options: EvaluateOptions, metrics: list[str]) -> None:
        self.options, self.ckpt = options, Path(options.ckpt)
        model = load_model(self.ckpt, use_ema=not options.no_ema).to(resolve_device(options.device))
        if not hasattr(model, "reconstruct"):
            raise ValueError(
                f"--reconstruct needs a tokenizer or autoencoder, and {self.ckpt} holds a {type(model).__name__} "
                f"({model.family} family); omit --reconstruct to score its samples."
            )
        self.model, self.datamodule = model, run_datamodule(self.ckpt)
        self.images = self.datamodule.split(options.split).images[: options.num_samples]
        self.side = image_side(self.images.shape)
        self.scorers = _scorers(options, metrics, self.datamodule, self.side)
        self.title, self.total = f"reconstruct {model.family}", len(self.images)
        self.squared, self.tokens = 0.0, []

    @torch.no_grad()
    def batches(self, draw: int, rank: int, world: int) -> Iterator[SourceBatch]:
        if rank != 0:  # the squared error and the tokens are summed in one process
            return
        model = self.model
        for b, batch in enumerate(image_batches(self.images, self.options.batch_size)):
            x = batch.to(model.device)
            x_hat = model.reconstruct(x)
            self.squared += (x_hat - x).pow(2).sum().item()
            if hasattr(model, "encode_indices") and getattr(model, "has_tokens", True):  # not a KL autoencoder
                self.tokens.append(model.encode_indices(x).cpu())
            yield SourceBatch(b, x_hat.cpu())

    def measured(self) -> tuple[dict[str, float], dict[str, str]]:
        values = {"recon_mse": self.squared / self.images.numel()}
        extractors = {"recon_mse": "pixels"}
        if self.tokens:
            values |= codebook_statistics(torch.cat(self.tokens), self.model.vocab_size)
            values |= {"bits_per_image": self.model.bits_per_image()}
            extractors |= dict.fromkeys(("utilisation", "perplexity", "bits_per_image"), "tokens")
        return values, extractors

    def describe(self, nfe: int) -> dict[str, Any]:
        options, model = self.options, self.model
        return checkpoint_record(options, model, self.ckpt, self.datamodule, self.side) | {
            "num_samples": len(self.images),
            "sampler": "reconstruct",
            "steps": 0,
            "notes": None if getattr(model, "ema_loaded", False) else "raw weights",
            "bits_per_image": self.model.bits_per_image() if self.tokens else None,
        }


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
            raise ValueError(f"the real-data floor needs --num ≤ {len(train.images)} (the train images).")
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


class Baseline:
    """A reference baseline on the digits (``BASELINES``), drawn at ``--image-size``; the real-data floor is
    averaged over ``--repeats`` subsets, draw r from seed + r."""

    def __init__(self, options: EvaluateOptions, metrics: list[str]) -> None:
        self.options, self.datamodule = options, DigitsDataModule(image_size=options.image_size)
        self.scorers = _scorers(options, metrics, self.datamodule, self.datamodule.image_size)
        self.draws = options.repeats if options.baseline == "real" else 1
        self.title, self.total = f"baseline {options.baseline}", options.num_samples

    def batches(self, draw: int, rank: int, world: int) -> Iterator[SourceBatch]:
        options = self.options
        images = baseline_images(options.baseline, self.datamodule, options.num_samples, options.seed + draw)
        for b, batch in enumerate(image_batches(images, BASELINE_BATCH)):
            if b % world == rank:
                yield SourceBatch(b, batch)

    def measured(self) -> tuple[dict[str, float], dict[str, str]]:
        return {}, {}

    def describe(self, nfe: int) -> dict[str, Any]:
        return {
            "num_samples": self.options.num_samples,
            "split": self.options.split,
            "model": f"baseline:{self.options.baseline}",
            "family": "baseline",
            "dataset": self.datamodule.name,
            "checkpoint": None,
            "checkpoint_hash": None,
            "sampler": "-",
            "steps": 0,
            "image_size": self.datamodule.image_size,
            "device": "cpu",
            "notes": f"mean of {self.draws} subsets" if self.draws > 1 else None,
        }


def open_source(options: EvaluateOptions, metrics: list[str]) -> Source:
    """The source ``options`` ask to score: reconstructions (``reconstruct``), a baseline, or samples."""
    if options.reconstruct:
        return Reconstructions(options, metrics)
    if options.baseline:
        return Baseline(options, metrics)
    return Samples(options, metrics)
