"""The metric registry: every metric and every extractor family registers itself.

A family (an extractor with its reference statistics: the digits classifier, Inception-v3, later
CLIP) is one module in :mod:`lit_genvision.metrics.families`. On import it calls
:func:`register_family` with a :class:`MetricFamily` (how to build its scorer) and
:func:`register_metric` once per metric it computes (direction, fewest samples, how to compute it
from the scorer's accumulated features). Nothing else names a family: ``evaluate``, the training
callbacks and the leaderboard look metrics up here, so a new metric family is one new file.

The family modules are imported the first time the registry is read (:data:`METRICS` or
:data:`FAMILIES`), which keeps this module free of imports of the extractors.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from lit_genvision.metrics.scoring import Scorer

V = TypeVar("V")


@dataclass(frozen=True)
class Metric:
    """A metric's registration.

    Args:
        name: the metric's name (``--metrics``, ``val/<name>``, the results store).
        family: the extractor family whose features it is computed from.
        lower_is_better: its direction (leaderboard order, early stopping mode).
        min_samples: the fewest generated samples it can be computed from (checked before
            anything is sampled) ...
        why: ... and what a smaller sample would give, in words.
        compute: the value from a :class:`~lit_genvision.metrics.scoring.Scorer` that has seen
            every generated batch; None when it does not apply (e.g. no requested labels).
        brings: metrics added whenever this one is asked for (its diagnostics).
        with_labels: metrics added when the generator is class-conditional.
    """

    name: str
    family: str
    lower_is_better: bool
    min_samples: int
    why: str
    compute: Callable[[Scorer], float | None] = field(compare=False, repr=False)
    brings: tuple[str, ...] = ()
    with_labels: tuple[str, ...] = ()


class MetricFamily(ABC):
    """An extractor family: builds the scorer of its metrics against a data split's reference."""

    #: the family's name, as :attr:`Metric.family` refers to it
    name: str

    @abstractmethod
    def build(
        self, datamodule: Any, split: str, image_size: int, metrics: list[str], options: Mapping[str, Any]
    ) -> Scorer:
        """A scorer of ``metrics`` (all of this family) for generated images of ``image_size``
        pixels against the ``split`` of ``datamodule``. ``options`` holds extractor options
        (e.g. ``inception_weights``, ``download_weights``); a family ignores those it does not use."""


class _Table(Mapping[str, V]):
    """A read-only view of a registry dict that loads the family modules on first read."""

    def __init__(self, items: dict[str, V]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> V:
        load_families()
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        load_families()
        return iter(self._items)

    def __len__(self) -> int:
        load_families()
        return len(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)})"


_METRICS: dict[str, Metric] = {}
_FAMILIES: dict[str, MetricFamily] = {}
_loaded = False

#: metric name → :class:`Metric`, in registration order
METRICS: Mapping[str, Metric] = _Table(_METRICS)
#: family name → :class:`MetricFamily`
FAMILIES: Mapping[str, MetricFamily] = _Table(_FAMILIES)


def register_family(family: MetricFamily) -> MetricFamily:
    """Register an extractor family (re-registering a name replaces it)."""
    _FAMILIES[family.name] = family
    return family


def register_metric(
    name: str,
    family: str,
    *,
    lower_is_better: bool,
    min_samples: int,
    why: str,
    compute: Callable[[Scorer], float | None],
    brings: tuple[str, ...] = (),
    with_labels: tuple[str, ...] = (),
) -> Metric:
    """Register a metric computed from ``family``'s features (re-registering a name replaces it)."""
    if min_samples < 1:
        raise ValueError(f"min_samples of {name} must be at least 1, got {min_samples}.")
    metric = Metric(name, family, lower_is_better, min_samples, why, compute, brings, with_labels)
    _METRICS[name] = metric
    return metric


def load_families() -> None:
    """Import every module of :mod:`lit_genvision.metrics.families` once (each registers itself)."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # set first: a family module that reads the registry while importing does not recurse
    try:
        from lit_genvision.metrics import families

        for info in pkgutil.iter_modules(families.__path__, families.__name__ + "."):
            importlib.import_module(info.name)
    except BaseException:
        _loaded = False
        raise
