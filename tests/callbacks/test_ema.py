"""EMA: the arithmetic against θ_ema ← d·θ_ema + (1 − d)·θ, d = min(decay, (1 + n)/(10 + n)), once per
optimiser step, over what the model samples with (generator, not discriminator), buffers included."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar

import lightning as L
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lit_genvision.callbacks.ema import EMA, STATE_KEY, copy_shadow_into, mark_frozen
from lit_genvision.models import GANModel
from lit_genvision.nn import DCGANDiscriminator, DCGANGenerator
from lit_genvision.nn.renames import layer_renames, rename_on_load


class Images(Dataset):
    """64 random 'images' in [-1, 1] as batch dicts, every batch of 8 the same (so a run resumed
    mid-epoch sees the data the uninterrupted run saw)."""

    def __init__(self, n: int = 64, shape: tuple[int, ...] = (1, 8, 8)) -> None:
        self.n, self.x = n, torch.rand((8, *shape), generator=torch.Generator().manual_seed(0)) * 2 - 1

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"image": self.x[i % 8]}


def loader() -> DataLoader:
    return DataLoader(Images(), batch_size=8, shuffle=False)


class Recording(L.LightningModule):
    """A tiny regressor with BatchNorm; ``net`` is averaged, ``other`` is trained but not averaged.

    After every batch it records its state dict and the global step, so the test can replay the EMA.
    """

    ema_modules: ClassVar[tuple[str, ...]] = ("net",)

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
        self.other = nn.Linear(64, 1)
        self.history: list[tuple[int, dict[str, Tensor]]] = []

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x = batch["image"]
        return self.net(x).square().mean() + self.other(x.flatten(1)).square().mean()

    def on_train_batch_end(self, *args: Any) -> None:
        self.history.append((self.trainer.global_step, {k: v.clone() for k, v in self.state_dict().items()}))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def trainer(ema: EMA, max_steps: int, *more: L.Callback, **kw: Any) -> L.Trainer:
    return L.Trainer(
        max_steps=max_steps,
        callbacks=[ema, *more],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
        **kw,
    )


def replay(initial: dict[str, Tensor], weights: list[dict[str, Tensor]], names, decay: float) -> dict[str, Tensor]:
    """The EMA by hand, in float64: s_0 = θ_0, s_{n+1} = d_n·s_n + (1 − d_n)·θ_{n+1}."""
    s = {k: initial[k].double() for k in names}
    for n, w in enumerate(weights):
        d = min(decay, (1 + n) / (10 + n))
        for k in names:
            s[k] = w[k].double() if not w[k].is_floating_point() else d * s[k] + (1 - d) * w[k].double()
    return s


@pytest.mark.parametrize("accumulate", [1, 2])
def test_shadow_is_the_formula_once_per_optimizer_step(accumulate):
    torch.manual_seed(0)
    model = Recording()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    ema = EMA(decay=0.5)  # small, so the warm-up hands over to the decay within the run
    steps = 6
    trainer(ema, steps, accumulate_grad_batches=accumulate).fit(model, loader())

    assert len(model.history) == steps * accumulate  # batches
    stepped = [w for i, (_, w) in enumerate(model.history) if (i + 1) % accumulate == 0]
    assert [g for g, _ in model.history][accumulate - 1 :: accumulate] == list(range(1, steps + 1))
    assert ema.num_updates == steps == len(stepped)

    names = set(ema.shadow)
    assert names == {k for k in initial if k.startswith("net.")}  # buffers in, `other` out
    assert {"net.2.running_mean", "net.2.running_var", "net.2.num_batches_tracked"} <= names
    expected = replay(initial, stepped, names, 0.5)
    for k in names:
        torch.testing.assert_close(ema.shadow[k].double(), expected[k], rtol=1e-6, atol=1e-7, msg=k)
    assert ema.shadow["net.2.num_batches_tracked"].item() == steps * accumulate  # copied, not averaged
    # the BatchNorm statistics really moved and were averaged, not copied
    assert not torch.equal(ema.shadow["net.2.running_mean"], model.net[2].running_mean)


def test_gan_averages_its_generator_once_per_generator_step():
    torch.manual_seed(0)
    model = GANModel(DCGANGenerator(8, 8, 1, width=8), DCGANDiscriminator(1, 8, width=8, norm="batch"), n_critic=2)
    snapshots: list[dict[str, Tensor]] = []

    class Snap(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            snapshots.append({k: v.clone() for k, v in pl_module.state_dict().items()})

    initial = {k: v.clone() for k, v in model.state_dict().items()}
    ema = EMA(decay=0.9)
    batches = 6  # 6 D steps + 3 G steps
    t = trainer(ema, batches + batches // 2, Snap())  # max_steps counts D and G steps
    t.fit(model, loader())
    assert len(snapshots) == batches and t.global_step == batches + batches // 2
    assert ema.num_updates == batches // 2  # once per generator step, not per batch or per D step

    names = set(ema.shadow)
    assert names == {k for k in initial if k.startswith("generator.")}
    assert not any(k.startswith("discriminator.") for k in names)
    assert "generator.stem.1.running_var" in names  # the generator's BatchNorm statistics
    expected = replay(initial, snapshots[1::2], names, 0.9)  # G steps on batches 2, 4, 6
    for k in names:
        torch.testing.assert_close(ema.shadow[k].double(), expected[k], rtol=1e-6, atol=1e-7, msg=k)


def test_frozen_submodule_is_not_averaged():
    model = Recording()
    mark_frozen(model.net[3])
    model.net[1].weight.requires_grad_(False)
    ema = EMA()
    trainer(ema, 1).fit(model, loader())
    assert not any(k.startswith("net.3.") for k in ema.shadow) and "net.1.weight" not in ema.shadow
    assert "net.1.bias" in ema.shadow


def test_unknown_ema_module_is_one_clear_error():
    model = Recording()
    model.ema_modules = ("generator",)
    with pytest.raises(ValueError, match=r"names 'generator', which is not a submodule"):
        trainer(EMA(), 1).fit(model, loader())


def test_resume_is_exact_and_old_params_only_checkpoints_load(tmp_path):
    def run(max_steps: int, ckpt: str | None = None) -> tuple[EMA, L.Trainer]:
        torch.manual_seed(0)
        ema = EMA(decay=0.9)
        t = trainer(ema, max_steps)
        t.fit(Recording(), loader(), ckpt_path=ckpt)
        return ema, t

    full, _ = run(8)
    half, t = run(4)
    path = tmp_path / "half.ckpt"
    t.save_checkpoint(path)
    resumed, _ = run(8, str(path))
    assert resumed.num_updates == full.num_updates == 8
    assert set(resumed.shadow) == set(full.shadow)
    for k, v in full.shadow.items():
        assert torch.equal(resumed.shadow[k], v), k

    # a checkpoint written before buffers were averaged: parameters only; it resumes, buffers start from the model
    ckpt = torch.load(path, weights_only=True)
    ckpt["callbacks"][STATE_KEY]["shadow"] = {
        k: v for k, v in ckpt["callbacks"][STATE_KEY]["shadow"].items() if "running" not in k and "num_b" not in k
    }
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    again, _ = run(5, str(old))
    assert again.num_updates == 5 and set(again.shadow) == set(full.shadow)


def test_swapped_and_copy_shadow_into_load_buffers():
    model = Recording()
    ema = EMA()
    trainer(ema, 3).fit(model, loader())
    raw = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.swapped(model):
        assert torch.equal(model.net[2].running_mean, ema.shadow["net.2.running_mean"])
        assert torch.equal(model.net[1].weight, ema.shadow["net.1.weight"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, raw[k]), k
    copy_shadow_into(model, ema.state_dict()["shadow"])
    assert torch.equal(model.net[2].running_var, ema.shadow["net.2.running_var"])
    with pytest.raises(ValueError, match="the model lacks"):
        copy_shadow_into(model, {"discriminator.w": torch.zeros(1)})


def test_a_shadow_saved_under_names_a_network_has_since_renamed_resumes_and_loads():
    """A network that renames a tensor declares it (`nn.renames`); an older checkpoint's EMA then still applies."""
    model = Recording()
    rename_on_load(model.net, layer_renames({"first": "1"}))  # net.1 was once saved as net.first
    ema = EMA()
    trainer(ema, 3).fit(model, loader())
    old = {k.replace("net.1.", "net.first."): v for k, v in ema.state_dict()["shadow"].items()}
    assert "net.first.weight" in old and not torch.equal(model.net[1].weight, ema.shadow["net.1.weight"])

    resumed = EMA()
    resumed.load_state_dict({"decay": 0.999, "num_updates": 3, "shadow": old})
    resumed.on_fit_start(SimpleNamespace(optimizers=[]), model)  # type: ignore[arg-type]
    assert set(resumed.shadow) == set(ema.shadow)
    assert torch.equal(resumed.shadow["net.1.weight"], ema.shadow["net.1.weight"])  # restored, not restarted

    copy_shadow_into(model, old)
    assert torch.equal(model.net[1].weight, ema.shadow["net.1.weight"])
