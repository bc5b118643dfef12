"""What every LightningModule of the platform shares: the batch-key check at setup, a record of
the family in each checkpoint, and the ``sample``
protocol of generative models (``GenerativeModel``; conditioning is ``models.conditional``)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from torch import Tensor, nn

from lit_genvision.methods.guidance import Conditioning
from lit_genvision.methods.interpolation import interpolate_noise
from lit_genvision.methods.sampling import SampleOptions

CHECKPOINT_KEY = "lit_genvision"


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class PlatformModule(L.LightningModule):
    """Base of every model: declares the batch keys it needs and records its family."""

    family: ClassVar[str] = "base"
    #: Batch keys the model reads; checked against the data module's ``provides`` at setup.
    requires: ClassVar[tuple[str, ...]] = ("image",)

    def required_keys(self) -> tuple[str, ...]:
        """The batch keys this instance reads (a conditional model adds its condition)."""
        return self.requires

    @staticmethod
    @contextmanager
    def eval_mode(module: nn.Module) -> Iterator[None]:
        """Run ``module`` in eval mode (dropout off, BatchNorm on its running statistics) and give
        it back in the mode it had: sampling during training must not leave it in eval mode."""
        was_training = module.training
        module.eval()
        try:
            yield
        finally:
            module.train(was_training)

    def save_config(self) -> None:
        """Save the constructor arguments as hyperparameters when they are a plain config.

        Through ``lit-genvision fit`` the arguments are the YAML's ``class_path``/``init_args``
        dicts, so the checkpoint can rebuild the model with ``weights_only=True``. A model built
        by hand in Python holds live objects instead; those are not pickled into the checkpoint.
        """
        frame = inspect.currentframe().f_back  # the __init__ that called it; its callers' when they are __init__s too
        while (
            frame.f_back is not None
            and frame.f_back.f_code.co_name == "__init__"
            and frame.f_back.f_locals.get("self") is self
        ):  # a subclass's constructor (an alias with the arguments of earlier revisions) is the config
            frame = frame.f_back
        if _given_hyperparameters.get() is not None:
            self.save_hyperparameters(frame=frame)
        else:
            args = inspect.getargvalues(frame).locals
            objects = [
                k
                for k in inspect.signature(type(self).__init__).parameters
                if k != "self" and not isinstance(args.get(k), (int, float, str, bool, list, tuple, type(None)))
            ]
            self.save_hyperparameters(ignore=objects, frame=frame)

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        provided = getattr(datamodule, "provides", None)
        if provided is None:
            return
        missing = [k for k in self.required_keys() if k not in provided]
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs batch key(s) {', '.join(missing)}, which {type(datamodule).__name__} "
                f"does not provide (it provides {', '.join(provided)}); choose a data module that has them."
            )

    def allow_unused_parameters_under_ddp(self) -> None:
        """Let DDP's reducer skip parameters a backward does not reach (``find_unused_parameters``):
        for models with two optimisers stepped in turn (a GAN's generator and discriminator, a
        tokenizer and its PatchGAN), so that ``--trainer.strategy ddp`` just works."""
        from lightning.pytorch.strategies import DDPStrategy

        strategy = getattr(self.trainer, "strategy", None)
        if isinstance(strategy, DDPStrategy):
            strategy._ddp_kwargs["find_unused_parameters"] = True

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "family": self.family,
            "class": qualified_name(type(self)),
            "data": getattr(self, "data_config", None),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Check the checkpoint holds this model (the names its networks have renamed since are mapped when the
        state dict and the EMA shadow load, ``nn.renames``)."""
        info = checkpoint.get(CHECKPOINT_KEY)
        if info is None:
            raise ValueError(
                "this checkpoint was not written by lit-genvision (no 'lit_genvision' entry); "
                "pass a checkpoint saved by `lit-genvision fit`."
            )
        if info["class"] != qualified_name(type(self)):
            raise ValueError(
                f"the checkpoint holds a {info['class']} ({info['family']} family) but the config builds a "
                f"{qualified_name(type(self))}; resume with the config of the model that wrote the checkpoint."
            )


