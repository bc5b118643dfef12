"""The moving-digits family: digits-FVD, the Fréchet distance in the features of a small 3-D CNN trained on moving
digits (metrics/video_digits.py), whole clips against the split's clips — the video analogue of digits-FD."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lit_genvision.metrics.frechet import frechet_distance
from lit_genvision.metrics.registry import MetricFamily, register_family, register_metric
from lit_genvision.metrics.scoring import Scorer, reference_scorer, split_images
from lit_genvision.metrics.video_digits import FEATURES, load_video_extractor


class DigitsVideoFamily(MetricFamily):
    name = "digits_video"

    def build(
        self, datamodule: Any, split: str, image_size: int, metrics: list[str], options: Mapping[str, Any]
    ) -> Scorer:
        dataset = getattr(datamodule, "name", None)
        if dataset != "moving_digits":
            raise ValueError(f"digits-FVD scores generators of moving digits; this run trained on {dataset}.")
        reference = split_images(datamodule, split)  # (N, 1, T, H, W) clips
        return reference_scorer(load_video_extractor(), datamodule.name, split, reference, metrics)


register_family(DigitsVideoFamily())
register_metric(
    "digits_fvd",
    "digits_video",
    lower_is_better=True,
    min_samples=FEATURES + 1,
    why=f"a singular covariance in a {FEATURES}-dimensional feature space (it needs more clips than dimensions)",
    compute=lambda s: frechet_distance(s.stats.finalize(), s.reference.stats),
)
