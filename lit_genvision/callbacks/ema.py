"""Exponential moving average of the weights, kept by a callback.

After every optimiser step that moves the averaged weights,

    θ_ema ← d·θ_ema + (1 − d)·θ,   d = min(decay, (1 + n)/(10 + n))

where n counts the updates made so far (the warm-up of TF's ExponentialMovingAverage with
num_updates; without warm-up d = decay).

What is averaged is what the model says it samples with: the submodules named by its
``ema_modules`` attribute (a GAN's generator, a diffusion model's ``net``, …; the whole model
when it names none), parameters *and* persistent buffers. Float buffers (BatchNorm's
running mean and variance) are averaged like weights, so the averaged network is evaluated
with statistics that match averaged weights rather than the last step's; integer buffers
(``num_batches_tracked``) are copied; under DDP every rank keeps rank 0's averaged buffers (the
statistics are per rank; rank 0 writes the checkpoint). A frozen sub-model (``mark_frozen``, or parameters with
``requires_grad=False`` at the start of fit) is not averaged: it never moves.

"Once per optimiser step" is counted on the optimisers themselves (``torch.optim`` step
post-hooks on the optimisers that own averaged parameters), and the average is taken once at
the end of a batch in which one of them stepped. So ``accumulate_grad_batches=k`` gives one
update per k batches, a GAN (two optimisers per batch, manual optimisation) one update per
generator step, and a step skipped by the AMP grad scaler none.

Lightning's own ``EMAWeightAveraging`` is not used: it averages a deep copy of the whole
LightningModule (discriminator included) and decides by ``trainer.global_step``, which a GAN
advances on discriminator steps too; it also stores the average in a different checkpoint layout.

The average lives in the checkpoint as ``callbacks["EMA"]["shadow"]`` keyed by the
LightningModule's state-dict names (names a network has renamed since are mapped by the renames it
declares, ``nn.renames``); it is restored on resume (a checkpoint from before buffers
were averaged resumes with the buffers' current values), swapped in for validation and for
sampling, and exported by ``lit-genvision export``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from lit_genvision.nn.renames import upgrade_state_dict

STATE_KEY = "EMA"
#: Attribute set on a frozen sub-model (``mark_frozen``): the EMA leaves it out.
FROZEN_ATTR = "lit_genvision_frozen"


def mark_frozen(module: nn.Module) -> nn.Module:
    """Mark ``module`` as a frozen sub-model, which no EMA averages; returns it."""
    setattr(module, FROZEN_ATTR, True)
    return module


def ema_module_names(pl_module: nn.Module) -> tuple[str, ...]:
    """The submodule names the model averages (``ema_modules``); ``("",)`` is the whole model."""
    names = getattr(pl_module, "ema_modules", None) or ("",)
    names = (names,) if isinstance(names, str) else tuple(names)
    for name in names:
        try:
            pl_module.get_submodule(name)
        except AttributeError:
            raise ValueError(
                f"{type(pl_module).__name__}.ema_modules names {name!r}, which is not a submodule of the model; "
                "name the submodules that sample (e.g. 'generator' or 'net')."
            ) from None
    return names


def averaged_names(pl_module: nn.Module) -> list[str]:
    """State-dict names of the tensors the EMA keeps for ``pl_module`` (see the module docstring)."""
    frozen = [name for name, m in pl_module.named_modules() if getattr(m, FROZEN_ATTR, False)]
    if "" in frozen:  # the whole model is frozen
        return []
    prefixes = [f"{name}." if name else "" for name in ema_module_names(pl_module)]
    parameters = {id(p) for p in pl_module.parameters()}
    names, seen = [], set()
    for name, tensor in pl_module.state_dict(keep_vars=True).items():
        if not any(name.startswith(p) for p in prefixes) or any(name.startswith(f"{f}.") for f in frozen):
            continue
        if id(tensor) in seen or (id(tensor) in parameters and not tensor.requires_grad):
            continue  # a tied weight is averaged once; a frozen parameter never moves
        seen.add(id(tensor))
        names.append(name)
    return names


class EMA(L.Callback):
    """Keep an EMA of the weights and buffers of the model's ``ema_modules``, once per optimiser step.

    Args:
        decay: the decay d (0.999 ≈ an average over the last ~1000 steps).
        warmup: ramp d up as (1 + n)/(10 + n) so early averages are not dominated by the init.
        validate_with_ema: evaluate validation with the EMA weights.
    """

    def __init__(self, decay: float = 0.999, warmup: bool = True, validate_with_ema: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}.")
        self.decay, self.warmup, self.validate_with_ema = decay, warmup, validate_with_ema
        self.num_updates = 0
        self.shadow: dict[str, Tensor] | None = None
        self._backup: dict[str, Tensor] | None = None
        self._ctx: Any = None
        self._hooks: list[RemovableHandle] = []
        self._stepped = False
        self._buffers: list[str] = []

    @property
    def state_key(self) -> str:
        return STATE_KEY

    @staticmethod
    def _live(pl_module: nn.Module, names: list[str]) -> list[Tensor]:
        tensors = pl_module.state_dict(keep_vars=True)
        return [tensors[n] for n in names]

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        names = averaged_names(pl_module)
        live = self._live(pl_module, names)
        # a resumed run: the checkpoint's shadow (older ones lack buffers; renamed tensors take today's names)
        restored = upgrade_state_dict(pl_module, self.shadow or {})
        self.shadow = {
            n: (restored[n] if n in restored else t).detach().to(t.device, t.dtype, copy=True)
            for n, t in zip(names, live, strict=True)
        }
        parameters = {id(p) for p in pl_module.parameters()}
        self._buffers = [n for n, t in zip(names, live, strict=True) if id(t) not in parameters]
        self._watch(trainer, live)

    def _watch(self, trainer: L.Trainer, live: list[Tensor]) -> None:
        """Hook the optimisers that own averaged parameters (all of them if none is recognised,
        e.g. behind a strategy that flattens parameters): their steps trigger the update."""
        self._remove_hooks()
        ids = {id(t) for t in live}
        optimizers = [o.optimizer if hasattr(o, "optimizer") else o for o in trainer.optimizers]
        owners = [o for o in optimizers if any(id(p) in ids for g in o.param_groups for p in g["params"])]
        for opt in owners or optimizers:
            self._hooks.append(opt.register_step_post_hook(self._mark_stepped))

    def _mark_stepped(self, *_: Any) -> None:
        self._stepped = True

    def _remove_hooks(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks = []
        self._stepped = False

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._remove_hooks()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._remove_hooks()

    def current_decay(self) -> float:
        """d = min(decay, (1 + n)/(10 + n)) with warm-up, else decay."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, pl_module: nn.Module) -> None:
        """One EMA update: θ_ema ← d·θ_ema + (1 − d)·θ for float tensors, a copy for integer buffers."""
        if self.shadow is None:
            raise RuntimeError("the EMA has no average yet; it is created when fit starts.")
        d = self.current_decay()
        names = list(self.shadow)
        live = self._live(pl_module, names)
        floats = [i for i, t in enumerate(live) if t.is_floating_point()]
        torch._foreach_lerp_([self.shadow[names[i]] for i in floats], [live[i].detach() for i in floats], 1.0 - d)
        for i in set(range(len(names))) - set(floats):
            self.shadow[names[i]].copy_(live[i])
        self.num_updates += 1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._stepped:
            self._stepped = False
            self.update(pl_module)
            if trainer.world_size > 1:
                self._sync_buffers()

    def _sync_buffers(self) -> None:
        """Under DDP the BatchNorm statistics are per rank; keep rank 0's average on every rank (DDP
        itself broadcasts rank 0's buffers before each forward, and rank 0 writes the checkpoint)."""
        if not self._buffers or not (dist.is_available() and dist.is_initialized()):
            return
        groups: dict[tuple[torch.dtype, torch.device], list[Tensor]] = {}
        for n in self._buffers:
            groups.setdefault((self.shadow[n].dtype, self.shadow[n].device), []).append(self.shadow[n])
        for tensors in groups.values():
            flat = torch.cat([t.flatten() for t in tensors])
            dist.broadcast(flat, src=0)
            offset = 0
            for t in tensors:
                t.copy_(flat[offset : offset + t.numel()].view_as(t))
                offset += t.numel()

    @contextmanager
    def swapped(self, pl_module: L.LightningModule) -> Iterator[None]:
        """Temporarily load the EMA weights and buffers into ``pl_module``."""
        if self.shadow is None or self._backup is not None:
            yield
            return
        tensors = pl_module.state_dict(keep_vars=True)
        live = {n: tensors[n] for n in self.shadow if n in tensors}
        self._backup = {n: t.detach().clone() for n, t in live.items()}
        with torch.no_grad():
            for n, t in live.items():
                t.copy_(self.shadow[n])
        try:
            yield
        finally:
            with torch.no_grad():
                for n, t in live.items():
                    t.copy_(self._backup[n])
            self._backup = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.validate_with_ema and not trainer.sanity_checking:
            self._ctx = self.swapped(pl_module)
            self._ctx.__enter__()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None

    def state_dict(self) -> dict[str, Any]:
        shadow = {n: t.detach().cpu() for n, t in (self.shadow or {}).items()}
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": shadow}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.num_updates = int(state_dict["num_updates"])
        self.shadow = dict(state_dict["shadow"])


def find_ema(trainer: L.Trainer) -> EMA | None:
    return next((cb for cb in trainer.callbacks if isinstance(cb, EMA)), None)


def copy_shadow_into(model: nn.Module, shadow: dict[str, Tensor]) -> None:
    """Load an EMA shadow (parameters, and buffers in newer checkpoints) into ``model`` in place; tensors
    renamed since the shadow was saved are found under their new names (`nn.renames`)."""
    shadow = upgrade_state_dict(model, shadow)
    tensors = model.state_dict(keep_vars=True)
    missing = [n for n in shadow if n not in tensors]
    if missing:
        raise ValueError(
            f"the EMA in this checkpoint has {len(missing)} tensor(s) the model lacks (e.g. {missing[0]!r}); "
            "load it with the config of the model that wrote it, or pass use_ema=False."
        )
    with torch.no_grad():
        for name, value in shadow.items():
            tensors[name].copy_(value)
