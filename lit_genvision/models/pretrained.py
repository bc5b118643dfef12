"""Platform models rebuilt from their checkpoints, whole or as frozen parts of a new model.

``load_model`` rebuilds the model a checkpoint holds from the config saved in it (every read goes
through ``checkpoint_io.load_checkpoint_file``, ``weights_only=True``) and loads its weights, the
EMA weights and buffers when the run kept an EMA. ``load_pretrained`` does the same for a model
that builds on another (latent diffusion's first stage, the token prior's tokenizer): the part
comes back frozen, θ_part fixed, so

    ∂L/∂θ_part = 0 (no gradient), no optimiser state, no EMA, and always in eval mode,

with ``{"path", "sha256"}`` of the checkpoint, which ``record_pretrained`` stores in the new
model's hyperparameters so the results store can say what it was built on.

Rebuilding a model from its saved config imports and calls every class the config names, so a
checkpoint could name any callable (``subprocess.Popen`` with arguments): ``check_class_paths``
refuses a class outside the trusted modules — ``lit_genvision``, ``torch.nn`` and ``torch.optim`` (an
injected optimiser), plus any that a user lists in ``LIT_GENVISION_TRUSTED_MODULES`` — before anything
is imported.
"""

from __future__ import annotations

import copy
import importlib
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import instantiate_module
from torch import nn

from lit_genvision.callbacks.ema import STATE_KEY as EMA_KEY
from lit_genvision.callbacks.ema import copy_shadow_into, mark_frozen
from lit_genvision.checkpoint_io import CheckpointError, download, is_url, load_checkpoint_file, sha256_of
from lit_genvision.models.base import CHECKPOINT_KEY, GenerativeModel, PlatformModule

#: Hyperparameter under which ``record_pretrained`` keeps {name: {"path", "sha256"}}; not an init argument.
PRETRAINED_KEY = "_pretrained"
#: The ``_pretrained`` records of the checkpoint being rebuilt, so that a part whose own checkpoint
#: file has moved is rebuilt from the config recorded beside it (its weights are in the owner's).
_REBUILDING: ContextVar[dict[str, Any] | None] = ContextVar("pretrained_records", default=None)
#: Environment variable: more modules (comma-separated) whose classes a checkpoint's config may name.
TRUSTED_ENV = "LIT_GENVISION_TRUSTED_MODULES"


def trusted_modules() -> tuple[str, ...]:
    """The modules whose classes a checkpoint's saved config may build."""
    extra = (m.strip() for m in os.environ.get(TRUSTED_ENV, "").split(","))
    return ("lit_genvision", "torch.nn", "torch.optim", *(m for m in extra if m))


def _class_paths(config: Any) -> list[str]:
    """Every ``class_path`` / ``_class_path`` value in a nested config of dicts and lists."""
    if isinstance(config, dict):
        found = [v for k, v in config.items() if k in ("class_path", "_class_path") and isinstance(v, str)]
        return found + [p for v in config.values() for p in _class_paths(v)]
    if isinstance(config, list | tuple):
        return [p for v in config for p in _class_paths(v)]
    return []


def check_class_paths(config: Any, source: str | Path) -> None:
    """Refuse a saved config that names a class outside ``trusted_modules()``: building it would
    run that class's code."""
    trusted = trusted_modules()
    for path in _class_paths(config):
        if not isinstance(path, str) or not any(path == m or path.startswith(f"{m}.") for m in trusted):
            raise CheckpointError(
                f"{source} names the class {path!r}, outside the trusted modules ({', '.join(trusted)}); building "
                f"it would run its code, so it is refused — if you trust it, add its module to {TRUSTED_ENV}."
            )


def _checked(ckpt: Any, path: str | Path) -> dict[str, Any]:
    if not isinstance(ckpt, dict) or CHECKPOINT_KEY not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(
            f"{path} is not a lit-genvision checkpoint (no '{CHECKPOINT_KEY}' entry); "
            "pass a .ckpt written by `lit-genvision fit`."
        )
    return ckpt


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A lit-genvision checkpoint from a local path or a URL, loaded with ``weights_only=True``
    (``checkpoint_io.load_checkpoint_file``), with one clear sentence for each way it can fail."""
    return _checked(load_checkpoint_file(path), path)


def _read_hashed(path: str | Path) -> tuple[dict[str, Any], str]:
    """The checkpoint and the SHA-256 of exactly the bytes that were loaded (a URL is downloaded once)."""
    if not is_url(path):
        ckpt = read_checkpoint(path)
        return ckpt, sha256_of(path)
    local = download(str(path))
    try:
        try:
            ckpt = load_checkpoint_file(local)
        except CheckpointError as err:
            raise CheckpointError(str(err).replace(str(local), str(path))) from None
        return _checked(ckpt, path), sha256_of(local)
    finally:
        local.unlink(missing_ok=True)


def _import(qualname: str) -> type:
    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)


class _StayInEval:
    """``train()`` of a frozen module: it stays in eval mode (BatchNorm statistics and dropout fixed).
    A plain object rather than a bound function, so the module still pickles (DDP spawn) and copies."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, mode: bool = True) -> nn.Module:
        return nn.Module.train(self.module, False)


