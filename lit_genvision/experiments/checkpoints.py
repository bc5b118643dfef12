"""Rebuilding the model a checkpoint holds; every read goes through ``checkpoint_io`` (``weights_only=True``)."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from lightning.pytorch.cli import instantiate_module

from lit_genvision.callbacks.ema import STATE_KEY as EMA_KEY
from lit_genvision.checkpoint_io import CheckpointError, load_checkpoint_file
from lit_genvision.data.base import ImageDataModule
from lit_genvision.data.digits import DigitsDataModule
from lit_genvision.models.base import CHECKPOINT_KEY, GenerativeModel, PlatformModule


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A lit-genvision checkpoint from a local path or a URL, loaded with ``weights_only=True``
    (``checkpoint_io.load_checkpoint_file``), with one clear sentence for each way it can fail."""
    ckpt = load_checkpoint_file(path)
    if not isinstance(ckpt, dict) or CHECKPOINT_KEY not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(
            f"{path} is not a lit-genvision checkpoint (no '{CHECKPOINT_KEY}' entry); "
            "pass a .ckpt written by `lit-genvision fit`."
        )
    return ckpt


def _import(qualname: str) -> type:
    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)


def load_model(path: str | Path, *, use_ema: bool = True, generative: bool = False) -> PlatformModule:
    """Rebuild the model a checkpoint holds from its saved config, load its weights (the EMA
    weights when the run kept an EMA and ``use_ema``), and return it in eval mode on the CPU."""
    ckpt = read_checkpoint(path)
    info = ckpt[CHECKPOINT_KEY]
    cls = _import(info["class"])
    if generative and not issubclass(cls, GenerativeModel):
        raise CheckpointError(
            f"checkpoint {path} holds a {cls.__name__} ({info['family']} family), which has no "
            "sample(); pass the checkpoint of a generative model."
        )
    hparams = dict(ckpt.get("hyper_parameters") or {})
    hparams.pop("_instantiator", None)
    if "_class_path" not in hparams:
        raise CheckpointError(
            f"checkpoint {path} has no saved config (it was not written through `lit-genvision fit`); "
            f"build {cls.__name__} in Python and load its state_dict instead."
        )
    model = instantiate_module(cls, hparams)
    model.on_load_checkpoint(ckpt)
    model.load_state_dict(ckpt["state_dict"])
    ema = (ckpt.get("callbacks") or {}).get(EMA_KEY)
    if use_ema and ema is not None:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in ema["shadow"].items():
                params[name].copy_(value)
    model.ema_loaded = use_ema and ema is not None
    return model.eval()


def run_datamodule(ckpt: str | Path) -> ImageDataModule:
    """The data module of the run that wrote ``ckpt``: from the data config saved in the checkpoint,
    else the run folder's config.yaml (runs/<name>/version_N/config.yaml), else the digits."""
    data = (read_checkpoint(ckpt)[CHECKPOINT_KEY].get("data")) or {}
    config = Path(ckpt).resolve().parent.parent / "config.yaml"
    if not data and config.is_file():
        data = (yaml.safe_load(config.read_text()) or {}).get("data") or {}
    if not data:
        warnings.warn(f"no data config in {ckpt} or beside it; assuming the digits data module", stacklevel=2)
        return DigitsDataModule()
    path = data.get("class_path", "lit_genvision.data.DigitsDataModule")
    return instantiate_module(ImageDataModule, {"_class_path": path, **(data.get("init_args") or {})})
