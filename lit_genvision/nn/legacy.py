"""Parameter names of earlier revisions: a module that renamed its parameters says how (``legacy_keys``:
{old prefix: new prefix}, relative to the module), and state dicts written with the old names load — through
``load_state_dict`` (a pre-hook) and, for EMA shadows and whole checkpoints, through ``upgrade_state_dict``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn


def _renamed(key: str, renames: list[tuple[str, str]]) -> str:
    for old, new in renames:
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def upgrade_state_dict(model: nn.Module, state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` (keys relative to ``model``) with every legacy name of every submodule of ``model`` renamed."""
    renames: list[tuple[str, str]] = []
    for name, module in model.named_modules():
        mapping = getattr(module, "legacy_keys", None)
        if callable(mapping):
            base = f"{name}." if name else ""
            renames += [(base + old, base + new) for old, new in mapping().items()]
    return {_renamed(key, renames): value for key, value in state.items()}


def register_legacy_keys(module: nn.Module) -> None:
    """Make ``module.load_state_dict`` (and any parent's) accept the names of ``module.legacy_keys()``."""

    def hook(state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        renames = [(prefix + old, prefix + new) for old, new in module.legacy_keys().items()]
        for key in [k for k in state_dict if k.startswith(prefix)]:
            new = _renamed(key, renames)
            if new != key:
                state_dict[new] = state_dict.pop(key)

    module._register_load_state_dict_pre_hook(hook)
