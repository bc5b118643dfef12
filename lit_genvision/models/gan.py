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
from lit_genvision.models.base import GenerativeModel


def grad_norm(module: nn.Module) -> Tensor:
    grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
    return torch.cat(grads).norm() if grads else torch.zeros(())


class GANModel(GenerativeModel):
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
    ) -> None:
        super().__init__()
        self.save_config()
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

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real, y = batch["image"], self.conditioning.select(batch)
        n = real.shape[0]

        # Discriminator (critic) step, generator frozen.
        self.toggle_optimizer(opt_d)
        with torch.no_grad():
            fake = self.generator(self._z(n), y)
        d_real, d_fake = self.discriminator(real, y), self.discriminator(fake, y)
        loss_d = d_loss(self.loss_kind, d_real, d_fake)
        logs = {"d/loss": loss_d, "d/real": d_real.mean(), "d/fake": d_fake.mean()}
        critic = lambda x: self.discriminator(x, y)  # noqa: E731
        if self.gp_weight:
            gp = gradient_penalty(critic, real, fake)
            loss_d = loss_d + self.gp_weight * gp
            logs["d/gradient_penalty"] = gp
        if self.r1_weight:
            r1 = r1_penalty(critic, real)
            loss_d = loss_d + self.r1_weight / 2 * r1
            logs["d/r1"] = r1
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        logs["d/grad_norm"] = grad_norm(self.discriminator)
        opt_d.step()
        opt_d.zero_grad(set_to_none=True)  # nothing of D's step lingers into G's
        self.untoggle_optimizer(opt_d)

        # Generator step every n_critic batches, discriminator frozen.
        if (batch_idx + 1) % self.n_critic == 0:
            self.toggle_optimizer(opt_g)
            loss_g = g_loss(self.loss_kind, self.discriminator(self.generator(self._z(n), y), y))
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
        d_real = self.discriminator(batch["image"], y)
        d_fake = self.discriminator(self.generator(self._z(len(d_real), g), y), y)
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
        sampler: object | None = None,
        guidance: float | None = None,
        noise: Tensor | None = None,
        temperature: float | None = None,
    ) -> Tensor:
        """G(z, c), z ~ N(0, I); c is ``cond`` (labels balanced over the classes if not given).

        One generator pass: ``steps``, ``sampler``, ``guidance`` and ``temperature`` are refused.
        """
        self.refuse_options(steps=steps, sampler=sampler, guidance=guidance, temperature=temperature)
        z = noise if noise is not None else self._z(num, generator)
        cond = self.sample_cond(len(z), cond)
        with self.eval_mode(self.generator):
            return self.generator(z, cond).clamp(-1, 1)
