"""AutoencoderModel and VAEModel: an encoder and a decoder, with (for the VAE) the KL term."""

from __future__ import annotations

from typing import Any, ClassVar, get_args

import torch
from torch import Tensor, nn

from lit_genvision.checks import check_float, check_int
from lit_genvision.methods.diffusion import randn_like
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.methods.vae import (
    Reconstruction,
    kl_divergence,
    kl_monte_carlo,
    kl_weight,
    mixture_log_prob,
    reconstruction_loss,
    reparameterize,
    sample_mixture,
    to_image,
)
from lit_genvision.models.base import GenerativeModel, PlatformModule


def check_reconstruction(kind: str) -> None:
    """Refuse a reconstruction loss other than ``mse`` or ``bce`` at construction."""
    if kind not in get_args(Reconstruction):
        raise ValueError(f"reconstruction must be one of {', '.join(get_args(Reconstruction))}, got {kind!r}.")


class _Latent:
    """encode / decode / reconstruct, the interface of the latent tools (`lit-genvision latent`)."""

    encoder: nn.Module
    decoder: nn.Module
    reconstruction: Reconstruction
    #: What the EMA averages: both halves (``sample`` decodes; the latent tools encode and decode).
    ema_modules: ClassVar[tuple[str, ...]] = ("encoder", "decoder")

    def encode(self, x: Tensor) -> Tensor:
        """The latent code of images in [-1, 1] (the mean for a VAE)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """Images in [-1, 1] from latent codes."""
        return to_image(self.reconstruction, self.decoder(z))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def _log_recon(self, batch: dict[str, Tensor], split: str) -> Tensor:
        x = batch["image"]
        err = (self.reconstruct(x) - x).pow(2).mean()
        self.log(f"{split}/recon_mse", err, prog_bar=True, sync_dist=True)
        return err


class AutoencoderModel(_Latent, PlatformModule):
    """Deterministic autoencoder: x → z = encoder(x) → decoder(z), trained on reconstruction.

    Args:
        encoder: image → latent (``ConvEncoder`` with ``out_dim`` = latent size).
        decoder: latent → image (``ConvDecoder``).
        reconstruction: ``mse`` or ``bce``.
        lr: Adam learning rate.
    """

    family = "autoencoder"

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, reconstruction: Reconstruction = "bce", lr: float = 1e-3
    ) -> None:
        super().__init__()
        self.save_config()
        check_reconstruction(reconstruction)
        check_float("lr", lr, low=0, low_open=True, hint="pass a positive learning rate such as 1e-3")
        self.encoder, self.decoder, self.reconstruction, self.lr = encoder, decoder, reconstruction, lr

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = reconstruction_loss(self.reconstruction, self.decoder(self.encoder(batch["image"])), batch["image"])
        self.log("train/loss", loss.mean(), prog_bar=True)
        return loss.mean()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._log_recon(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._log_recon(batch, "test")

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class VAEModel(_Latent, GenerativeModel):
    """Variational autoencoder: the encoder predicts z_mean and z_log_var, z = μ + σε, and the loss
    adds β·D_KL[q(z|x) ‖ p(z)] (β phased in over ``kl_warmup_steps``). ``sample`` decodes
    z ~ p(z), so a VAE is scored like any generator.

    The prior p(z) is N(0, I) (KL in closed form), or with ``prior_components`` = K ≥ 1 a mixture
    of K diagonal Gaussians learned with the rest (``prior``: logits, means, log_vars; KL by the
    one-sample estimate log q(z|x) − log p(z)) that follows the codes of the training images, so
    fewer samples are decoded from the holes they leave in N(0, I) (Tomczak & Welling 2018).

    Args:
        encoder: image → 2·latent_dim (``ConvEncoder`` with ``out_dim`` = 2·latent_dim).
        decoder: latent → image (``ConvDecoder``).
        latent_dim: size of z.
        reconstruction: ``mse`` or ``bce`` (summed over pixels, so the KL keeps its ELBO weight).
        beta: weight of the KL term (1: the ELBO; >1: β-VAE).
        kl_warmup_steps: steps over which β ramps up from 0.
        prior_components: 0 for the fixed N(0, I) prior; K ≥ 1 for a learned mixture of K Gaussians.
        lr: Adam learning rate.
        image_shape: (C, H, W) of generated images; read from the decoder by default.
    """

    family = "vae"

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int = 2,
        reconstruction: Reconstruction = "bce",
        beta: float = 1.0,
        kl_warmup_steps: int = 0,
        prior_components: int = 0,
        lr: float = 1e-3,
        image_shape: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__()
        self.save_config()
        check_int("latent_dim", latent_dim, low=1, hint="pass the size of z, e.g. 8")
        check_reconstruction(reconstruction)
        check_float("beta", beta, low=0, hint="pass 1 for the ELBO or more for a beta-VAE")
        check_int("kl_warmup_steps", kl_warmup_steps, low=0, hint="pass 0 to apply beta from the first step")
        check_int("prior_components", prior_components, low=0, hint="pass 0 for N(0, I) or K >= 1 mixture components")
        check_float("lr", lr, low=0, low_open=True, hint="pass a positive learning rate such as 1e-3")
        self.encoder, self.decoder, self.latent_dim = encoder, decoder, latent_dim
        self.reconstruction, self.beta, self.kl_warmup_steps, self.lr = reconstruction, beta, kl_warmup_steps, lr
        side = decoder.start * 2 ** len(decoder.deconvs)
        self.image_shape = tuple(image_shape or (decoder.out.out_channels, side, side))
        self.prior: nn.ParameterDict | None = None
        if prior_components:
            # equal weights, unit variances, means drawn from N(0, I): the mixture starts as a
            # spread-out version of the standard prior and moves toward the encoder's codes
            self.prior = nn.ParameterDict(
                {
                    "logits": nn.Parameter(torch.zeros(prior_components)),
                    "means": nn.Parameter(torch.randn(prior_components, latent_dim)),
                    "log_vars": nn.Parameter(torch.zeros(prior_components, latent_dim)),
                }
            )
            self.ema_modules = (*type(self).ema_modules, "prior")  # sampling reads the prior too

    def encode_distribution(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(z_mean, z_log_var), each (B, latent_dim)."""
        z_mean, z_log_var = self.encoder(x).chunk(2, dim=1)
        return z_mean, z_log_var.clamp(-30, 20)

    def encode(self, x: Tensor) -> Tensor:
        return self.encode_distribution(x)[0]

    def _prior_parameters(self) -> tuple[Tensor, Tensor, Tensor]:
        """(logits (K,), means (K, D), log_vars (K, D)) of the learned mixture prior."""
        assert self.prior is not None
        return self.prior["logits"], self.prior["means"], self.prior["log_vars"].clamp(-30, 20)

    def kl(self, z: Tensor, z_mean: Tensor, z_log_var: Tensor) -> Tensor:
        """D_KL[q(z|x) ‖ p(z)] per sample (B,): closed form for N(0, I), the one-sample estimate at
        ``z`` (a draw of q(z|x)) for the learned mixture."""
        if self.prior is None:
            return kl_divergence(z_mean, z_log_var)
        return kl_monte_carlo(z, z_mean, z_log_var, mixture_log_prob(z, *self._prior_parameters()))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x = batch["image"]
        z_mean, z_log_var = self.encode_distribution(x)
        z = reparameterize(z_mean, z_log_var)
        recon = reconstruction_loss(self.reconstruction, self.decoder(z), x).mean()
        kl = self.kl(z, z_mean, z_log_var).mean()
        beta = kl_weight(self.global_step, self.beta, self.kl_warmup_steps)
        loss = recon + beta * kl
        self.log_dict({"train/loss": loss, "train/recon": recon, "train/kl": kl, "train/beta": beta}, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._log_recon(batch, "val")
        z_mean, z_log_var = self.encode_distribution(batch["image"])
        z = z_mean if self.prior is None else reparameterize(z_mean, z_log_var)  # the closed form needs no draw
        self.log("val/kl", self.kl(z, z_mean, z_log_var).mean(), sync_dist=True)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._log_recon(batch, "test")

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """A VAE starts from z (latent_dim,)."""
        return (self.latent_dim,)

    def sample_prior(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ p(z), (num, latent_dim): N(0, I) or the learned mixture."""
        if self.prior is None:
            return randn_like(torch.empty(num, self.latent_dim, device=self.device), generator)
        return sample_mixture(num, *self._prior_parameters(), generator)

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
        """Decode z ~ p(z) (or ``options.noise``, a batch of latents): (num, C, H, W) in [-1, 1].

        One decoder pass of an unconditional model: a condition, ``steps`` and every option but the noise are
        refused.
        """
        options = self.checked(options, steps=steps)
        self.sample_cond(num, cond)  # refuses a condition
        noise = options.noise
        with self.eval_mode(self):
            return self.decode(self.sample_prior(num, generator) if noise is None else noise).clamp(-1, 1)
