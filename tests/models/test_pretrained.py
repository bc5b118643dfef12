"""models/pretrained.py: rebuild from the saved config with the EMA (buffers included), and a frozen
part inside a new model: ∂L/∂θ_part = 0, no optimiser state, no EMA, eval mode, path + hash recorded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters_context
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lit_genvision.callbacks.ema import EMA
from lit_genvision.checkpoint_io import CheckpointError
from lit_genvision.models import Classifier, load_model, load_pretrained, record_pretrained
from lit_genvision.models.pretrained import PRETRAINED_KEY, trainable_parameters
from lit_genvision.nn import FastResNet

NET = {"in_channels": 1, "num_classes": 4, "widths": [4, 8, 8], "prep": 4}
ROOT = Path(__file__).resolve().parents[2]


class Digitsish(Dataset):
    def __init__(self, n: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.rand((n, 1, 8, 8), generator=g) * 2 - 1, torch.randint(0, 4, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"image": self.x[i], "label": self.y[i]}


def fit(model: L.LightningModule, steps: int, *callbacks: L.Callback) -> L.Trainer:
    trainer = L.Trainer(
        max_steps=steps,
        callbacks=list(callbacks),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
    )
    trainer.fit(model, DataLoader(Digitsish(), batch_size=8))
    return trainer


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory) -> Path:
    """A Classifier with BatchNorm (FastResNet), trained 3 steps with an EMA, its config saved as the CLI saves it."""
    torch.manual_seed(0)
    config = {
        "_class_path": "lit_genvision.models.Classifier",
        "net": {"class_path": "lit_genvision.nn.FastResNet", "init_args": NET},
        "num_classes": 4,
        "lr": 0.05,
    }
    with _given_hyperparameters_context(config, "lightning.pytorch.cli.instantiate_module"):
        model = Classifier(FastResNet(**NET), num_classes=4, lr=0.05)
    trainer = fit(model, 3, EMA(decay=0.9))
    path = tmp_path_factory.mktemp("pretrained") / "clf.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_load_model_loads_the_ema_with_its_buffers(classifier_ckpt, tmp_path):
    ckpt = torch.load(classifier_ckpt, weights_only=True)
    shadow = ckpt["callbacks"]["EMA"]["shadow"]
    assert "net.body.0.1.running_mean" in shadow
    model = load_model(classifier_ckpt)
    assert model.ema_loaded and not model.training
    state = model.state_dict()
    for name, value in shadow.items():
        assert torch.equal(state[name], value), name
    assert not torch.equal(shadow["net.body.0.1.running_mean"], ckpt["state_dict"]["net.body.0.1.running_mean"])
    raw = load_model(classifier_ckpt, use_ema=False).state_dict()
    for name, value in ckpt["state_dict"].items():
        assert torch.equal(raw[name], value), name

    # an older checkpoint whose EMA holds parameters only still loads (buffers from the state dict)
    ckpt["callbacks"]["EMA"]["shadow"] = {k: v for k, v in shadow.items() if "running" not in k and "num_" not in k}
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    assert torch.equal(load_model(old).net.body[0][1].running_mean, ckpt["state_dict"]["net.body.0.1.running_mean"])

    # a shadow naming a tensor the model lacks is one sentence
    ckpt["callbacks"]["EMA"]["shadow"] = {"discriminator.w": torch.zeros(1)}
    torch.save(ckpt, old)
    with pytest.raises(CheckpointError, match=r"lacks \(e\.g\. 'discriminator\.w'\)"):
        load_model(old)


def test_load_model_frozen_and_the_old_import_path(classifier_ckpt):
    from lit_genvision.experiments import checkpoints

    assert checkpoints.load_model is load_model
    model = load_model(classifier_ckpt, frozen=True)
    model.train()
    assert not model.training and not model.net.body[0][1].training
    assert not any(p.requires_grad for p in model.parameters())


class Owner(L.LightningModule):
    """A tiny model built on a frozen classifier: a linear head on its logits."""

    def __init__(self, ckpt: str) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.first, info = load_pretrained(ckpt)
        record_pretrained(self, "first", info)
        self.head = nn.Linear(4, 1)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return (self.head(self.first(batch["image"])) - 1).square().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(trainable_parameters(self), lr=0.1)


def test_frozen_pretrained_part_gets_no_gradient_state_or_ema(classifier_ckpt, tmp_path):
    model = Owner(str(classifier_ckpt))
    before = {k: v.clone() for k, v in model.first.state_dict().items()}
    head = model.head.weight.clone()
    ema = EMA()
    trainer = fit(model, 2, ema)

    frozen = list(model.first.parameters())
    assert all(p.grad is None and not p.requires_grad for p in frozen)
    (opt,) = trainer.optimizers
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not in_opt & {id(p) for p in frozen} and in_opt == {id(p) for p in model.head.parameters()}
    assert all(id(p) in in_opt for p in opt.state)  # optimiser state only for the head
    assert not model.first.training  # eval for good: BatchNorm statistics did not move
    for k, v in model.first.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.equal(model.head.weight, head)  # the head did train
    assert set(ema.shadow) == {"head.weight", "head.bias"}  # no EMA of the frozen part

    digest = hashlib.sha256(classifier_ckpt.read_bytes()).hexdigest()
    record = model.hparams[PRETRAINED_KEY]["first"]
    assert record["path"] == str(classifier_ckpt) and record["sha256"] == digest
    assert record["class"] == "lit_genvision.models.classifier.Classifier" and record["config"]["num_classes"] == 4
    saved = tmp_path / "owner.ckpt"
    trainer.save_checkpoint(saved)
    hparams = torch.load(saved, weights_only=True)["hyper_parameters"]
    assert hparams[PRETRAINED_KEY]["first"]["sha256"] == digest


def test_models_never_import_experiments_or_cli():
    for path in (ROOT / "lit_genvision" / "models").glob("*.py"):
        text = path.read_text()
        assert "lit_genvision.experiments" not in text and "lit_genvision.cli" not in text, path.name
