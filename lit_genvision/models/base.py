"""What every LightningModule of the platform shares: the batch-key check at setup, a record of
the family in each checkpoint, and the ``sample`` protocol of generative models."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from torch import Tensor

CHECKPOINT_KEY = "lit_genvision"


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class PlatformModule(L.LightningModule):
    """Base of every model: declares the batch keys it needs and records its family."""

    family: ClassVar[str] = "base"
    #: Batch keys the model reads; checked against the data module's ``provides`` at setup.
    requires: ClassVar[tuple[str, ...]] = ("image",)

    def save_config(self) -> None:
        """Save the constructor arguments as hyperparameters when they are a plain config.

        Through ``lit-genvision fit`` the arguments are the YAML's ``class_path``/``init_args``
        dicts, so the checkpoint can rebuild the model with ``weights_only=True``. A model built
        by hand in Python holds live objects instead; those are not pickled into the checkpoint.
        """
        frame = inspect.currentframe().f_back  # the subclass __init__
        if _given_hyperparameters.get() is not None:
            self.save_hyperparameters(frame=frame)
        else:
            args = inspect.getargvalues(frame).locals
            objects = [
                k
                for k in inspect.signature(type(self).__init__).parameters
                if k != "self" and not isinstance(args.get(k), (int, float, str, bool, list, tuple, type(None)))
            ]
            self.save_hyperparameters(ignore=objects, frame=frame)

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        provided = getattr(datamodule, "provides", None)
        if provided is None:
            return
        missing = [k for k in self.requires if k not in provided]
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs batch key(s) {', '.join(missing)}, which {type(datamodule).__name__} "
                f"does not provide (it provides {', '.join(provided)}); choose a data module that has them."
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {"family": self.family, "class": qualified_name(type(self))}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        info = checkpoint.get(CHECKPOINT_KEY)
        if info is None:
            raise ValueError(
                "this checkpoint was not written by lit-genvision (no 'lit_genvision' entry); "
                "pass a checkpoint saved by `lit-genvision fit`."
            )
        if info["class"] != qualified_name(type(self)):
            raise ValueError(
                f"the checkpoint holds a {info['class']} ({info['family']} family) but the config builds a "
                f"{qualified_name(type(self))}; resume with the config of the model that wrote the checkpoint."
            )


class GenerativeModel(PlatformModule):
    """A model that generates images through one protocol, used by grids, evaluation and the leaderboard."""

    def sample(
        self, num: int, *, cond: dict | None = None, steps: int | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """``num`` images (num, C, H, W) in [-1, 1]."""
        raise NotImplementedError

    def sampling_protocol(self, steps: int | None = None, sampler: object | None = None) -> tuple[str, int]:
        """(sampler description, network evaluations per image) for ``sample`` with these settings."""
        return "direct", 1
