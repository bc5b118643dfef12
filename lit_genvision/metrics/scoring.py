"""Scoring generated images against a reference, batch by batch."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from lit_genvision.metrics.classifier_scores import class_coverage, inception_score, recognised_share
from lit_genvision.metrics.frechet import FeatureStats, frechet_distance
from lit_genvision.metrics.kid import kernel_inception_distance
from lit_genvision.metrics.reference import KID_FEATURES, Reference, image_batches, reference_key, reference_stats

#: Feature dimensions of the two extractors (``SmallConvNet(feature_dim=64)`` in metrics/digits.py,
#: Inception's pool3 in metrics/inception.py): a Fréchet distance needs more samples than these.
DIGITS_FEATURES = 64
INCEPTION_FEATURES = 2048

_SINGULAR = "a singular covariance in a {}-dimensional feature space (it needs more samples than dimensions)"


class Metric(NamedTuple):
    """A metric's registration: its extractor family, its direction and the fewest generated
    samples it can be computed from (checked before anything is sampled)."""

    family: str
    lower_is_better: bool
    min_samples: int
    why: str


#: metric name → (extractor family, lower is better, minimum --num-samples, why that minimum)
METRICS: dict[str, Metric] = {
    # FeatureStats.finalize refuses n ≤ D: the covariance of n samples has rank ≤ n − 1 < D.
    "digits_fd": Metric(
        "digits",
        True,
        DIGITS_FEATURES + 1,
        _SINGULAR.format(DIGITS_FEATURES),
    ),
    "recognised": Metric("digits", False, 1, "no images to classify"),
    "min_class_share": Metric("digits", False, 1, "no images to classify"),
    "class_entropy": Metric("digits", False, 1, "no images to classify"),
    "label_agreement": Metric("digits", False, 1, "no images to classify"),
    # The same rule on Inception's 2048-d features: FID below 2049 samples cannot be computed.
    "fid": Metric(
        "inception",
        True,
        INCEPTION_FEATURES + 1,
        _SINGULAR.format(INCEPTION_FEATURES),
    ),
    # The unbiased MMD² divides by m(m − 1); the subset size is capped at the sample count.
    "kid": Metric("inception", True, 2, "no pair of samples for the unbiased MMD² estimate"),
    # IS averages over 10 splits; a split of one image scores exactly 1 whatever the image.
    "is": Metric("inception", False, 10, "splits of a single image, whose Inception Score is trivially 1"),
}
DIGITS_METRICS = ("digits_fd", "recognised", "min_class_share", "class_entropy")


def lower_is_better(metric: str) -> bool:
    return METRICS.get(metric, ("", True))[1]


def check_sample_count(metrics: list[str], num_samples: int) -> None:
    """Refuse a ``--num-samples`` too small for any of ``metrics``, before anything is sampled."""
    for m in metrics:
        need = METRICS[m].min_samples
        if num_samples < need:
            raise ValueError(
                f"--num-samples {num_samples} is too few for {m}, which would get {METRICS[m].why}; "
                f"pass --num-samples {need} or more."
            )


def parse_metrics(text: str) -> list[str]:
    """``"digits_fd,fid"`` → the metric list; ``digits_fd`` brings its diagnostics along."""
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METRICS)}.")
    if "digits_fd" in names:
        names += [m for m in DIGITS_METRICS if m not in names]
    return names


class Scorer:
    """Accumulates one extractor's features of generated batches; ``compute`` gives the metrics.

    Fréchet statistics stream (memory flat in N); KID keeps at most 10,000 feature rows and the
    classifier diagnostics keep the class probabilities.
    """

    def __init__(self, extractor, reference: Reference, metrics: list[str]) -> None:
        self.extractor, self.reference, self.metrics = extractor, reference, metrics
        self.stats = FeatureStats(extractor.dim)
        self.kept: list[Tensor] = []
        self.probs: list[Tensor] = []
        self.requested: list[Tensor] = []

    def update(self, images: Tensor, labels: Tensor | None = None) -> None:
        """Add generated images; ``labels`` are the classes they were asked to show, if any."""
        self.add(*self.extractor(images), labels)

    def add(self, feats: Tensor, probs: Tensor, labels: Tensor | None = None) -> None:
        """Add already extracted features and class probabilities (gathered from other ranks)."""
        if labels is not None:
            self.requested.append(labels.cpu())
        self.stats.update(feats)
        if sum(len(k) for k in self.kept) < KID_FEATURES:
            self.kept.append(feats.float())
        self.probs.append(probs.float())

    def compute(self) -> dict[str, float]:
        import torch

        out: dict[str, float] = {}
        probs = torch.cat(self.probs)
        for metric in self.metrics:
            if metric in ("digits_fd", "fid"):
                out[metric] = frechet_distance(self.stats.finalize(), self.reference.stats)
            elif metric == "kid":
                out[metric] = kernel_inception_distance(torch.cat(self.kept), self.reference.features)[0]
            elif metric == "is":
                out[metric] = inception_score(probs)[0]
            elif metric == "recognised":
                out[metric] = recognised_share(probs)
            elif metric in ("min_class_share", "class_entropy"):
                out[metric] = class_coverage(probs)[metric]
            elif metric == "label_agreement" and self.requested:
                out[metric] = (probs.argmax(1) == torch.cat(self.requested)).double().mean().item()
        return out


def reference_scorer(
    extractor, dataset: str, split: str, images: Tensor, metrics: list[str], batch_size: int = 256
) -> Scorer:
    """A scorer against the cached statistics of ``images`` (uint8, the split of ``dataset``)."""
    key = reference_key(dataset, split, images.shape[-1], extractor.name)
    return Scorer(extractor, reference_stats(key, extractor, lambda: image_batches(images, batch_size)), metrics)
