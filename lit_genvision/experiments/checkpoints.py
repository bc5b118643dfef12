"""The run behind a checkpoint: its model (``models.pretrained.load_model``, re-exported here so
callers are unchanged) and its data module. Every read goes through ``checkpoint_io``
(``weights_only=True``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import yaml
from lightning.pytorch.cli import instantiate_module

from lit_genvision.callbacks.class_names import CLASSES_KEY
from lit_genvision.checkpoint_io import CheckpointError
from lit_genvision.data.base import ImageDataModule
from lit_genvision.data.digits import DigitsDataModule
from lit_genvision.models.base import CHECKPOINT_KEY
from lit_genvision.models.pretrained import check_class_paths, load_model, read_checkpoint

__all__ = ["CheckpointError", "load_model", "read_checkpoint", "run_classes", "run_datamodule"]


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
    check_class_paths({"class_path": path, "init_args": data.get("init_args")}, f"the data config of {ckpt}")
    return instantiate_module(ImageDataModule, {"_class_path": path, **(data.get("init_args") or {})})


def run_classes(ckpt: str | Path) -> tuple[list[str], list[str]] | None:
    """(class names, class ids) of the run that wrote ``ckpt``: the list the checkpoint records
    (``callbacks.ClassNames``), else the ``class_names`` / ``class_ids`` of its data module rebuilt from the
    checkpoint's data config; None when neither names classes."""
    entry = read_checkpoint(ckpt).get(CLASSES_KEY)
    if isinstance(entry, dict) and entry.get("names"):
        return list(entry["names"]), list(entry.get("ids") or [])
    with warnings.catch_warnings():  # a run without a data config names no classes: no need to say it twice
        warnings.simplefilter("ignore")
        datamodule = run_datamodule(ckpt)
    names = getattr(datamodule, "class_names", None)
    return (list(names), list(getattr(datamodule, "class_ids", None) or [])) if names else None
