"""Exponential moving average of the weights, kept by a callback.

θ_ema ← d·θ_ema + (1 − d)·θ after every optimiser step, with the warm-up
d = min(decay, (1 + n)/(10 + n)) over the first updates (as in TF's ExponentialMovingAverage
with num_updates). The average is saved in the checkpoint, restored on resume, swapped in for
validation and for sampling, and exported by ``lit-genvision export``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from torch import Tensor

STATE_KEY = "EMA"


class EMA(L.Callback):
    """Keep an EMA of every floating-point parameter of the LightningModule.

    Args:
        decay: the decay d (0.999 ≈ an average over the last ~1000 steps).
        warmup: ramp d up as (1 + n)/(10 + n) so early averages are not dominated by the init.
        validate_with_ema: evaluate validation with the EMA weights.
    """

    def __init__(self, decay: float = 0.999, warmup: bool = True, validate_with_ema: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}.")
        self.decay, self.warmup, self.validate_with_ema = decay, warmup, validate_with_ema
        self.num_updates = 0
        self.shadow: dict[str, Tensor] | None = None
        self._backup: dict[str, Tensor] | None = None

    @property
    def state_key(self) -> str:
        return STATE_KEY

    @staticmethod
    def _params(pl_module: L.LightningModule) -> dict[str, Tensor]:
        return {n: p for n, p in pl_module.named_parameters() if p.dtype.is_floating_point}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        params = self._params(pl_module)
        if self.shadow is None:
            self.shadow = {n: p.detach().clone() for n, p in params.items()}
        else:  # restored from a checkpoint
            self.shadow = {n: self.shadow[n].to(p.device, p.dtype) for n, p in params.items()}

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        d = self.current_decay()
        params = self._params(pl_module)
        names = list(self.shadow)
        torch._foreach_lerp_([self.shadow[n] for n in names], [params[n].detach() for n in names], 1.0 - d)
        self.num_updates += 1

    @contextmanager
    def swapped(self, pl_module: L.LightningModule) -> Iterator[None]:
        """Temporarily load the EMA weights into ``pl_module``."""
        if self.shadow is None or self._backup is not None:
            yield
            return
        params = self._params(pl_module)
        self._backup = {n: p.detach().clone() for n, p in params.items()}
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(self.shadow[n])
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(self._backup[n])
            self._backup = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.validate_with_ema and not trainer.sanity_checking:
            self._ctx = self.swapped(pl_module)
            self._ctx.__enter__()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ctx = getattr(self, "_ctx", None)
        if ctx is not None:
            ctx.__exit__(None, None, None)
            self._ctx = None

    def state_dict(self) -> dict[str, Any]:
        shadow = {n: t.detach().cpu() for n, t in (self.shadow or {}).items()}
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": shadow}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.num_updates = int(state_dict["num_updates"])
        self.shadow = dict(state_dict["shadow"])


def find_ema(trainer: L.Trainer) -> EMA | None:
    return next((cb for cb in trainer.callbacks if isinstance(cb, EMA)), None)
