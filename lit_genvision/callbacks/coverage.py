"""Watch for mode collapse while training on digits: sample with a fixed seed at each validation
and log digits-FD, the recognised share and class coverage (DESIGN.md, "Evaluation")."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from lit_genvision.callbacks.ema import find_ema
from lit_genvision.callbacks.rng import rng_preserved
from lit_genvision.metrics.digits import load_digits_extractor
from lit_genvision.metrics.scoring import DIGITS_METRICS, Scorer, reference_scorer


class ClassCoverage(L.Callback):
    """At the end of every validation, score ``num`` samples of the (EMA) model against the digits
    test split and log ``val/digits_fd``, ``val/recognised``, ``val/min_class_share`` and
    ``val/class_entropy``. Does nothing (and says so once) on other data sets.

    Args:
        num: samples per check (more than 64, the feature dimension).
        seed: seed of the noise, fixed so successive checks are comparable.
    """

    def __init__(self, num: int = 500, seed: int = 0) -> None:
        if num <= 64:
            raise ValueError(f"ClassCoverage needs more than 64 samples for digits-FD, got num={num}.")
        self.num, self.seed = num, seed
        self._scorer: Scorer | None = None
        self._skip = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self._skip or not hasattr(pl_module, "sample"):
            return
        dm = trainer.datamodule
        if getattr(dm, "name", None) != "digits":
            rank_zero_info("ClassCoverage watches digits runs only; skipping it for this data set.")
            self._skip = True
            return
        if self._scorer is None:
            self._scorer = reference_scorer(
                load_digits_extractor(16), "digits", "test", dm.split("test").images, list(DIGITS_METRICS)
            )
        scorer = Scorer(self._scorer.extractor, self._scorer.reference, self._scorer.metrics)
        g = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        ema = find_ema(trainer)
        with rng_preserved(), ema.swapped(pl_module) if ema is not None else torch.no_grad():
            for start in range(0, self.num, 250):
                n = min(250, self.num - start)
                cond = pl_module.sample_cond(n, None, offset=start)  # labels i mod K over all num samples
                scorer.update(pl_module.sample(n, cond=cond, generator=g).cpu())
        values = scorer.compute()
        trainer.callback_metrics.update({f"val/{k}": torch.tensor(v) for k, v in values.items()})
        for logger in trainer.loggers:
            logger.log_metrics({f"val/{k}": v for k, v in values.items()}, step=trainer.global_step)
        pl_module.print(
            f"step {trainer.global_step}: digits-FD {values['digits_fd']:.2f}, recognised {values['recognised']:.2f}, "
            f"min class share {values['min_class_share']:.3f}"
        )
