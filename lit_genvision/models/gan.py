"""GANModel: a generator and a discriminator trained in alternation with manual optimisation.

Each training step makes one discriminator (critic) update and, every ``n_critic`` steps, one
generator update. While one side updates, the other is frozen: Lightning's ``toggle_optimizer``
sets requires_grad=False on every parameter outside the stepping optimiser, so no gradient
reaches the frozen network. Note: ``trainer.max_steps`` counts optimiser steps of both sides.
"""

from __future__ import annotations

from typing import Any, ClassVar, get_args

import torch
from torch import Tensor, nn

from lit_genvision.checks import check_betas, check_float, check_int
from lit_genvision.methods.diffusion import randn_like
from lit_genvision.methods.gan import GANLoss, d_loss, g_loss, gradient_penalty, r1_penalty
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.models.conditional import ConditionalModel


def grad_norm(module: nn.Module) -> Tensor:
    grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
    return torch.cat(grads).norm() if grads else torch.zeros(())


class GANModel(ConditionalModel):
    """DCGAN / WGAN-GP / conditional GAN, by configuration.

    Args:
        generator: ``generator(z, cond)``, z (B, latent_dim) → images in [-1, 1]; exposes
            ``latent_dim``, and ``num_classes``/``cond_dim`` when conditioned on ``cond["label"]``
            or ``cond["vector"]``.
        discriminator: ``discriminator(images, cond)`` → scores (B,), conditioned like the generator.
        loss: ``non_saturating`` (DCGAN), ``minimax``, ``hinge`` or ``wasserstein`` (WGAN).
        gp_weight: λ of the gradient penalty on interpolates (10 for WGAN-GP; 0 = off).
        r1_weight: γ of the R1 penalty on real data (0 = off); the term is γ/2·E‖∇D(x)‖².
        n_critic: discriminator steps per generator step (5 for WGAN-GP).
        lr_g: generator learning rate.
        lr_d: discriminator learning rate (two time-scale: may differ from lr_g).
        betas: Adam betas, shared (DCGAN: 0.5, 0.999; WGAN-GP: 0.0, 0.9).
        image_shape: (C, H, W) of generated images; read from the generator by default.
        augment: discriminator augmentation for small data (``methods.augment``: ``AdaptiveAugment``,
            StyleGAN2-ADA, or ``DiffAugment``): the discriminator sees every real and fake image through
            it, the generator's gradient flows back through it, and an adaptive one tunes its p from
            the discriminator's outputs on the reals (None: off).
    """

    family = "gan"
    #: What the EMA averages: the generator samples; the discriminator is never averaged.
    ema_modules: ClassVar[tuple[str, ...]] = ("generator",)

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss = "non_saturating",
        gp_weight: float = 0.0,
        r1_weight: float = 0.0,
        n_critic: int = 1,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        image_shape: tuple[int, int, int] | None = None,
        augment: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.save_config()  # a subclass saves its own arguments after this (the last save is kept)
        self.automatic_optimization = False
        if loss not in get_args(GANLoss):
            raise ValueError(f"loss must be one of {', '.join(get_args(GANLoss))}, got {loss!r}.")
        check_int("n_critic", n_critic, low=1, hint="pass 1 for alternating updates or 5 for WGAN-GP")
        check_float("gp_weight", gp_weight, low=0, hint="pass 0 to turn the gradient penalty off")
        check_float("r1_weight", r1_weight, low=0, hint="pass 0 to turn the R1 penalty off")
        check_float("lr_g", lr_g, low=0, low_open=True, hint="pass a positive learning rate such as 2e-4")
        check_float("lr_d", lr_d, low=0, low_open=True, hint="pass a positive learning rate such as 2e-4")
        betas = check_betas(betas)
        for attr in ("num_classes", "cond_dim"):
            g_value, d_value = getattr(generator, attr, None), getattr(discriminator, attr, None)
            if g_value != d_value:
                raise ValueError(
                    f"the generator has {attr}={g_value} but the discriminator {attr}={d_value}; build both "
                    "with the same conditioning."
                )
        self.generator, self.discriminator = generator, discriminator
        self.loss_kind, self.gp_weight, self.r1_weight, self.n_critic = loss, gp_weight, r1_weight, n_critic
        self.lr_g, self.lr_d, self.betas = lr_g, lr_d, tuple(betas)
        self.image_shape = tuple(image_shape or (generator.in_channels, generator.image_size, generator.image_size))
        self.augment = augment

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """A GAN starts from z (latent_dim,)."""
        return (self.generator.latent_dim,)

    @property
    def cond_net(self) -> nn.Module:
        """The generator says what conditions the GAN (``label``, ``vector``); the discriminator
        must be built with the same. A GAN learns no null condition: nothing is dropped."""
        return self.generator

    def setup(self, stage: str) -> None:
        super().setup(stage)
        # Under DDP each backward reaches only one of the two networks (the other is frozen).
        self.allow_unused_parameters_under_ddp()

    def _z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return randn_like(torch.empty(n, self.generator.latent_dim, device=self.device), generator)

    # The pieces of a training step a GAN variant changes (ProGAN's stage, StyleGAN's regularisers).

    def generate(self, z: Tensor, cond: dict | None) -> Tensor:
        """G(z, c): the generator's images in training (a variant adds its stage or style mixing)."""
        return self.generator(z, cond)

    def discriminate(self, images: Tensor, cond: dict | None) -> Tensor:
        """D(x, c) (B,): the discriminator's scores (logits or critic values)."""
        return self.discriminator(images, cond).flatten()

    def critic(self, images: Tensor, cond: dict | None) -> Tensor:
        """D(aug(x), c) (B,): what training scores, through ``augment`` when it is set."""
        if self.augment is not None:
            images = self.augment(images)
        return self.discriminate(images, cond)

    def real_images(self, batch: dict[str, Tensor]) -> Tensor:
        """The real images the discriminator compares with the generator's."""
        return batch["image"]

    def d_penalties(self, real: Tensor, fake: Tensor, cond: dict | None, d_real: Tensor, logs: dict) -> Tensor:
        """Regularisers added to the discriminator's loss: λ·GP and γ/2·R1 when set."""
        critic = lambda x: self.critic(x, cond)  # noqa: E731
        total = torch.zeros((), device=real.device)
        if self.gp_weight:
            gp = gradient_penalty(critic, real, fake)
            total = total + self.gp_weight * gp
            logs["d/gradient_penalty"] = gp
        if self.r1_weight:
            r1 = r1_penalty(critic, real)
            total = total + self.r1_weight / 2 * r1
            logs["d/r1"] = r1
        return total

    def g_loss(self, z: Tensor, cond: dict | None, logs: dict) -> Tensor:
        """The generator's loss on a batch of fakes from ``z`` (a variant adds its regularisers)."""
        return g_loss(self.loss_kind, self.critic(self.generate(z, cond), cond))

    def after_d_step(self, real: Tensor, d_real: Tensor, logs: dict) -> None:
        """After each discriminator step: an adaptive augmentation reads D's outputs on the reals."""
        if self.augment is not None:
            update = getattr(self.augment, "update", None)
            if update is not None:
                update(d_real.detach())
            logs["aug/p"] = float(self.augment.probability)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real, y = self.real_images(batch), self.conditioning.select(batch)
        n = real.shape[0]

        # Discriminator (critic) step, generator frozen.
        self.toggle_optimizer(opt_d)
        with torch.no_grad():
            fake = self.generate(self._z(n), y)
        d_real, d_fake = self.critic(real, y), self.critic(fake, y)
        loss_d = d_loss(self.loss_kind, d_real, d_fake)
        logs = {"d/loss": loss_d, "d/real": d_real.mean(), "d/fake": d_fake.mean()}
        loss_d = loss_d + self.d_penalties(real, fake, y, d_real, logs)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        logs["d/grad_norm"] = grad_norm(self.discriminator)
        opt_d.step()
        opt_d.zero_grad(set_to_none=True)  # nothing of D's step lingers into G's
        self.untoggle_optimizer(opt_d)
        self.after_d_step(real, d_real, logs)

        # Generator step every n_critic batches, discriminator frozen.
        if (batch_idx + 1) % self.n_critic == 0:
            self.toggle_optimizer(opt_g)
            loss_g = self.g_loss(self._z(n), y, logs)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(loss_g)
            logs |= {"g/loss": loss_g, "g/grad_norm": grad_norm(self.generator)}
            opt_g.step()
            opt_g.zero_grad(set_to_none=True)
            self.untoggle_optimizer(opt_g)
        self.log_dict(logs, prog_bar=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        y = self.conditioning.select(batch)
        g = torch.Generator(device=self.device).manual_seed(batch_idx)
        real = self.real_images(batch)
        d_real = self.discriminate(real, y)
        d_fake = self.discriminate(self.generate(self._z(len(d_real), g), y), y)
        self.log_dict({"val/d_real": d_real.mean(), "val/d_fake": d_fake.mean()}, sync_dist=True)

    def configure_optimizers(self) -> Any:
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.lr_g, betas=self.betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.lr_d, betas=self.betas)
        return [opt_g, opt_d]

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
        """G(z, c), z ~ N(0, I) (or ``options.noise``); c is ``cond`` (labels balanced over the classes if not
        given). One generator pass: ``steps`` and every sampler option but the noise are refused."""
        options = self.checked(options, steps=steps)
        z = options.noise if options.noise is not None else self._z(num, generator)
        with self.eval_mode(self.generator):
            return self.draw(z, self.sample_cond(len(z), cond), options).clamp(-1, 1)

    def draw(self, z: Tensor, cond: dict | None, options: SampleOptions | None = None) -> Tensor:
        """The generator's images for ``sample`` (eval mode is set by the caller)."""
        return self.generator(z, cond)
