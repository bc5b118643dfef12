"""The Inception family: torch-fidelity's Inception-v3 (metrics/inception.py), loaded from a local
weights file, gives FID, KID and the Inception Score.

Options read from ``build``'s ``options``: ``inception_weights`` (a path, else the usual search)
and ``download_weights`` (fetch the standard file when it is missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lit_genvision.metrics.classifier_scores import inception_score
from lit_genvision.metrics.frechet import frechet_distance
from lit_genvision.metrics.inception import InceptionExtractor
from lit_genvision.metrics.kid import kernel_inception_distance
from lit_genvision.metrics.registry import MetricFamily, register_family, register_metric
from lit_genvision.metrics.scoring import INCEPTION_FEATURES, Scorer, reference_scorer, split_images


class InceptionFamily(MetricFamily):
    name = "inception"

    def build(
        self, datamodule: Any, split: str, image_size: int, metrics: list[str], options: Mapping[str, Any]
    ) -> Scorer:
        extractor = InceptionExtractor(options.get("inception_weights"), download=bool(options.get("download_weights")))
        reference = split_images(datamodule, split)
        return reference_scorer(extractor, datamodule.name, split, reference, metrics, batch_size=64)


register_family(InceptionFamily())
# The same rule as digits-FD on Inception's 2048-d features: FID below 2049 samples cannot be computed.
register_metric(
    "fid",
    "inception",
    lower_is_better=True,
    min_samples=INCEPTION_FEATURES + 1,
    why=f"a singular covariance in a {INCEPTION_FEATURES}-dimensional feature space "
    "(it needs more samples than dimensions)",
    compute=lambda s: frechet_distance(s.stats.finalize(), s.reference.stats),
)
# The unbiased MMD² divides by m(m − 1); the subset size is capped at the sample count.
register_metric(
    "kid",
    "inception",
    lower_is_better=True,
    min_samples=2,
    why="no pair of samples for the unbiased MMD² estimate",
    compute=lambda s: kernel_inception_distance(torch.cat(s.kept), s.reference.features)[0],
)
# IS averages over 10 splits; a split of one image scores exactly 1 whatever the image.
register_metric(
    "is",
    "inception",
    lower_is_better=False,
    min_samples=10,
    why="splits of a single image, whose Inception Score is trivially 1",
    compute=lambda s: inception_score(s.all_probs)[0],
)
