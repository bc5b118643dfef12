"""Watch for mode collapse while training on digits: at each validation, score a fixed set of
samples and log digits-FD, the recognised share and class coverage (DESIGN.md, "Evaluation").

A thin wrapper of :class:`~lit_genvision.callbacks.scoring.QualityScore` (``digits_fd`` after each
validation) that skips runs on other data sets.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from lit_genvision.callbacks.scoring import QualityScore


class ClassCoverage(QualityScore):
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
        super().__init__("digits_fd", every_n_steps=None, num_samples=num, seed=seed, on_validation=True)
        self.num = num
        self._skip = False

    def applies(self, trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
        if self._skip or not super().applies(trainer, pl_module):
            return False
        if getattr(trainer.datamodule, "name", None) != "digits":
            rank_zero_info("ClassCoverage watches digits runs only; skipping it for this data set.")
            self._skip = True
            return False
        return True
