"""Score sample quality while training: any registered metric (digits-FD, FID/KID with local
weights, ...) on a fixed set of generated samples, with the EMA weights, logged as ``val/<metric>``
so that ``ModelCheckpoint(monitor=...)``, ``EarlyStopping`` and sweeps have a quality objective
(DESIGN.md, "Evaluation").

The samples are drawn by ``evaluate``'s seed rule (``metrics/generation.py``): batch b from a
generator seeded from (seed, b), rank r of a DDP run drawing every world-th batch, the features
gathered on rank 0 in batch order. The score at a step is therefore the score ``evaluate`` gives
the checkpoint of that step with the same seed, sample count and batch size, on any number of
processes. Generation runs inside ``rng_preserved()`` on its own generators, so training's random
stream, and so every weight of the run, is the same with or without this callback.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from lit_genvision.callbacks.ema import find_ema
from lit_genvision.callbacks.rng import rng_preserved
from lit_genvision.metrics.frames import frame_batch
from lit_genvision.metrics.generation import gather_to_rank0, generate_batches
from lit_genvision.metrics.scoring import (
    METRICS,
    Scorer,
    build_scorers,
    check_sample_count,
    parse_metrics,
    with_label_metrics,
)


class QualityScore(L.Callback):
    """Every ``every_n_steps`` optimizer steps, generate ``num_samples`` images with the EMA weights
    (the raw weights without an EMA callback), score them with ``metrics`` against ``split`` of the
    run's data and log ``val/<metric>`` for each (and each metric's diagnostics, e.g. digits-FD's
    recognised share and class coverage).

    Args:
        metrics: comma-separated registered metric names (``lit_genvision.metrics.registry``).
        every_n_steps: optimizer steps between scores; None or 0: never during training (only
            after each validation when ``on_validation`` is set).
        num_samples: generated samples per score (at least each metric's minimum, e.g. 65 for
            digits-FD, 2049 for FID).
        seed: seed of the generated set, the same at every score so successive scores compare.
        split: the data split scored against (held out from training).
        batch_size: images generated at once (part of the seed rule: ``evaluate --batch-size``).
        steps: sampler steps (None: the model's configured sampler).
        on_validation: also score at the end of every validation.
        inception_weights: a local Inception-v3 weights file (FID, KID, IS).
    """

    def __init__(
        self,
        metrics: str = "digits_fd",
        every_n_steps: int | None = 1000,
        num_samples: int = 500,
        seed: int = 0,
        split: str = "test",
        batch_size: int = 250,
        steps: int | None = None,
        on_validation: bool = False,
        inception_weights: str | None = None,
    ) -> None:
        if every_n_steps is not None and every_n_steps < 0:
            raise ValueError(f"every_n_steps must be positive (or None), got {every_n_steps}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.metrics = parse_metrics(metrics)
        check_sample_count(self.metrics, num_samples, "num_samples")
        self.every_n_steps, self.num_samples, self.seed, self.split = every_n_steps, num_samples, seed, split
        self.batch_size, self.steps, self.on_validation = batch_size, steps, on_validation
        self.options: dict[str, Any] = {"inception_weights": inception_weights, "download_weights": False}
        self._scorers: list[Scorer] | None = None
        self._last_step = -1
        #: the values of the last score (on every rank), for inspection
        self.last: dict[str, float] = {}

    @property
    def monitor(self) -> str:
        """The key of the first metric, for ``ModelCheckpoint(monitor=...)`` / ``EarlyStopping``."""
        return f"val/{self.metrics[0]}"

    @property
    def mode(self) -> str:
        """``min`` or ``max``: the direction of the first metric."""
        return "min" if METRICS[self.metrics[0]].lower_is_better else "max"

    def applies(self, trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
        """Whether this run can be scored (a generative model); subclasses narrow it."""
        return hasattr(pl_module, "sample") and hasattr(pl_module, "sample_cond")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        # Under gradient accumulation several batches end on the same optimizer step: score once.
        if not self.every_n_steps or step == 0 or step % self.every_n_steps or step == self._last_step:
            return
        if self.applies(trainer, pl_module):
            self.score(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.on_validation and not trainer.sanity_checking and self.applies(trainer, pl_module):
            self.score(trainer, pl_module)

    def _build(self, trainer: L.Trainer, pl_module: L.LightningModule) -> list[Scorer]:
        if self._scorers is None:
            metrics = with_label_metrics(self.metrics) if getattr(pl_module, "num_classes", None) else self.metrics
            image_size = pl_module.image_shape[-1]

            def build() -> list[Scorer]:
                return build_scorers(metrics, trainer.datamodule, self.split, image_size, self.options)

            # Rank 0 computes (and caches) the reference statistics; the others then read the cache.
            scorers = build() if trainer.is_global_zero else None
            trainer.strategy.barrier("quality_score_reference")
            self._scorers = scorers if scorers is not None else build()
        return self._scorers

    @torch.no_grad()
    def score(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        """Score the current (EMA) weights now and log the values; returns them on every rank."""
        self._last_step = trainer.global_step
        rank, world = trainer.global_rank, trainer.world_size
        ema = find_ema(trainer)
        parts: list[tuple[int, list[tuple[Tensor, Tensor]], Tensor | None]] = []
        averaged = ema.swapped(pl_module) if ema is not None else nullcontext()
        with rng_preserved(), averaged, pl_module.eval_mode(pl_module):
            # Inside rng_preserved too: a first use may train the digits classifier (seeded) or set data up.
            scorers = self._build(trainer, pl_module)
            batches = generate_batches(
                pl_module,
                self.num_samples,
                batch_size=self.batch_size,
                seed=self.seed,
                steps=self.steps,
                rank=rank,
                world=world,
            )
            for b, images, labels, prompts in batches:
                frames, labels, prompts = frame_batch(images, labels, prompts)  # a video: each frame one sample
                parts.append((b, [s.extractor(frames) for s in scorers], labels, prompts))
        parts = gather_to_rank0(parts)
        values: dict[str, float] = {}
        if trainer.is_global_zero:
            fresh = [s.fresh() for s in scorers]
            for _, extracted, labels, prompts in sorted(parts, key=lambda p: p[0]):
                for scorer, (feats, probs) in zip(fresh, extracted, strict=True):
                    scorer.add(feats, probs, labels, prompts)
            values = {k: v for s in fresh for k, v in s.compute().items()}
        values = trainer.strategy.broadcast(values, src=0)
        self.last = dict(values)
        self._log(trainer, values)
        return values

    def _log(self, trainer: L.Trainer, values: dict[str, float]) -> None:
        logged = {f"val/{k}": v for k, v in values.items()}
        # callback_metrics is what ModelCheckpoint(monitor=...) and EarlyStopping read (on every rank).
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in logged.items()})
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(logged, step=trainer.global_step)
            rank_zero_info(f"step {trainer.global_step}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
