"""Reference statistics, computed once per (dataset, split, resolution, extractor) and cached."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lit_genvision.data.base import to_unit_range
from lit_genvision.metrics.digits import cache_dir
from lit_genvision.metrics.frames import as_frames, takes_video
from lit_genvision.metrics.frechet import FeatureStats, GaussianStats

Extractor = Callable[[Tensor], tuple[Tensor, Tensor]]
KID_FEATURES = 10_000  # reference features kept for KID


@dataclass
class Reference:
    stats: GaussianStats
    features: Tensor  # up to KID_FEATURES rows, for KID
    key: str


def image_batches(images: Tensor, batch_size: int) -> Iterator[Tensor]:
    """uint8 images (or videos) → float batches in [-1, 1]."""
    for i in range(0, len(images), batch_size):
        yield to_unit_range(images[i : i + batch_size])


def reference_key(dataset: str, split: str, image_size: int, extractor_name: str) -> str:
    return f"{dataset}-{split}-{image_size}px-{extractor_name}"


def extract(extractor, batches: Iterable[Tensor]) -> tuple[FeatureStats, Tensor, Tensor]:
    """Run ``extractor`` over batches of images, or of videos frame by frame (`as_frames`; whole clips for an
    extractor that ``takes_video``), in [-1, 1]: streaming stats, kept features, probabilities."""
    stats = FeatureStats(extractor.dim)
    kept, probs = [], []
    n_kept = 0
    for images in batches:
        feats, p = extractor(images if takes_video(extractor) else as_frames(images))  # (N·T, D), (N·T, K) for videos
        stats.update(feats)
        if n_kept < KID_FEATURES:
            kept.append(feats[: KID_FEATURES - n_kept].float())
            n_kept += len(kept[-1])
        probs.append(p.float())
    return stats, torch.cat(kept), torch.cat(probs)


def reference_stats(key: str, extractor, batches: Callable[[], Iterable[Tensor]]) -> Reference:
    """Load the cached statistics for ``key`` or compute them from ``batches()`` and cache them."""
    path = cache_dir() / "refstats" / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return Reference(GaussianStats(z["mu"], z["sigma"], int(z["n"])), torch.from_numpy(z["features"]), key)
        except Exception:  # damaged cache: recompute
            path.unlink(missing_ok=True)
    stats, feats, _ = extract(extractor, batches())
    ref = Reference(stats.finalize(), feats, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, mu=ref.stats.mu, sigma=ref.stats.sigma, n=ref.stats.n, features=feats.numpy())
    tmp.replace(path)
    return ref
