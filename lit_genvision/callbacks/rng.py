"""Save and restore every random-number generator with the checkpoint, so a resumed run draws
the same noise and timesteps an uninterrupted run would have drawn; and keep validation off the
training stream of random numbers, so when (and whether) validation runs changes no weight."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), numpy and Python RNG states, as tensors and plain values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(state["python"])


@contextmanager
def rng_preserved(seed: int | None = None) -> Iterator[None]:
    """Run the block on its own random numbers (seeded with ``seed`` when given) and give every
    generator back its state afterwards, so the block consumes nothing of the caller's stream."""
    saved = rng_state()
    if seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
    try:
        yield
    finally:
        set_rng_state(saved)


class RNGState(L.Callback):
    """Stores the torch (CPU and CUDA), numpy and Python RNG states in the checkpoint, and runs
    every validation on its own generators seeded with ``validation_seed``: the validation loss
    is computed on the same noise every time (comparable across epochs), and the training stream
    continues afterwards exactly where it was, as if no validation had run.

    Args:
        validation_seed: seed of the random numbers validation draws (noise levels, noise).
    """

    def __init__(self, validation_seed: int = 1234) -> None:
        self.validation_seed = validation_seed
        self._saved: dict[str, Any] | None = None

    @property
    def state_key(self) -> str:
        return "RNGState"

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._saved = rng_state()
        torch.manual_seed(self.validation_seed + trainer.global_rank)
        np.random.seed(self.validation_seed)
        random.seed(self.validation_seed)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._saved is not None:
            set_rng_state(self._saved)
            self._saved = None

    def state_dict(self) -> dict[str, Any]:
        # A checkpoint written during validation stores the training stream, not validation's.
        return self._saved if self._saved is not None else rng_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        set_rng_state(state_dict)
