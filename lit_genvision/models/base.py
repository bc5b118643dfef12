"""What every LightningModule of the platform shares: the batch-key check at setup, a record of
the family in each checkpoint, and the ``sample`` protocol of generative models."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from torch import Tensor, nn

from lit_genvision.methods.guidance import Conditioning, CondKey, NullLabel, NullVector, classifier_free_guidance
from lit_genvision.methods.interpolation import interpolate_noise
from lit_genvision.methods.masks import MaskGenerator
from lit_genvision.methods.space import PixelSpace
from lit_genvision.models.conditions import (
    DERIVED_KEYS,
    as_mask,
    ensure_scale,
    ensure_tokenizer,
    inpaint_input,
    null_rule,
)

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
        frame = inspect.currentframe().f_back  # the subclass __init__
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
    """A model that generates images through one protocol, used by grids, evaluation and the leaderboard.

    Conditioning is a dict of batch keys, declared by ``conditioning``: by default the keys its
    network takes — ``label`` when it has ``num_classes`` (null class K), ``vector`` when it has
    ``cond_dim`` (a per-sample vector, null = learned embedding). Training drops key k of each
    sample with probability p_k (``cond_dropout[k]``, else ``label_dropout``); sampling without a
    condition draws balanced labels; ``guidance_scale`` applies classifier-free guidance over every
    conditioning key (see ``methods.guidance``).
    """

    label_dropout: float = 0.0
    #: Per-key dropout probabilities overriding ``label_dropout`` (None: ``label_dropout`` for every key).
    cond_dropout: dict[str, float] | None = None
    guidance_scale: float = 1.0
    #: A text model's prompt of class k at index k: its default condition (balanced classes).
    class_prompts: list[str] | None = None
    #: The synthetic masks an inpainting model trains on (``methods.masks.MaskGenerator``).
    inpaint_masks: MaskGenerator | None = None

    def init_conditions(self, class_prompts: list[str] | None, inpaint_masks: MaskGenerator | None) -> None:
        """Keep the default prompts and the training masks of a text or inpainting model (both
        unused by a network that reads neither)."""
        if class_prompts is not None and (not class_prompts or not all(isinstance(p, str) for p in class_prompts)):
            raise ValueError("class_prompts must be a non-empty list of strings, the prompt of class k at index k.")
        self.class_prompts = list(class_prompts) if class_prompts else None
        parts = {"text_encoder": getattr(self.cond_net, "text_encoder", None), "first_stage": self.space}
        for name, part in parts.items():  # frozen pretrained parts (CLIP's text tower, an autoencoder)
            record = getattr(part, "pretrained_record", None)
            if record is not None:  # say which checkpoint in this model's, so it rebuilds without the file
                from lit_genvision.models.pretrained import record_pretrained

                record_pretrained(self, name, record)
        if inpaint_masks is None and "inpaint" in getattr(self.cond_net, "condition_keys", ()):
            inpaint_masks = MaskGenerator()
        self.inpaint_masks = inpaint_masks

    def init_space(self, space: nn.Module | None, net: nn.Module, image_shape: tuple[int, ...] | None) -> None:
        """Set ``space`` (pixels by default; see ``methods.space``), ``image_shape`` — the decoded
        images' (C, H, W), which ``evaluate`` records — and ``sample_shape``, what the sampler runs
        on (the network's input: pixels, or latents of a frozen autoencoder). Given ``image_shape``
        the latent shape follows from the space; otherwise the image shape from the network's."""
        self.space = space if space is not None else PixelSpace()
        if image_shape is not None:
            self.image_shape = tuple(image_shape)
            self._sample_shape = tuple(self.space.sample_shape(self.image_shape))
        else:
            self._sample_shape = (net.in_channels, net.image_size, net.image_size)
            self.image_shape = tuple(self.space.image_shape(self._sample_shape))

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample's starting noise (``sample(noise=)``): the image shape for a
        pixel model, the latent's for a latent model, z's for a GAN or VAE."""
        return getattr(self, "_sample_shape", None) or self.image_shape

    @property
    def cond_net(self) -> nn.Module | None:
        """The network whose ``num_classes``/``cond_dim`` say what conditions the model (``net``;
        a GAN's generator)."""
        return getattr(self, "net", None)

    @property
    def num_classes(self) -> int | None:
        return getattr(self.cond_net, "num_classes", None)

    def dropout_of(self, key: str) -> float:
        """p_k: the probability that condition key ``key`` is dropped in training."""
        return float((self.cond_dropout or {}).get(key, self.label_dropout))

    @property
    def conditioning(self) -> Conditioning:
        """The batch keys that condition this model, each with its dropout and null rule (empty:
        unconditional). A family whose network takes other conditions overrides this."""
        keys = []
        if self.num_classes:
            keys.append(CondKey("label", self.dropout_of("label"), NullLabel(self.num_classes)))
        if getattr(self.cond_net, "cond_dim", None):
            keys.append(CondKey("vector", self.dropout_of("vector"), NullVector()))
        for key in getattr(self.cond_net, "condition_keys", ()):  # text, maps, layouts, inpainting
            p = 0.0 if key == "boxes" else self.dropout_of(key)  # a layout drops through its labels
            keys.append(CondKey(key, p, null_rule(key, self.cond_net)))
        return Conditioning(tuple(keys))

    def required_keys(self) -> tuple[str, ...]:
        return self.requires + tuple(k for k in self.conditioning.batch_keys if k not in DERIVED_KEYS)

    def setup(self, stage: str) -> None:
        """At fit start: train a text encoder's tokenizer on the training captions and measure a
        latent space's scale factor on the training images, when they are not set yet."""
        super().setup(stage)
        if stage != "fit" or getattr(self, "_trainer", None) is None:
            return
        encoder = getattr(self.cond_net, "text_encoder", None)
        if encoder is not None:
            ensure_tokenizer(self.trainer, encoder)
        space = getattr(self, "space", None)
        if space is not None:
            ensure_scale(self.trainer, space, self.device)

    def with_derived(self, batch: dict[str, Any]) -> dict[str, Any]:
        """``batch`` with the conditions the model builds itself: an inpainting model's ``inpaint``
        from the images and masks drawn by ``inpaint_masks`` (the global RNG: it resumes bitwise)."""
        if "inpaint" not in self.conditioning.batch_keys or "inpaint" in batch:
            return batch
        images = batch["image"]
        masks = self.inpaint_masks(len(images), images.shape[-2], images.shape[-1], device=images.device)
        return {**batch, "inpaint": inpaint_input(self.space, images, masks.to(images.dtype))}

    def train_cond(self, batch: dict[str, Tensor]) -> dict[str, Tensor] | None:
        """The training condition: each conditioning key dropped to its null with probability p_k
        (labels: to the null label K, as ``drop_labels`` does), or None if unconditional."""
        return self.conditioning.drop(self.with_derived(batch))

    def val_cond(self, batch: dict[str, Tensor]) -> dict[str, Tensor] | None:
        """The validation condition: the batch's conditioning keys, nothing dropped (None if unconditional)."""
        return self.conditioning.select(self.with_derived(batch))

    def sample_cond(self, num: int, cond: dict | None, *, offset: int = 0) -> dict | None:
        """The given condition, or balanced labels for a conditional model: sample i of the run
        gets label i mod K, where this batch's first sample is sample ``offset`` of the run (so a
        run split into batches has the same labels as one batch). Other keys left out are null.
        A given ``mask`` and ``image`` (inpainting: 1 where pixels are to be generated) become the
        network's inpainting input, and ``sample`` composites the known pixels back."""
        if cond is not None:
            if "mask" in cond and "image" in cond and "inpaint" not in cond:  # the known pixels of an inpainting
                cond = self.inpainting_cond(cond)
            if not self.conditioning:
                raise ValueError(
                    f"{type(self).__name__} is not class-conditional nor otherwise conditioned (its network has "
                    "no num_classes or cond_dim), so it takes no condition; omit cond."
                )
            if "label" in cond and "text" not in cond and self.prompted:  # a class asked for by its prompt
                return {**cond, "text": [self.class_prompts[k] for k in cond["label"].tolist()]}
            return cond
        if self.prompted:
            labels = (offset + torch.arange(num, device=self.device)) % len(self.class_prompts)
            return {"text": [self.class_prompts[k] for k in labels.tolist()], "label": labels}
        if not self.num_classes:
            return None
        return {"label": (offset + torch.arange(num, device=self.device)) % self.num_classes}

    @property
    def prompted(self) -> bool:
        """Whether the model reads text and has a prompt per class (``class_prompts``)."""
        return bool(self.class_prompts) and "text" in self.conditioning.batch_keys

    @property
    def label_count(self) -> int | None:
        """The classes a sample can be asked for: the label classes, or the class prompts."""
        return self.num_classes or (len(self.class_prompts) if self.prompted else None)

    def inpaint(self, images: Tensor, masks: Tensor, *, cond: dict | None = None, **options: Any) -> Tensor:
        """Fill the masked pixels of ``images`` (N, C, H, W) in [-1, 1]; ``masks`` (N, H, W) or
        (N, 1, H, W), 1 where pixels are to be generated: ``sample`` with ``cond={"mask", "image"}``
        (and any other condition in ``cond``); ``options`` go to ``sample``."""
        return self.sample(len(images), cond={**(cond or {}), "mask": masks, "image": images}, **options)

    def inpainting_cond(self, cond: dict) -> dict:
        """``cond`` with the inpainting input built from its ``mask`` and ``image`` (the known pixels),
        and its mask as float (N, 1, H, W) for ``composite``."""
        if "inpaint" not in self.conditioning.batch_keys:
            raise ValueError(
                f"{type(self).__name__} was not trained to inpaint (its network has no inpainting input); use a "
                "checkpoint of an inpainting config such as configs/diffusion/digits_inpainting.yaml."
            )
        images = cond["image"].to(self.device)
        masks = as_mask(cond["mask"], images)
        return {**cond, "image": images, "mask": masks, "inpaint": inpaint_input(self.space, images, masks)}

    @staticmethod
    def composite(images: Tensor, cond: dict | None) -> Tensor:
        """The known pixels composited back, x = m·x_gen + (1 − m)·x_known, when ``cond`` holds an
        inpainting ``mask`` and ``image``: they come out exactly as given (diffusers' inpainting
        pipelines do the same); other samples are returned as they are."""
        if not cond or "mask" not in cond or "image" not in cond:
            return images
        masks = cond["mask"].to(images)
        return masks * images + (1 - masks) * cond["image"].to(images)

    def guided_net(self, scale: float | None = None):
        """The network as the samplers call it, with classifier-free guidance over every
        conditioning key when conditional: u + s·(c − u)."""
        scale = self.guidance_scale if scale is None else scale
        conditioning = self.conditioning
        return classifier_free_guidance(self.net, scale, conditioning) if conditioning else self.net

    def make_sampler(self, name: str | None, **options: Any) -> object | None:
        """A sampler for ``sample(..., sampler=)`` from a command-line name (None: the configured one)."""
        if name is None:
            return None
        raise ValueError(f"{type(self).__name__} has no sampler named {name!r}.")

    def guided_protocol(self, sampler_name: str, nfe: int) -> tuple[str, int]:
        """Name and NFE of a sampler run through ``guided_net``: ``+cfgS`` on the name of a
        conditional model, and two network passes per step when 0 < S ≠ 1 (both branches run)."""
        if not self.conditioning:
            return sampler_name, nfe
        guided = self.guidance_scale not in (0.0, 1.0)
        return f"{sampler_name}+cfg{self.guidance_scale:g}", nfe * (2 if guided else 1)

    def deterministic_sampler(self) -> object | None:
        """A sampler that maps noise to images deterministically (for interpolation); None: the default is."""
        return None

    def sample(
        self,
        num: int,
        *,
        cond: dict | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        sampler: object | None = None,
        guidance: float | None = None,
        noise: Tensor | None = None,
        temperature: float | None = None,
    ) -> Tensor:
        """``num`` images (num, C, H, W) in [-1, 1]: the one sampling protocol of every family.

        Args:
            num: number of images.
            cond: the condition, a dict of batch keys (``label`` …); None: balanced labels for a
                class-conditional model, nothing otherwise.
            steps: sampler steps (None: the configured sampler's).
            generator: the random generator of every draw, for reproducible samples.
            sampler: a sampler from ``make_sampler`` (None: the configured one).
            guidance: classifier-free guidance scale s (None: ``guidance_scale``).
            noise: the starting noise (num, *sample_shape) instead of a fresh draw, e.g. for interpolation.
            temperature: softmax temperature of a token sampler.

        A family that has no use for an option refuses it when given (``refuse_options``) rather
        than ignoring it.
        """
        raise NotImplementedError

    @torch.no_grad()
    def interpolate(self, a: Tensor, b: Tensor, num: int, *, cond: dict | None = None, **options: Any) -> Tensor:
        """``num`` images along the great circle from noise ``a`` to ``b`` (1, *sample_shape), through a
        deterministic map from noise to image (DDIM η = 0, an ODE solver; a GAN or VAE is one already).
        ``options`` go to ``sample`` (``steps``, ``sampler``)."""
        noise = interpolate_noise(a, b, num).to(self.device)
        options["sampler"] = options.get("sampler") or self.deterministic_sampler()
        return self.sample(num, cond=cond, noise=noise, **options)

    def refuse_options(self, **given: object) -> None:
        """Refuse, with one sentence, each sampling option given (not None) that this family has no use for."""
        names = [name for name, value in given.items() if value is not None]
        if names:
            options = ", ".join(f"{name}=" for name in names)
            raise ValueError(
                f"{type(self).__name__} ({self.family} family) does not take {options} in sample(); omit "
                f"{'it' if len(names) == 1 else 'them'}."
            )

    def sampling_protocol(self, steps: int | None = None, sampler: object | None = None) -> tuple[str, int]:
        """(sampler description, network evaluations per image) for ``sample`` with these settings."""
        return "direct", 1
