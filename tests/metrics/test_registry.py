"""The metric registry: built-in families register themselves, and a new family is one registration."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import torch
from torch import Tensor

from lit_genvision.metrics import registry
from lit_genvision.metrics.frechet import GaussianStats
from lit_genvision.metrics.reference import Reference
from lit_genvision.metrics.scoring import (
    METRICS,
    Scorer,
    build_scorers,
    check_sample_count,
    lower_is_better,
    parse_metrics,
    with_label_metrics,
)


def test_builtin_families_register_their_metrics():
    assert {"digits", "inception"} <= set(registry.FAMILIES)
    assert {m: METRICS[m].family for m in ("digits_fd", "recognised", "fid", "kid", "is")} == {
        "digits_fd": "digits",
        "recognised": "digits",
        "fid": "inception",
        "kid": "inception",
        "is": "inception",
    }
    assert lower_is_better("fid") and not lower_is_better("is")
    assert parse_metrics("digits_fd") == ["digits_fd", "recognised", "min_class_share", "class_entropy"]
    assert parse_metrics(["FID", "kid"]) == ["fid", "kid"]
    assert with_label_metrics(["digits_fd", "recognised"]) == ["digits_fd", "recognised", "label_agreement"]
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metrics("digits_fd,clip")


class _Constant:
    """A stand-in extractor: the mean pixel as a 1-d feature, two-class probabilities."""

    name, dim = "constant", 1

    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        feats = images.flatten(1).mean(1, keepdim=True).double()
        return feats, torch.full((len(images), 2), 0.5)


class _ToyFamily(registry.MetricFamily):
    name = "toy"

    def __init__(self) -> None:
        self.options: Mapping[str, Any] | None = None

    def build(self, datamodule, split, image_size, metrics, options) -> Scorer:
        self.options = options
        reference = Reference(
            GaussianStats(torch.zeros(1).numpy(), torch.ones(1, 1).numpy(), 10), torch.zeros(3, 1), "k"
        )
        return Scorer(_Constant(), reference, metrics)


@pytest.fixture
def toy_family() -> Iterator[_ToyFamily]:
    family = registry.register_family(_ToyFamily())
    registry.register_metric(
        "toy_mean",
        "toy",
        lower_is_better=True,
        min_samples=3,
        why="too few toys",
        compute=lambda s: float(s.stats.finalize().mu[0]),
        brings=("toy_count",),
    )
    registry.register_metric(
        "toy_count", "toy", lower_is_better=False, min_samples=1, why="-", compute=lambda s: len(s.all_probs)
    )
    yield family
    for name in ("toy_mean", "toy_count"):
        registry._METRICS.pop(name)
    registry._FAMILIES.pop("toy")


def test_a_new_family_is_one_registration(toy_family):
    metrics = parse_metrics("toy_mean")
    assert metrics == ["toy_mean", "toy_count"]
    with pytest.raises(ValueError, match="--num 2 is too few for toy_mean, which would get too few toys"):
        check_sample_count(metrics, 2)
    (scorer,) = build_scorers(metrics, object(), "test", 8, {"clip_weights": "w.pt"})
    assert toy_family.options == {"clip_weights": "w.pt"}
    scorer.update(torch.ones(2, 1, 4, 4))
    scorer.update(torch.zeros(2, 1, 4, 4))
    assert scorer.compute() == pytest.approx({"toy_mean": 0.5, "toy_count": 4.0})


def test_metric_needs_a_positive_minimum():
    with pytest.raises(ValueError, match="min_samples"):
        registry.register_metric("bad", "toy", lower_is_better=True, min_samples=0, why="-", compute=lambda s: 0.0)
    assert "bad" not in METRICS