class GenerativeModel(PlatformModule):
    """A model that generates images through one protocol, used by grids, evaluation and the leaderboard:
    ``sample(num, *, cond, steps, generator, options)``, ``sampling_protocol``, ``sample_shape`` and
    ``interpolate``. A family says which ``SampleOptions`` it takes (``accepts``); any other that is given is
    refused in one sentence. An unconditional generator takes no condition (``models.conditional`` adds them).
    """

    #: The ``SampleOptions`` this family uses (``noise``, the starting noise, by default), and ``steps`` if the
    #: ``steps`` argument means something to it.
    accepts: ClassVar[frozenset[str]] = frozenset({"noise"})

    def sample(
        self,
        num: int,
        *,
        cond: dict | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        options: SampleOptions | None = None,
    ) -> Tensor:
        """``num`` images (num, C, H, W) in [-1, 1]: the one sampling protocol of every family.

        Args:
            num: number of images.
            cond: the condition, a dict of batch keys (``label``, ``text`` …); None: balanced labels for a
                class-conditional model, nothing otherwise.
            steps: sampler steps (None: the configured sampler's).
            generator: the random generator of every draw, for reproducible samples.
            options: sampler, guidance, temperature, truncation, noise, start … (``SampleOptions``).
        """
        raise NotImplementedError

    def checked(self, options: SampleOptions | None, *, steps: int | None = None) -> SampleOptions:
        """``options`` (None: the defaults), after refusing in one sentence every option this family does not
        take — and ``steps`` when it has no steps to set (``"steps"`` not in ``accepts``)."""
        options = options if options is not None else SampleOptions()
        refused = [name for name in options.given() if name not in self.accepts]
        if steps is not None and "steps" not in self.accepts:
            refused.insert(0, "steps")
        if refused:
            names = ", ".join(f"{name}=" for name in refused)
            raise ValueError(
                f"{type(self).__name__} ({self.family} family) does not take {names} in sample(); omit "
                f"{'it' if len(refused) == 1 else 'them'}."
            )
        return options

    def sampling_protocol(self, steps: int | None = None, options: SampleOptions | None = None) -> tuple[str, int]:
        """(sampler description, network evaluations per image) for ``sample`` with these settings."""
        return "direct", 1

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample's starting noise (``SampleOptions.noise``): the image shape for a
        pixel model, the latent's for a latent model, z's for a GAN or VAE."""
        return getattr(self, "_sample_shape", None) or self.image_shape

    @torch.no_grad()
    def interpolate(
        self, a: Tensor, b: Tensor, num: int, *, cond: dict | None = None, steps: int | None = None,
        options: SampleOptions | None = None,
    ) -> Tensor:  # fmt: skip
        """``num`` images along the great circle from noise ``a`` to ``b`` (1, *sample_shape), through a
        deterministic map from noise to image (DDIM η = 0, an ODE solver; a GAN or VAE is one already)."""
        noise = interpolate_noise(a, b, num).to(self.device)
        options = options or SampleOptions()
        extra = {"deterministic": True} if "deterministic" in self.accepts else {}
        return self.sample(num, cond=cond, steps=steps, options=options.but(noise=noise, **extra))

    # An unconditional generator: the part of the protocol that conditional families fill in.
    @property
    def conditioning(self) -> Conditioning:
        """The batch keys that condition this model, with their dropout and null (empty: unconditional)."""
        return Conditioning()

    @property
    def num_classes(self) -> int | None:
        return None

    @property
    def label_count(self) -> int | None:
        """The classes a sample can be asked for (None: none)."""
        return None

    def sample_cond(self, num: int, cond: dict | None, *, offset: int = 0) -> dict | None:
        """The condition of samples ``offset`` … ``offset + num − 1``: none for an unconditional generator."""
        if cond:
            raise ValueError(
                f"{type(self).__name__} ({self.family} family) is unconditional, so it takes no condition; omit cond."
            )
        return None
