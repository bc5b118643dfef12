"""A real training step of GANModel under a Trainer: each side updates only while the other is frozen."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lit_genvision.data import DigitsDataModule
from lit_genvision.models import GANModel
from lit_genvision.nn import DCGANDiscriminator, DCGANGenerator


class Recorder(L.Callback):
    """Snapshots parameters and grads around the two optimiser steps of the first batch."""

    def __init__(self) -> None:
        self.events = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx:
            return
        opt_g, opt_d = (o.optimizer for o in pl_module.optimizers())
        self._wrap(opt_d, "d", pl_module)
        self._wrap(opt_g, "g", pl_module)

    def _wrap(self, opt, side, module):
        step = opt.step

        def recorded(*args, **kwargs):
            snap = lambda m: [p.detach().clone() for p in m.parameters()]  # noqa: E731
            grads = lambda m: [None if p.grad is None else p.grad.clone() for p in m.parameters()]  # noqa: E731
            frozen = module.generator if side == "d" else module.discriminator
            before = (snap(frozen), grads(frozen))
            out = step(*args, **kwargs)
            self.events.append((side, before, (snap(frozen), grads(frozen))))
            opt.step = step
            return out

        opt.step = recorded


@pytest.mark.parametrize("loss, gp, norm", [("non_saturating", 0.0, "batch"), ("wasserstein", 10.0, "layer")])
def test_frozen_network_neither_moves_nor_accumulates_grads(tmp_path, loss, gp, norm):
    torch.manual_seed(0)
    model = GANModel(
        DCGANGenerator(16, 8, 1, width=8), DCGANDiscriminator(1, 8, width=8, norm=norm), loss=loss, gp_weight=gp
    )
    rec = Recorder()
    trainer = L.Trainer(
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[rec],
        limit_val_batches=0,
    )
    trainer.fit(model, DigitsDataModule(image_size=8, batch_size=16))
    assert [e[0] for e in rec.events] == ["d", "g"]
    for side, (p0, g0), (p1, g1) in rec.events:
        for a, b in zip(p0, p1, strict=True):
            assert torch.equal(a, b), f"frozen network moved during the {side} step"
        for a, b in zip(g0, g1, strict=True):
            assert (a is None and b is None) or torch.equal(a, b), f"frozen network got grads in the {side} step"
        assert all(g is None for g in g1), f"frozen network holds grads during the {side} step"
