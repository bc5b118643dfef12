"""Optimizer settings given on the command line of a resumed run take effect.

Lightning restores the optimizers' state from the checkpoint after the model has built them from
the config, so ``fit --ckpt_path … --model.init_args.lr 0.123`` would silently train on with the
checkpoint's learning rate. This callback reads the settings the config gave the new optimizers
before the restore and, after it, puts back every one that differs from the checkpoint's: the base
learning rate (``initial_lr``, with the schedulers' ``base_lrs`` and the current rate rescaled) and
the other hyperparameters (weight decay, betas, …), and says which it applied.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

# Entries of a param group that are state, not settings.
_NOT_SETTINGS = {"params", "lr", "initial_lr"}


def _settings(group: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in group.items() if k not in _NOT_SETTINGS and isinstance(v, (int, float, tuple, bool))}
    out["initial_lr"] = group.get("initial_lr", group.get("lr"))
    return out


class ResumeOverrides(L.Callback):
    """Apply configured optimizer settings over the ones a resumed checkpoint restored."""

    def __init__(self) -> None:
        self._configured: list[list[dict[str, Any]]] | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._configured = [[_settings(g) for g in opt.param_groups] for opt in trainer.optimizers]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.ckpt_path is None or self._configured is None:
            return
        applied = []
        for i, (opt, groups) in enumerate(zip(trainer.optimizers, self._configured, strict=False)):
            for j, (group, configured) in enumerate(zip(opt.param_groups, groups, strict=False)):
                restored = _settings(group)
                for key, value in configured.items():
                    if key not in restored or _same(restored[key], value):
                        continue
                    if key == "initial_lr":
                        scale = value / restored[key] if restored[key] else 1.0
                        group["lr"] *= scale
                        group["initial_lr"] = value
                        for config in trainer.lr_scheduler_configs:
                            scheduler = config.scheduler
                            if scheduler.optimizer is opt and hasattr(scheduler, "base_lrs"):
                                scheduler.base_lrs[j] = value
                    else:
                        group[key] = value
                    applied.append(f"optimizer {i} group {j}: {key} {restored[key]!r} → {value!r}")
        if applied:
            rank_zero_info("Resumed with the configured optimizer settings: " + "; ".join(applied))
        self._configured = None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return a == b
