"""Adding a condition or a method is one file: a condition class (a made-up per-pixel map) and a method (a
one-line variant of the flow path) written outside the package train and sample through the CLI with a YAML
file alone."""

from __future__ import annotations

import textwrap

import pytest
import torch
import yaml

from lit_genvision.cli import main
from lit_genvision.experiments.checkpoints import load_model

EXTENSION = '''
"""A user's own condition and method, in a module of their own."""

import torch
import torch.nn.functional as F

from lit_genvision.methods import FlowMethod, LinearPath
from lit_genvision.nn.conditions import Condition


class CoarseMap(Condition):
    """A per-pixel map: the image averaged over 4×4 cells (a low-resolution copy), derived from the batch and
    concatenated to x_t; dropped to zeros."""

    name = "coarse_map"
    keys = ("coarse_map",)
    derived = True
    calls = 0

    @property
    def channels(self):
        return 1

    def null(self, key, value, drop):
        return {key: torch.where(drop.view(-1, 1, 1, 1), torch.zeros_like(value), value)}

    def encode(self, cond, batch, like):
        value = cond.get("coarse_map")
        return {"channels": torch.zeros_like(like) if value is None else value.to(like)}

    def derive(self, batch, **context):
        if "coarse_map" in batch or "image" not in batch:
            return {}
        type(self).calls += 1
        image = batch["image"]
        return {"coarse_map": F.interpolate(F.avg_pool2d(image, 4), size=image.shape[-2:], mode="nearest")}


class MinSigmaPath(LinearPath):
    """Lipman et al.'s optimal-transport path with σ_min: x_t = (1 − t) x0 + (σ_min + (1 − σ_min) t) x1."""

    def __init__(self, sigma_min=0.01):
        self.sigma_min = sigma_min

    def sigma(self, t):
        return self.sigma_min + (1 - self.sigma_min) * t

    def d_sigma(self, t):
        return torch.full_like(t, 1 - self.sigma_min)


class MinSigmaFlow(FlowMethod):
    """Flow matching on ``MinSigmaPath``: the one-line variant of the flow path."""

    def __init__(self, sigma_min: float = 0.01, time_sampling: str = "uniform", solver=None):
        super().__init__(MinSigmaPath(sigma_min), time_sampling, solver)
'''

CONFIG = """
seed_everything: 0
model:
  class_path: lit_genvision.models.DenoisingModel
  init_args:
    net:
      class_path: lit_genvision.nn.ConditionedNet
      init_args:
        backbone:
          class_path: lit_genvision.nn.UNet
          init_args: {in_channels: 2, out_channels: 1, image_size: 8, channels: 8, channel_mults: [1, 2],
                      norm_groups: 4, heads: 2}
        conditions:
          - class_path: user_ext.CoarseMap
    method:
      class_path: user_ext.MinSigmaFlow
      init_args:
        sigma_min: 0.05
        solver: {class_path: lit_genvision.methods.ODESampler, init_args: {solver: euler, steps: 3}}
    optimizer: {class_path: torch.optim.AdamW, init_args: {lr: 1.0e-3, weight_decay: 0.0}}
    cond_dropout: {coarse_map: 0.2}
data:
  class_path: lit_genvision.data.DigitsDataModule
  init_args: {image_size: 8, batch_size: 32, seed: 0}
trainer:
  max_steps: 4
  accelerator: cpu
  enable_progress_bar: false
  enable_model_summary: false
  logger: {class_path: lightning.pytorch.loggers.CSVLogger, init_args: {save_dir: RUNS, name: ext}}
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {save_last: true, save_top_k: 0}
"""


@pytest.fixture
def extension(tmp_path, monkeypatch):
    (tmp_path / "user_ext.py").write_text(textwrap.dedent(EXTENSION))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LIT_GENVISION_TRUSTED_MODULES", "user_ext")  # its checkpoints may name its classes
    import user_ext

    yield user_ext
    monkeypatch.delitem(__import__("sys").modules, "user_ext", raising=False)


def test_a_condition_and_a_method_written_outside_the_package_train_and_sample_from_yaml_alone(extension, tmp_path):
    config = tmp_path / "ext.yaml"
    config.write_text(CONFIG.replace("RUNS", str(tmp_path / "runs")))
    assert main(["fit", "--config", str(config)]) == 0
    assert extension.CoarseMap.calls >= 4  # derived from every training batch

    ckpt = tmp_path / "runs" / "ext" / "version_0" / "checkpoints" / "last.ckpt"
    model = load_model(ckpt)
    assert type(model.method).__name__ == "MinSigmaFlow" and model.method.path.sigma_min == 0.05
    assert [type(c).__name__ for c in model.conditions] == ["CoarseMap"]
    assert model.conditioning.batch_keys == ("coarse_map",) and model.required_keys() == ("image",)
    saved = yaml.safe_load((ckpt.parent.parent / "config.yaml").read_text())
    assert saved["model"]["init_args"]["method"]["class_path"] == "user_ext.MinSigmaFlow"

    coarse = torch.zeros(2, 1, 8, 8)
    coarse[1] = 1.0
    g = torch.Generator().manual_seed(0)
    with_map = model.sample(2, cond={"coarse_map": coarse}, generator=g)
    g = torch.Generator().manual_seed(0)
    without = model.sample(2, generator=g)
    assert with_map.shape == (2, 1, 8, 8)
    assert not torch.equal(with_map[1], without[1])  # the map reaches the network
    out = tmp_path / "samples.png"
    assert main(["sample", "--ckpt", str(ckpt), "--num", "4", "--out", str(out)]) == 0 and out.is_file()


def test_the_variant_method_trains_on_its_own_path(extension):
    from lit_genvision.methods.diffusion import randn_like
    from lit_genvision.methods.flow import sample_times

    x0 = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    seen = {}

    def net(x, t, cond):
        seen["x"], seen["t"] = x, t
        return torch.zeros_like(x)

    loss = extension.MinSigmaFlow(0.1).loss(net, x0, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)  # the method's draws, redone: t, then x1
    t = sample_times(3, "uniform", generator=g)
    x1 = randn_like(x0, g)
    view = t.view(-1, 1, 1, 1)
    torch.testing.assert_close(seen["x"], (1 - view) * x0 + (0.1 + 0.9 * view) * x1)  # x_t on the variant path
    torch.testing.assert_close(loss, (-x0 + 0.9 * x1).pow(2).mean())  # ‖0 − u_t‖², u_t = −x0 + (1 − σ_min) x1
