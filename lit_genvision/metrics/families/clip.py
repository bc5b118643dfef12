"""The CLIP family: CLIP score of generated images against the prompts they were asked to show.

The CLIP network comes from the caller (``evaluate --clip CKPT`` loads it) as the ``clip`` extractor
option, a `CLIPExtractor`; this module never loads a LightningModule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lit_genvision.metrics.clip_score import CLIPExtractor
from lit_genvision.metrics.registry import MetricFamily, register_family, register_metric
from lit_genvision.metrics.scoring import Scorer


class CLIPFamily(MetricFamily):
    name = "clip"

    def build(
        self, datamodule: Any, split: str, image_size: int, metrics: list[str], options: Mapping[str, Any]
    ) -> Scorer:
        extractor = options.get("clip")
        if not isinstance(extractor, CLIPExtractor):
            raise ValueError(
                "clip_score needs a CLIP checkpoint to score with; pass --clip PATH "
                "(lit-genvision fit --config configs/clip/digits.yaml writes one)."
            )
        return Scorer(extractor, None, metrics)


def _clip_score(s: Scorer) -> float | None:
    """The mean CLIP-S of the samples against the prompts they were generated from (a text-to-image
    model), else against their class's prompts (a class-conditional one); None for an unconditional one."""
    if not s.prompts and not s.requested:
        return None  # an unconditional generator was asked for no prompt
    embeddings = torch.cat(s.kept)
    if s.prompts:
        n = min(len(embeddings), len(s.prompts))
        return s.extractor.prompt_scores(embeddings[:n], s.prompts[:n]).mean().item()
    labels = torch.cat(s.requested)[: len(embeddings)]
    return s.extractor.label_scores(embeddings, labels).mean().item()


register_family(CLIPFamily())
register_metric(
    "clip_score",
    "clip",
    lower_is_better=False,
    min_samples=1,
    why="no image to score",
    compute=_clip_score,
)