def freeze(module: nn.Module) -> nn.Module:
    """Freeze ``module`` in place: requires_grad=False, eval mode for good, left out of the EMA."""
    module.requires_grad_(False)
    module.eval()
    module.train = _StayInEval(module)  # a parent's .train() cannot wake it
    return mark_frozen(module)


def trainable_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimiser should get: those that require a gradient (no frozen parts)."""
    return [p for p in module.parameters() if p.requires_grad]


def _build(ckpt: dict[str, Any], path: str | Path, *, use_ema: bool, generative: bool) -> PlatformModule:
    info = ckpt[CHECKPOINT_KEY]
    check_class_paths({"class_path": info["class"], "config": ckpt.get("hyper_parameters")}, f"checkpoint {path}")
    cls = _import(info["class"])
    if generative and not issubclass(cls, GenerativeModel):
        raise CheckpointError(
            f"checkpoint {path} holds a {cls.__name__} ({info['family']} family), which has no "
            "sample(); pass the checkpoint of a generative model."
        )
    # A deep copy: instantiating turns nested configs (a list of conditions) into Namespaces in place, which
    # would leak into the checkpoint's config that a part's owner records (and no longer load with weights_only).
    hparams = copy.deepcopy(dict(ckpt.get("hyper_parameters") or {}))
    hparams.pop("_instantiator", None)
    records = hparams.pop(PRETRAINED_KEY, None)
    if "_class_path" not in hparams:
        raise CheckpointError(
            f"checkpoint {path} has no saved config (it was not written through `lit-genvision fit`); "
            f"build {cls.__name__} in Python and load its state_dict instead."
        )
    token = _REBUILDING.set(records if isinstance(records, dict) else None)
    try:
        model = instantiate_module(cls, hparams)
    except ValueError as err:  # jsonargparse reports a constructor's error inside its own: raise the sentence
        inner = err
        while isinstance(inner.__cause__, ValueError | CheckpointError):
            inner = inner.__cause__
        raise inner from None
    finally:
        _REBUILDING.reset(token)
    model.on_load_checkpoint(ckpt)
    model.data_config = info.get("data")  # the run's data, as fit set it: evaluate and an owner read it
    model.load_state_dict(ckpt["state_dict"])
    ema = (ckpt.get("callbacks") or {}).get(EMA_KEY)
    if use_ema and ema is not None:
        try:
            copy_shadow_into(model, ema["shadow"])  # parameters, and buffers in newer checkpoints
        except ValueError as err:
            raise CheckpointError(f"checkpoint {path}: {err}") from None
    model.ema_loaded = use_ema and ema is not None
    return model


def load_model(
    path: str | Path, *, use_ema: bool = True, generative: bool = False, frozen: bool = False
) -> PlatformModule:
    """Rebuild the model a checkpoint holds from its saved config, load its weights (the EMA
    weights and buffers when the run kept an EMA and ``use_ema``), and return it in eval mode on
    the CPU; ``frozen`` also freezes it (see ``freeze``)."""
    model = _build(read_checkpoint(path), path, use_ema=use_ema, generative=generative)
    return freeze(model) if frozen else model.eval()


def load_pretrained(
    path: str | Path, *, use_ema: bool = True, generative: bool = False, name: str | None = None
) -> tuple[PlatformModule, dict[str, Any]]:
    """A frozen, eval-mode platform model from ``path`` and ``{"path", "sha256", "class", "config"}``
    of the checkpoint it came from (pass both to ``record_pretrained``).

    While a model that recorded this part (as ``name``, or by its path) is itself rebuilt from its checkpoint
    (``load_model``): a part whose weights the owner's checkpoint holds (embedded, the default) is rebuilt from
    its recorded class and config — the file is not read, and may be gone; a part held by reference is read
    from its file, which must be the one recorded (same SHA-256), or loading stops with one sentence that
    says which file changed or is gone.
    """
    record = _recorded(path, name)
    if record is not None and record.get("embedded", True):
        return _from_record(record, str(path)), dict(record)
    if record is not None and not is_url(path) and not Path(path).exists():
        raise CheckpointError(
            f"this model holds its {name or 'part'} by reference to {path}, which is gone; put back the file "
            f"with SHA-256 {record['sha256'][:16]}… there, or retrain the model with the part embedded."
        )
    ckpt, digest = _read_hashed(path)
    if record is not None and record.get("sha256") not in (None, digest):
        raise CheckpointError(
            f"{path}, the {name or 'part'} this model holds by reference, changed since it was trained (SHA-256 "
            f"{digest[:16]}…, recorded {record['sha256'][:16]}…); put back the file it was trained with."
        )
    model = freeze(_build(ckpt, path, use_ema=use_ema, generative=generative))
    config = {k: v for k, v in (ckpt.get("hyper_parameters") or {}).items() if k != "_instantiator"}
    return model, {"path": str(path), "sha256": digest, "class": ckpt[CHECKPOINT_KEY]["class"], "config": config}


def load_part(
    path: str | Path, name: str, kinds: type | tuple[type, ...], hint: str, *, embed: bool = True
) -> tuple[PlatformModule, dict[str, Any]]:
    """The one way a model loads a frozen part it is built on (a first stage, a tokenizer, a CLIP …): the model
    of checkpoint ``path``, frozen, checked to be one of ``kinds`` (else one sentence ending with ``hint``),
    and the record its owner keeps (``record_pretrained`` under ``name``).

    ``embed`` keeps the part's weights in the owner's checkpoint (one self-contained file: the default);
    ``embed=False`` records only the part's path, SHA-256, class and config, and the owner's checkpoints leave
    its weights out (``by_reference``): rebuilding the owner reads the part's file and checks its hash.
    """
    model, info = load_pretrained(path, name=name)
    if not isinstance(model, kinds):
        raise ValueError(f"{path} holds a {type(model).__name__}; {hint}")
    if not embed:
        by_reference(model)
    return model, {**info, "embedded": embed}


def by_reference(module: nn.Module) -> nn.Module:
    """Leave ``module``'s tensors out of every state dict it is part of, and let a state dict without them load
    (strict): a frozen part held by reference, whose weights live in its own checkpoint."""
    prefixes: list[str] = []

    def drop(owner: nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
        if prefix:  # within its owner's state dict (the part's own still holds everything)
            for key in [k for k in state if k.startswith(prefix)]:
                del state[key]

    def remember(state: dict[str, Any], prefix: str, *args: Any) -> None:
        if prefix:
            prefixes.append(prefix)
            for key in [k for k in state if k.startswith(prefix)]:
                del state[key]  # an embedded copy is not read: the file is the part

    def forgive(owner: nn.Module, incompatible: Any) -> None:
        if prefixes:
            incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not k.startswith(tuple(prefixes))]

    module._register_state_dict_hook(drop)
    module._register_load_state_dict_pre_hook(remember)
    module.register_load_state_dict_post_hook(forgive)
    module.held_by_reference = True
    return module


def _from_record(record: dict[str, Any], source: str) -> PlatformModule:
    """A part rebuilt from its recorded class and config (its weights come from the owner's checkpoint)."""
    check_class_paths({"class_path": record["class"], "config": record["config"]}, f"the record of {source}")
    config = dict(record["config"])
    nested = config.pop(PRETRAINED_KEY, None)  # a part that is itself built on parts
    token = _REBUILDING.set(nested if isinstance(nested, dict) else None)
    try:
        return freeze(instantiate_module(_import(record["class"]), config))
    finally:
        _REBUILDING.reset(token)


def _recorded(path: str | Path, name: str | None = None) -> dict[str, Any] | None:
    """The record of the part ``name`` (or, failing that, of the part loaded from ``path``) in the checkpoint
    being rebuilt, if any."""
    records = {
        k: r for k, r in (_REBUILDING.get() or {}).items() if isinstance(r, dict) and {"class", "config"} <= set(r)
    }
    if name is not None and name in records:
        return records[name]
    return next((r for r in records.values() if r.get("path") == str(path)), None)


def record_pretrained(owner: PlatformModule, name: str, info: dict[str, Any]) -> None:
    """Record which checkpoint ``owner``'s part ``name`` was loaded from in its hyperparameters
    (``hparams["_pretrained"][name] = {"path", "sha256", "class", "config", "embedded"}``), so its checkpoints
    carry it and can rebuild the part without the file (embedded) or check the file (by reference)."""
    owner.hparams.setdefault(PRETRAINED_KEY, {})[name] = dict(info)


def record_parts(owner: PlatformModule) -> None:
    """Record every frozen part among ``owner``'s submodules that was built before ``owner`` (a first stage, a
    text encoder: they carry ``part_name`` and ``pretrained_record``)."""
    for module in owner.modules():
        record = getattr(module, "pretrained_record", None)
        if record is not None and module is not owner:
            record_pretrained(owner, module.part_name, record)
