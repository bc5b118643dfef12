"""Classifier: the lecture's image-classification model as a LightningModule."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from lit_genvision.checks import check_float, check_int
from lit_genvision.models.base import PlatformModule


class Classifier(PlatformModule):
    """Image → class, with cross-entropy (optionally label-smoothed) and accuracy via torchmetrics.

    Args:
        net: the CNN (``SmallConvNet`` for digits, ``FastResNet`` for CIFAR-10).
        num_classes: number of classes.
        lr: learning rate (SGD with Nesterov momentum when ``optimizer`` is ``sgd``, else AdamW).
        weight_decay: weight decay.
        optimizer: ``adamw`` or ``sgd``.
        label_smoothing: cross-entropy label smoothing (0.2 in the CIFAR-10 speed runs).
        channels_last: train in channels-last memory format (faster convs on GPUs).
        one_cycle: one-cycle learning-rate schedule over the trainer's total steps.
    """

    family = "classifier"
    #: What the EMA averages: the network (not the accuracy metrics).
    ema_modules: ClassVar[tuple[str, ...]] = ("net",)
    requires = ("image", "label")

    def __init__(
        self,
        net: nn.Module,
        num_classes: int = 10,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str = "adamw",
        label_smoothing: float = 0.0,
        channels_last: bool = False,
        one_cycle: bool = False,
    ) -> None:
        super().__init__()
        self.save_config()
        if optimizer not in ("adamw", "sgd"):
            raise ValueError(f"optimizer must be adamw or sgd, got {optimizer!r}.")
        check_int("num_classes", num_classes, low=2, hint="a classifier needs at least two classes")
        check_float("lr", lr, low=0, low_open=True, hint="pass a positive learning rate such as 1e-3")
        check_float("weight_decay", weight_decay, low=0, hint="pass 0 for no weight decay")
        check_float("label_smoothing", label_smoothing, low=0, high=1, hint="pass 0 for plain cross-entropy")
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        self.num_classes, self.lr, self.weight_decay = num_classes, lr, weight_decay
        self.optimizer_name, self.label_smoothing = optimizer, label_smoothing
        self.channels_last, self.one_cycle = channels_last, one_cycle
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self(batch["image"])
        loss = F.cross_entropy(logits, batch["label"], label_smoothing=self.label_smoothing)
        self.train_acc(logits, batch["label"])
        self.log_dict({"train/loss": loss, "train/acc": self.train_acc}, prog_bar=True)
        return loss

    def _eval_step(self, batch: dict[str, Tensor], split: str, metric: MulticlassAccuracy) -> None:
        logits = self(batch["image"])
        metric(logits, batch["label"])
        loss = F.cross_entropy(logits, batch["label"])
        self.log_dict({f"{split}/loss": loss, f"{split}/acc": metric}, prog_bar=True, sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_acc)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_acc)

    def configure_optimizers(self) -> Any:
        if self.optimizer_name == "sgd":
            opt = torch.optim.SGD(
                self.net.parameters(), lr=self.lr, momentum=0.9, nesterov=True, weight_decay=self.weight_decay
            )
        else:
            opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if not self.one_cycle:
            return opt
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.lr, total_steps=int(self.trainer.estimated_stepping_batches)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
