"""digits-FVD and the motion checks on real moving digits (issue 31): does the measure sit at its floor for real
clips, and does it fail clips that a person would reject?

    python benchmarks/video_metrics.py

Trains (or loads from the cache) the digits-FVD feature network on the training clips, then scores against the
real **train** clips (5,000): the real **test** clips (1,000; test digits, held-out wordings) — the floor; the
same test clips with their frames shuffled (one random order per clip); played backwards; frozen (frame 0
repeated). For each: digits-FVD, the mean centroid speed against the real train clips' (speed ratio), the share
of one-digit clips whose centroid moves in the caption's direction (motion agreement), and the share whose
digits-classifier decision stays the same in every frame (identity consistency).

Writes benchmarks/results/video_metrics.json.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save  # noqa: E402

from lit_genvision.data import MovingDigitsDataModule, motion_phrases  # noqa: E402
from lit_genvision.data.base import to_unit_range  # noqa: E402
from lit_genvision.metrics.digits import load_digits_extractor  # noqa: E402
from lit_genvision.metrics.frechet import FeatureStats, frechet_distance  # noqa: E402
from lit_genvision.metrics.video_digits import (  # noqa: E402
    frame_identities,
    load_video_extractor,
    mean_speed,
    net_directions,
)


def fvd_stats(extractor, clips: torch.Tensor):
    stats = FeatureStats(extractor.dim)
    for batch in clips.split(250):
        stats.update(extractor(batch)[0])
    return stats.finalize()


def main() -> None:
    start = time.perf_counter()
    extractor = load_video_extractor()
    print(f"{extractor.name}: test accuracy (digit × direction, 40 classes) {extractor.test_accuracy:.1%}")
    digits = load_digits_extractor(16)
    dm = MovingDigitsDataModule(seed=0)
    train, test = dm.split("train").fields, dm.split("test").fields
    reference = fvd_stats(extractor, to_unit_range(train["video"]))
    real_speed = mean_speed(to_unit_range(train["video"])).mean().item()
    clips = to_unit_range(test["video"])
    g = torch.Generator().manual_seed(0)
    order = torch.stack([torch.randperm(clips.shape[2], generator=g) for _ in range(len(clips))])  # (N, T)
    variants = {
        "real test clips": clips,
        "frames shuffled": clips[torch.arange(len(clips))[:, None], :, order].transpose(1, 2),
        "played backwards": clips.flip(2),
        "frozen (frame 0 repeated)": clips[:, :, :1].expand_as(clips),
    }
    single = test["digit_labels"][:, 1] < 0
    said = [motion_phrases(t) for t in test["text"]]
    rows = {}
    for name, v in variants.items():
        moved = net_directions(v[single])
        wanted = [s[0][1] for s, one in zip(said, single.tolist(), strict=True) if one]
        ids = frame_identities(v[single], lambda w: digits(w)[1])
        rows[name] = {
            "digits_fvd": frechet_distance(fvd_stats(extractor, v), reference),
            "speed_ratio": mean_speed(v).mean().item() / real_speed,
            "motion_agreement": sum(a == b for a, b in zip(moved, wanted, strict=True)) / len(wanted),
            "identity_consistency": (ids == ids[:, :1]).all(1).double().mean().item(),
        }
        print(name, {k: round(x, 3) for k, x in rows[name].items()})
    save(
        "video_metrics",
        {
            "extractor": extractor.name, "extractor_test_accuracy": extractor.test_accuracy,
            "reference": "moving digits train clips (5,000)", "scored": "moving digits test clips (1,000)",
            "one_digit_test_clips": int(single.sum()), "real_train_speed_px_per_frame": real_speed,
            "variants": rows, "seconds": time.perf_counter() - start,
        },
    )  # fmt: skip


if __name__ == "__main__":
    main()
