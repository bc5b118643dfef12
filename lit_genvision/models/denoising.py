"""DenoisingModel: one LightningModule for every model trained to denoise — diffusion and flow matching, on
pixels or the latents of a frozen autoencoder, under any conditions — wiring an injected network, method,
space and optimiser. A new family of this kind is a network, a condition or a method plus a YAML file:

    model:
      class_path: lit_genvision.models.DenoisingModel
      init_args:
        net: {class_path: lit_genvision.nn.UNet, init_args: {in_channels: 1, image_size: 16, channels: 32}}
        method:
          class_path: lit_genvision.methods.DiffusionMethod
          init_args:
            schedule: {class_path: lit_genvision.methods.CosineSchedule, init_args: {timesteps: 1000}}
            sampler: {class_path: lit_genvision.methods.DDIMSampler, init_args: {steps: 50}}
        optimizer: {class_path: torch.optim.AdamW, init_args: {lr: 1.0e-3, weight_decay: 0.0}}
        lr_scheduler: {class_path: lit_genvision.models.LinearWarmup, init_args: {warmup_steps: 100}}
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from lit_genvision.methods.denoising import DenoisingMethod, DiffusionMethod, Start
from lit_genvision.methods.diffusion import randn_like
from lit_genvision.methods.masks import MaskGenerator
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.methods.space import PixelSpace
from lit_genvision.models.conditional import ConditionalModel, check_conditioning_arguments
from lit_genvision.models.conditions import ensure_scale, ensure_tokenizer
from lit_genvision.models.optim import check_injected, optimizers
from lit_genvision.models.pretrained import record_parts


class DenoisingModel(ConditionalModel):
    """A denoising network trained and sampled by a method, in a space, under its conditions.

    Args:
        net: the denoiser ``net(x_t, t, cond)`` (a ``UNet``, a ``DiT``, a ``ConditionedNet``); it must expose
            ``in_channels`` and ``image_size`` unless ``image_shape`` is given. Its conditions (``nn.conditions``)
            are the model's: a ``num_classes`` network is class-conditional, a ``cond_dim`` one reads ``vector``.
        method: how it is trained and sampled (``DiffusionMethod``, the default, or ``FlowMethod``).
        space: where the method runs: ``PixelSpace`` (default; x̂_0 clipped, output clamped) or a latent space
            over a frozen autoencoder (``FirstStage``; samples are decoded).
        optimizer: the optimiser, given the network's parameters (LightningCLI's ``OptimizerCallable``;
            default AdamW at 2e-4, no weight decay).
        lr_scheduler: an optional scheduler of that optimiser, stepped every optimiser step (``LinearWarmup``).
        label_dropout: probability p_k of training a sample with condition key k nulled (classifier-free
            guidance), for every key ``cond_dropout`` does not name.
        cond_dropout: per-key p_k (``{"text": 0.1}``).
        guidance_scale: default guidance scale s at sampling (0 unconditional, 1 conditional, > 1 guided).
        image_shape: (C, H, W) of generated images; read from the network (and space) by default.
        class_prompts: a text model's prompt of class k at index k: what it draws when sampled without a
            prompt (grids, ``evaluate``).
        inpaint_masks: the synthetic masks a known-region (inpainting) net trains on (box, brush, border by default).
    """

    accepts: ClassVar[frozenset[str]] = frozenset(
        "steps sampler eta rtol atol guidance noise start deterministic callback repaint".split()
    )
    #: What the EMA averages: the denoising network (the method and a latent space's autoencoder have no
    #: trainable weights).
    ema_modules: ClassVar[tuple[str, ...]] = ("net",)

    def __init__(
        self,
        net: nn.Module,
        method: DenoisingMethod | None = None,
        space: nn.Module | None = None,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        label_dropout: float = 0.1,
        cond_dropout: dict[str, float] | None = None,
        guidance_scale: float = 1.0,
        image_shape: tuple[int, ...] | None = None,
        class_prompts: list[str] | None = None,
        inpaint_masks: MaskGenerator | None = None,
    ) -> None:
        super().__init__()
        self.save_config()
        check_conditioning_arguments(label_dropout, guidance_scale, cond_dropout)
        check_injected(optimizer, lr_scheduler)
        self.net = net
        self.method = method if method is not None else DiffusionMethod()
        self.optimizer, self.lr_scheduler = optimizer, lr_scheduler
        self.label_dropout, self.guidance_scale = label_dropout, guidance_scale
        self.cond_dropout = dict(cond_dropout) if cond_dropout else None
        self.space = space if space is not None else PixelSpace()
        if image_shape is not None:
            self.image_shape = tuple(image_shape)
            self._sample_shape = tuple(self.space.sample_shape(self.image_shape))
        else:
            self._sample_shape = (net.in_channels, net.image_size, net.image_size)
            self.image_shape = tuple(self.space.image_shape(self._sample_shape))
        self.init_conditions(class_prompts, inpaint_masks)
        record_parts(self)  # a first stage's or a text encoder's checkpoint, by path, hash, class and config
        self.last_nfe = 0

    @property
    def family(self) -> str:  # type: ignore[override]
        """The method's family: ``diffusion`` or ``flow_matching``."""
        return self.method.family

    def setup(self, stage: str) -> None:
        """At fit start: train a text encoder's tokenizer on the training captions and measure a latent space's
        scale factor on the training images, when they are not set yet."""
        super().setup(stage)
        if stage != "fit" or getattr(self, "_trainer", None) is None:
            return
        encoder = getattr(self.net, "text_encoder", None)
        if encoder is not None:
            ensure_tokenizer(self.trainer, encoder)
        ensure_scale(self.trainer, self.space, self.device)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.method.loss(self.net, self.space.encode(batch["image"]), self.train_cond(batch))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["image"]))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # A fixed generator per batch makes the validation loss comparable across epochs and
        # leaves the global RNG (and so training) untouched.
        g = torch.Generator(device=self.device).manual_seed(batch_idx)
        loss = self.method.loss(self.net, self.space.encode(batch["image"]), self.val_cond(batch), g)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(batch["image"]))

    def configure_optimizers(self) -> Any:
        return optimizers(self.net.parameters(), self.optimizer, self.lr_scheduler)

    def method_for(self, options: SampleOptions) -> DenoisingMethod:
        """The method as ``options`` ask: another sampler by name or object, DDIM's η, dopri5's tolerances, or
        a deterministic sampler (for interpolation)."""
        method = self.method
        if options.sampler_name is not None:
            method = method.with_sampler(options.sampler_name, **options.sampler_settings)
        return method.deterministic() if options.deterministic else method

    def sampling_protocol(self, steps: int | None = None, options: SampleOptions | None = None) -> tuple[str, int]:
        options = options or SampleOptions()
        name, nfe = self.method_for(options).protocol(steps)
        if options.repaint is not None:
            name, nfe = options.repaint.protocol(name, nfe)
        return self.guided_protocol(name, nfe or self.last_nfe, options.guidance)  # dopri5: the last solve's

    @torch.no_grad()
    def sample(
        self,
        num: int,
        *,
        cond: dict | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        options: SampleOptions | None = None,
    ) -> Tensor:
        """Draw the starting noise (or take ``options.noise``) and run the method's reverse process in the
        model's space, the condition encoded once; returns (num, *image_shape) in [-1, 1]. With
        ``options.repaint`` (an inpainting), RePaint's resampling around the known region (``known_region``)."""
        options = self.checked(options, steps=steps)
        scale = self.guidance_of(options.guidance)
        method = self.method_for(options)
        noise = options.noise
        if noise is None:
            noise = randn_like(torch.empty((num, *self.sample_shape), device=self.device), generator)
        noise = noise.to(self.device)
        cond = self.sample_cond(len(noise), cond)
        start = options.start
        if start is not None:
            start = Start(self.space.encode(start.x0.to(self.device)), start.strength)
        with self.eval_mode(self.net):
            net, encoded = self.guided_net(cond, noise, scale)
            if options.repaint is not None:
                known, mask = self.known_region(cond, noise, start)
                x = options.repaint.sample(
                    method, net, noise, encoded, known, mask, steps, generator,
                    clip=self.space.bounded, callback=options.callback,
                )  # fmt: skip
            else:
                x = method.sample(
                    net, noise, encoded, steps, generator, start, clip=self.space.bounded, callback=options.callback
                )
        self.last_nfe = getattr(method, "last_nfe", 0)  # an adaptive solver's, known only now
        return self.composite(self.space.decode(x), cond)

    @torch.no_grad()
    def invert(self, images: Tensor, *, cond: dict | None = None, steps: int | None = None) -> Tensor:
        """The starting noise (N, *sample_shape) from which ``sample`` with ``cond``, DDIM at η = 0 and no guidance
        (s = 1) decodes ≈ ``images`` (N, *image_shape) in [-1, 1]: DDIM inversion in the model's space under the
        condition (``methods.inversion``), what DALL-E 2's variations start from."""
        x0 = self.space.encode(images.to(self.device))
        cond = self.sample_cond(len(x0), cond)
        with self.eval_mode(self.net):
            return self.method.invert(self.net, x0, self.encode(cond, x0), steps)

    def known_region(self, cond: dict | None, like: Tensor, start: Start | None = None) -> tuple[Tensor, Tensor]:
        """(the known sample in the model's space, its mask (B, 1, h, w), 1 = to generate) of an inpainting's
        ``cond``, for RePaint: a latent cell is to be generated if any of its pixels is (max-pooling)."""
        if start is not None:
            raise ValueError("repaint= inpaints from noise; it does not take start= (a part-way start). Omit one.")
        if not cond or "mask" not in cond or "image" not in cond:
            raise ValueError(
                "repaint= resamples an inpainting: call inpaint(images, masks, ...) or pass cond={'image', 'mask'}."
            )
        known = self.space.encode(cond["image"].to(like.device))
        mask = cond["mask"].to(like)
        if mask.shape[-2:] != known.shape[-2:]:
            mask = F.adaptive_max_pool2d(mask, known.shape[-2:])
        return known.to(like), mask
