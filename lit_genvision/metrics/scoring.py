"""Scoring generated images against a reference, batch by batch. A video is scored frame by frame
(`lit_genvision.metrics.frames`): each frame is one sample, with its video's label and prompt.

Which metrics exist, and how each is computed, is the registry's business
(:mod:`lit_genvision.metrics.registry`, filled by the modules of :mod:`lit_genvision.metrics.families`);
this module accumulates an extractor's features and asks each requested metric for its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from lit_genvision.metrics.frames import frame_batch, takes_video
from lit_genvision.metrics.frechet import FeatureStats
from lit_genvision.metrics.reference import KID_FEATURES, Reference, image_batches, reference_key, reference_stats
from lit_genvision.metrics.registry import FAMILIES, METRICS, Metric
from lit_genvision.metrics.tokens import RECONSTRUCTION_DIRECTIONS

#: Feature dimensions of the two extractors (``SmallConvNet(feature_dim=64)`` in metrics/digits.py,
#: Inception's pool3 in metrics/inception.py): a Fréchet distance needs more samples than these.
DIGITS_FEATURES = 64
INCEPTION_FEATURES = 2048

#: the metrics ``digits_fd`` brings along (its diagnostics; see ``Metric.brings``)
DIGITS_METRICS = ("digits_fd", "recognised", "min_class_share", "class_entropy")

__all__ = [
    "DIGITS_FEATURES",
    "DIGITS_METRICS",
    "INCEPTION_FEATURES",
    "METRICS",
    "Metric",
    "Scorer",
    "build_scorers",
    "check_sample_count",
    "lower_is_better",
    "parse_metrics",
    "reference_scorer",
    "split_images",
]


def lower_is_better(metric: str) -> bool:
    """The registered direction of ``metric``, or a reconstruction figure's (True for any other name)."""
    if metric in METRICS:
        return METRICS[metric].lower_is_better
    return RECONSTRUCTION_DIRECTIONS.get(metric, True)


def check_sample_count(metrics: list[str], num_samples: int, name: str = "--num") -> None:
    """Refuse a sample count too small for any of ``metrics``, before anything is sampled; ``name`` is the
    argument as the user spells it (``evaluate --num``, a callback's ``num_samples``)."""
    for m in metrics:
        need = METRICS[m].min_samples
        if num_samples < need:
            raise ValueError(
                f"{name} {num_samples} is too few for {m}, which would get {METRICS[m].why}; "
                f"pass {name} {need} or more."
            )


def parse_metrics(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"digits_fd,fid"`` (or a list of names) → the metric list, each followed by what it brings
    along (``digits_fd`` its classifier diagnostics)."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    names = [m.strip().lower() for m in parts if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METRICS)}.")
    for m in list(names):
        names += [b for b in METRICS[m].brings if b not in names]
    return names


def with_label_metrics(metrics: list[str]) -> list[str]:
    """``metrics`` plus those registered for a class-conditional generator (``label_agreement``)."""
    out = list(metrics)
    for m in metrics:
        out += [extra for extra in METRICS[m].with_labels if extra not in out]
    return out


class Scorer:
    """Accumulates one extractor's features of generated batches; ``compute`` gives the metrics.

    Fréchet statistics stream (memory flat in N); at most 10,000 feature rows are kept (KID), and
    the class probabilities and the labels asked for are kept (classifier diagnostics).
    """

    def __init__(self, extractor, reference: Reference, metrics: list[str]) -> None:
        self.extractor, self.reference, self.metrics = extractor, reference, metrics
        self.stats = FeatureStats(extractor.dim)
        self.kept: list[Tensor] = []
        self.probs: list[Tensor] = []
        self.requested: list[Tensor] = []
        self.prompts: list[str] = []

    def fresh(self) -> Scorer:
        """An empty scorer with the same extractor, reference and metrics."""
        return Scorer(self.extractor, self.reference, self.metrics)

    def update(self, images: Tensor, labels: Tensor | None = None, prompts: list[str] | None = None) -> None:
        """Add generated images (N, C, H, W) or videos (N, C, T, H, W), scored frame by frame (`frame_batch`) unless
        the extractor takes whole clips; ``labels`` and ``prompts`` are the classes and texts they were asked to
        show, if any."""
        frames, labels, prompts = frame_batch(images, labels, prompts, takes_video(self.extractor))
        self.add(*self.extractor(frames), labels, prompts)

    def add(self, feats: Tensor, probs: Tensor, labels: Tensor | None = None, prompts: list[str] | None = None) -> None:
        """Add already extracted features and class probabilities (gathered from other ranks)."""
        if labels is not None:
            self.requested.append(labels.cpu())
        if prompts is not None:
            self.prompts.extend(prompts)
        self.stats.update(feats)
        if sum(len(k) for k in self.kept) < KID_FEATURES:
            self.kept.append(feats.float())
        self.probs.append(probs.float())

    @property
    def all_probs(self) -> Tensor:
        """The class probabilities of every sample seen, (N, classes)."""
        return torch.cat(self.probs)

    def compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for metric in self.metrics:
            value = METRICS[metric].compute(self)
            if value is not None:
                out[metric] = float(value)
        return out


def reference_scorer(
    extractor, dataset: str, split: str, images: Tensor, metrics: list[str], batch_size: int = 256
) -> Scorer:
    """A scorer against the cached statistics of ``images`` (uint8, the split of ``dataset``)."""
    key = reference_key(dataset, split, images.shape[-1], extractor.name)
    return Scorer(extractor, reference_stats(key, extractor, lambda: image_batches(images, batch_size)), metrics)


def split_images(datamodule, split: str) -> Tensor:
    """The uint8 images of ``split`` of ``datamodule`` (set up for fit)."""
    datamodule.setup("fit")
    try:
        return datamodule.split(split).images
    except KeyError:
        raise ValueError(f"split must be one of {', '.join(datamodule.splits)}, got {split!r}.") from None


def build_scorers(
    metrics: list[str],
    datamodule,
    split: str,
    image_size: int,
    options: Mapping[str, Any] | None = None,
) -> list[Scorer]:
    """One scorer per registered family that ``metrics`` need, each against the cached reference
    statistics of ``split``; ``options`` are handed to every family's ``build``."""
    by_family: dict[str, list[str]] = {}
    for m in metrics:
        by_family.setdefault(METRICS[m].family, []).append(m)
    return [
        FAMILIES[family].build(datamodule, split, image_size, by_family[family], options or {})
        for family in FAMILIES  # registration order, whatever the order of ``metrics``
        if family in by_family
    ]
