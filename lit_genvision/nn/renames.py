"""Renamed tensors: a state dict saved before a rename still loads.

A module that renames one of its parameters or buffers declares the map once, in its ``__init__``::

    rename_on_load(self, {"cross_q.weight": "cross.q.weight", ...})   # old → new, relative to the module

A key ending in ``.`` renames a submodule: every tensor under ``old`` moves under ``new``.
``load_state_dict`` then moves ``prefix + old`` to ``prefix + new`` before the module reads its tensors (a
load-state-dict pre-hook, so it works wherever the module sits in a model and under ``strict=True``), and
`upgrade_state_dict` applies every map under a model to a flat state dict for code that matches names itself
(the EMA shadow of a checkpoint). A key already present under its new name is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from torch import nn

#: Attribute holding a module's ``{old: new}`` map of renamed state-dict keys.
RENAMES_ATTR = "renamed_state_keys"


def _apply(state: dict[str, Any], prefix: str, renames: Mapping[str, str]) -> None:
    for old, new in renames.items():
        if old.endswith("."):  # a renamed submodule: every key under it moves
            for key in [k for k in state if k.startswith(prefix + old)]:
                moved = prefix + new + key[len(prefix + old) :]
                if moved not in state:
                    state[moved] = state.pop(key)
        elif prefix + old in state and prefix + new not in state:
            state[prefix + new] = state.pop(prefix + old)


def _pre_hook(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    _apply(state_dict, prefix, getattr(module, RENAMES_ATTR))


def rename_on_load(module: nn.Module, renames: Mapping[str, str]) -> None:
    """Let ``module.load_state_dict`` (direct or through a parent) accept the old names of ``renames``
    (``{old: new}``, keys relative to ``module``)."""
    known = getattr(module, RENAMES_ATTR, None)
    if known is None:
        module.register_load_state_dict_pre_hook(_pre_hook)
    setattr(module, RENAMES_ATTR, {**(known or {}), **renames})


def layer_renames(layers: Mapping[str, str], tensors: Iterable[str] = ("weight", "bias")) -> dict[str, str]:
    """``{old layer: new layer}`` → ``{old.weight: new.weight, old.bias: new.bias}``, for `rename_on_load`."""
    return {f"{old}.{t}": f"{new}.{t}" for old, new in layers.items() for t in tensors}


def upgrade_state_dict(model: nn.Module, state: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``state`` (keyed by ``model``'s state-dict names) with every old name declared by a
    submodule of ``model`` through `rename_on_load` moved to its new name."""
    out = dict(state)
    for name, module in model.named_modules():
        renames = getattr(module, RENAMES_ATTR, None)
        if renames:
            _apply(out, f"{name}." if name else "", renames)
    return out


__all__ = ["RENAMES_ATTR", "layer_renames", "rename_on_load", "upgrade_state_dict"]
