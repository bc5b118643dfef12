"""The digits family: the project's own digits classifier (metrics/digits.py) gives digits-FD and
the classifier diagnostics (recognised share, class coverage, label agreement). On moving digits it scores
frame by frame against the split's frames (per-frame digits-FD)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lit_genvision.metrics.classifier_scores import class_coverage, recognised_share
from lit_genvision.metrics.digits import load_digits_extractor
from lit_genvision.metrics.frechet import frechet_distance
from lit_genvision.metrics.registry import MetricFamily, register_family, register_metric
from lit_genvision.metrics.scoring import DIGITS_FEATURES, DIGITS_METRICS, Scorer, reference_scorer, split_images

#: the classifier's resolution (generated images are resized to it)
CLASSIFIER_SIZE = 16


class DigitsFamily(MetricFamily):
    name = "digits"

    def build(
        self, datamodule: Any, split: str, image_size: int, metrics: list[str], options: Mapping[str, Any]
    ) -> Scorer:
        dataset = getattr(datamodule, "name", None)
        if dataset not in ("digits", "moving_digits"):
            raise ValueError(
                f"digits-FD scores generators of the digits set (or of moving digits, frame by frame); this run "
                f"trained on {dataset}."
            )
        reference = split_images(datamodule, split)
        return reference_scorer(load_digits_extractor(CLASSIFIER_SIZE), datamodule.name, split, reference, metrics)


def _label_agreement(s: Scorer) -> float | None:
    if not s.requested:
        return None
    import torch

    return (s.all_probs.argmax(1) == torch.cat(s.requested)).double().mean().item()


register_family(DigitsFamily())
_NO_IMAGES = "no images to classify"
# FeatureStats.finalize refuses n ≤ D: the covariance of n samples has rank ≤ n − 1 < D.
register_metric(
    "digits_fd",
    "digits",
    lower_is_better=True,
    min_samples=DIGITS_FEATURES + 1,
    why=f"a singular covariance in a {DIGITS_FEATURES}-dimensional feature space "
    "(it needs more samples than dimensions)",
    compute=lambda s: frechet_distance(s.stats.finalize(), s.reference.stats),
    brings=DIGITS_METRICS[1:],
)
register_metric(
    "recognised",
    "digits",
    lower_is_better=False,
    min_samples=1,
    why=_NO_IMAGES,
    compute=lambda s: recognised_share(s.all_probs),
    with_labels=("label_agreement",),  # a conditional digits model: does it draw the digit asked for?
)
for _name in ("min_class_share", "class_entropy"):
    register_metric(
        _name,
        "digits",
        lower_is_better=False,
        min_samples=1,
        why=_NO_IMAGES,
        compute=lambda s, _name=_name: class_coverage(s.all_probs)[_name],
    )
register_metric(
    "label_agreement", "digits", lower_is_better=False, min_samples=1, why=_NO_IMAGES, compute=_label_agreement
)
