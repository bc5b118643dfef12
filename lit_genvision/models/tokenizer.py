"""VQModel: an image tokenizer — encoder, quantizer, decoder — optionally trained with a PatchGAN.

x → E(x) = z_e (B, z, h, w) → 1×1 conv → quantizer → z_q, indices (the token grid) → 1×1 conv → D → x̂.

With a ``DiagonalGaussianBottleneck`` in the quantizer's place it is latent diffusion's KL
autoencoder instead (Rombach et al. 2022, ``AutoencoderKL``): the 1×1 conv gives 2·d channels
(μ, log σ²), the bottleneck samples z = μ + σ·ε in training (μ in eval), its loss is w_KL·D_KL,
and there are no tokens. Either way ``encode_latents`` / ``decode_latents`` (aliased ``encode`` /
``decode``) are the first-stage interface ``methods.space.LatentSpace`` reads.

    L_tok = L_rec(x, x̂) + L_quantizer [+ λ · w_adv · L_G(D_φ(x̂))]

with L_rec the L1 (taming-transformers) or squared error per pixel, plus w_p·LPIPS(x, x̂) when the
perceptual weights are given as local files, L_quantizer the quantizer's own
terms (codebook + commitment, LFQ's entropy, nothing for FSQ), and the adversarial term switched on
after ``adversarial_start`` tokenizer steps, weighted adaptively at the decoder's last layer W_L
(Esser et al. 2021, eq. 7):

    λ = ‖∇_{W_L} L_rec‖ / (‖∇_{W_L} L_G‖ + 10⁻⁴),   clamped to [0, 10⁴] and detached.

The discriminator φ trains on the hinge loss of its logit map against real and reconstructed images.
The LPIPS network is read only from local files (torchvision's VGG16 and the lpips package's linear
weights; nothing is downloaded), built when training starts, frozen, and kept out of the checkpoint:
a tokenizer rebuilt for inference never needs those files.
As for the GAN family, ``trainer.max_steps`` counts the optimiser steps of both once φ trains;
``tokenizer_steps`` (a buffer, so it resumes) counts the tokenizer's.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, get_args

import torch
from torch import Tensor, nn

from lit_genvision.checks import check_betas, check_float, check_int
from lit_genvision.methods.gan import d_loss, g_loss
from lit_genvision.methods.quantizers import DiagonalGaussianBottleneck, Quantizer
from lit_genvision.models.base import PlatformModule
from lit_genvision.nn.lpips import LPIPS

Reconstruction = Literal["l1", "mse"]


def last_layer_weight(decoder: nn.Module) -> Tensor:
    """W_L: the weight of the decoder's last conv or linear layer (where λ is measured)."""
    layers = [m for m in decoder.modules() if isinstance(m, nn.Conv2d | nn.Conv3d | nn.Linear | nn.ConvTranspose2d)]
    if not layers:
        raise ValueError("the decoder has no conv or linear layer to measure the adaptive GAN weight at.")
    return layers[-1].weight


def framewise(layer: nn.Module, x: Tensor) -> Tensor:
    """``layer`` (made for images (N, C, H, W)) on each frame of a video (B, C, T, H, W), or on an image as it is."""
    if x.dim() != 5:
        return layer(x)
    b, _, t = x.shape[:3]
    out = layer(frames_of(x))
    return out.reshape(b, t, *out.shape[1:]).transpose(1, 2)


def frames_of(x: Tensor) -> Tensor:
    """A video (B, C, T, H, W) as its frames (B·T, C, H, W), video-major; an image batch as it is."""
    return x.transpose(1, 2).flatten(0, 1) if x.dim() == 5 else x


def adaptive_weight(rec_loss: Tensor, g_loss_value: Tensor, weight: Tensor, delta: float = 1e-4) -> Tensor:
    """λ = ‖∇_W L_rec‖ / (‖∇_W L_G‖ + δ), clamped to [0, 10⁴] and detached (Esser et al. 2021, eq. 7)."""
    (g_rec,) = torch.autograd.grad(rec_loss, weight, retain_graph=True)
    (g_gan,) = torch.autograd.grad(g_loss_value, weight, retain_graph=True)
    return (g_rec.norm() / (g_gan.norm() + delta)).clamp(0.0, 1e4).detach()


class VQModel(PlatformModule):
    """A tokenizer: images ↔ grids of discrete codes (VQ-VAE, VQ-GAN, RVQ, FSQ, LFQ, ViT-VQGAN by config),
    or with a ``DiagonalGaussianBottleneck`` a KL autoencoder (LDM's first stage, no tokens).

    Args:
        encoder: image → (B, z_channels, h, w); exposes ``z_channels`` (or ``out_channels``).
        decoder: (B, z_channels, h, w) → image (B, C, S, S), read as [-1, 1].
        quantizer: any ``methods.quantizers`` quantizer over ``quantizer.dim`` channels at dim 1, or a
            ``DiagonalGaussianBottleneck`` (a KL autoencoder: continuous latents, no tokens).
        discriminator: a PatchGAN (image → logit map; a video's frames one by one); None trains without the
            adversarial term.
        reconstruction: ``l1`` (taming-transformers) or ``mse``.
        adversarial_weight: w_adv multiplying λ·L_G (taming's ``disc_weight``; 0.8 in its configs).
        adversarial_start: tokenizer steps before the adversarial term and discriminator start.
        lr: Adam learning rate of the tokenizer.
        lr_d: Adam learning rate of the discriminator (default: ``lr``).
        betas: Adam betas of both (taming-transformers: 0.5, 0.9; ViT-VQGAN: 0.9, 0.99).
        perceptual_weights: local paths ``[vgg16.pth, lpips_vgg.pth]`` of an LPIPS perceptual term
            (``nn.LPIPS``); None (the default) trains without it.
        perceptual_weight: w_p (taming-transformers: 1.0).
        image_rate: a video tokenizer's share of training steps on the batch's first frames alone (T = 1): it
            learns images and clips together (MagViT-2); 0 for an image tokenizer.

    A video encoder (``nn.CausalVideoEncoder``, ``pixel_key = "video"``) makes it a video tokenizer: it reads the
    batch's ``video`` (B, C, T, H, W) and its tokens are (B, T', h, w); the 1×1 convs, LPIPS and the
    discriminator act on each frame.
    """

    family = "tokenizer"
    requires: ClassVar[tuple[str, ...]] = ("image",)
    #: What the EMA averages: everything that maps images to tokens and back (never the discriminator).
    ema_modules: ClassVar[tuple[str, ...]] = ("encoder", "quant_conv", "quantizer", "post_quant_conv", "decoder")

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        quantizer: Quantizer | DiagonalGaussianBottleneck,
        discriminator: nn.Module | None = None,
        reconstruction: Reconstruction = "l1",
        adversarial_weight: float = 0.8,
        adversarial_start: int = 0,
        lr: float = 2e-4,
        lr_d: float | None = None,
        betas: tuple[float, float] = (0.5, 0.9),
        perceptual_weights: tuple[str, str] | None = None,
        perceptual_weight: float = 1.0,
        image_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_config()
        self.automatic_optimization = False
        if reconstruction not in get_args(Reconstruction):
            raise ValueError(f"reconstruction must be l1 or mse, got {reconstruction!r}.")
        check_float("adversarial_weight", adversarial_weight, low=0, hint="pass 0 to train without the GAN term")
        check_int("adversarial_start", adversarial_start, low=0, hint="pass 0 to start the GAN term at once")
        check_float("lr", lr, low=0, low_open=True, hint="pass a positive learning rate such as 2e-4")
        if lr_d is not None:
            check_float("lr_d", lr_d, low=0, low_open=True, hint="pass a positive learning rate such as 2e-4")
        z_channels = getattr(encoder, "z_channels", None) or getattr(encoder, "out_channels", None)
        if not isinstance(z_channels, int):
            raise ValueError("the encoder must expose z_channels (its output channels).")
        self.encoder, self.decoder, self.quantizer, self.discriminator = encoder, decoder, quantizer, discriminator
        #: The batch key it tokenizes: ``image``, or ``video`` for a video encoder.
        self.pixel_key: str = getattr(encoder, "pixel_key", "image")
        self.requires = (self.pixel_key,)
        check_float("image_rate", image_rate, low=0, high=1, hint="it is the share of steps on first frames alone")
        if image_rate and self.pixel_key != "video":
            raise ValueError("image_rate trains a video tokenizer on first frames alone; an image tokenizer takes 0.")
        self.image_rate = image_rate
        # the bottleneck's input: quantizer.dim channels, or 2·dim (μ, log σ²) for the KL bottleneck
        self.quant_conv = nn.Conv2d(z_channels, getattr(quantizer, "in_dim", quantizer.dim), 1)
        self.post_quant_conv = nn.Conv2d(quantizer.dim, z_channels, 1)
        self.reconstruction, self.adversarial_weight, self.adversarial_start = (
            reconstruction,
            adversarial_weight,
            adversarial_start,
        )
        betas = check_betas(betas)
        self.lr, self.lr_d, self.betas = lr, lr_d if lr_d is not None else lr, tuple(betas)
        self.register_buffer("tokenizer_steps", torch.zeros((), dtype=torch.long))  # resumes with the checkpoint
        check_float("perceptual_weight", perceptual_weight, low=0, hint="pass 0 to train without LPIPS")
        if perceptual_weights is not None and len(perceptual_weights) != 2:
            raise ValueError(
                "perceptual_weights must be two local files [vgg16 weights, lpips linear weights], "
                f"got {perceptual_weights!r}."
            )
        self.perceptual_weights, self.perceptual_weight = perceptual_weights, perceptual_weight
        self._lpips: list[nn.Module] = []  # built at fit start; a list keeps it out of the state dict

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.discriminator is not None:  # its backward and the tokenizer's reach different parameters
            self.allow_unused_parameters_under_ddp()
        if stage == "fit":
            self.build_perceptual()

    def build_perceptual(self) -> None:
        """Read the LPIPS network from its local files (once; a missing file fails here, before training)."""
        if self.perceptual_weights and self.perceptual_weight > 0 and not self._lpips:
            self._lpips.append(LPIPS(*self.perceptual_weights))

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(C, H, W) of an image, or (C, T, H, W) of a video encoder's clips."""
        shape = getattr(self.encoder, "image_shape", None)
        if shape is not None:
            return tuple(shape)
        size = self.encoder.image_size
        return (self.encoder.in_channels, size, size)

    @property
    def has_tokens(self) -> bool:
        """False for a KL bottleneck (continuous latents), True for every quantizer."""
        return not isinstance(self.quantizer, DiagonalGaussianBottleneck)

    def _require_tokens(self, what: str) -> None:
        """One clear error instead of an obscure one when a token method meets a KL bottleneck."""
        if not self.has_tokens:
            raise ValueError(
                f"this VQModel has a KL bottleneck, not a quantizer; it has no tokens, so {what} is undefined "
                "(use encode_latents / decode_latents for its continuous latents)."
            )

    # -- the first-stage (latent) interface of latent diffusion ---------------------------------
    def encode_latents(self, images: Tensor) -> Tensor:
        """The latents (B, quantizer.dim, h, w) of images in [-1, 1] for a latent diffusion model.

        KL bottleneck: the posterior mean μ (LDM's ``posterior.mode()``; LDM's own
        ``get_first_stage_encoding`` draws ``posterior.sample()`` instead, but ``LatentSpace``'s
        contract is a deterministic encoding, and with w_KL = 1e-6 the posterior σ stays small).
        Quantizer: LDM's VQ first-stage convention, the pre-quantization latent
        h = quant_conv(E(x)); ``decode_latents`` quantizes it. Not wrapped in ``no_grad``: the
        caller decides (``LatentSpace`` freezes the autoencoder and runs under ``no_grad``).
        """
        h = framewise(self.quant_conv, self.encoder(images))  # (B, in_dim, [T',] h, w)
        return h if self.has_tokens else self.quantizer.mode(h)  # (B, dim, h, w)

    def decode_latents(self, z: Tensor) -> Tensor:
        """Images in [-1, 1] from latents (B, quantizer.dim, h, w).

        KL bottleneck: D(post_quant_conv(z)). Quantizer: z is quantized first, with the quantizer
        in eval mode so no codebook statistic moves (LDM's ``decode(h, force_not_quantize=False)``),
        then decoded; so ``decode_latents(encode_latents(x)) == reconstruct(x)``.
        """
        if self.has_tokens:
            with self.eval_mode(self.quantizer):
                z = self.quantizer(z)[0]  # z_q
        return self.decode_codes(z).clamp(-1, 1)

    def encode(self, images: Tensor) -> Tensor:
        """``encode_latents``: the ``encode`` a ``LatentSpace`` autoencoder provides."""
        return self.encode_latents(images)

    def decode(self, z: Tensor) -> Tensor:
        """``decode_latents``: the ``decode`` a ``LatentSpace`` autoencoder provides."""
        return self.decode_latents(z)

    # -- the tokenizer interface -------------------------------------------------------------
    @torch.no_grad()
    def token_shape(self) -> tuple[int, ...]:
        """The token grid of one image: (h, w), or (h, w, N) for an N-stage residual quantizer (all
        stages; measured in eval mode, so no codebook statistic moves); (T', h, w) for a video tokenizer's clip."""
        self._require_tokens("token_shape")
        with self.eval_mode(self):
            return tuple(self.encode_indices(torch.zeros(1, *self.image_shape, device=self.device)).shape[1:])

    @property
    def vocab_size(self) -> int:
        """Codes per token position (per stage for RVQ): the token prior's vocabulary."""
        self._require_tokens("vocab_size")
        stages = getattr(self.quantizer, "stages", None)
        quantizer = stages[0] if stages is not None else self.quantizer
        return int(round(2**quantizer.bits))

    @torch.no_grad()
    def bits_per_image(self) -> float:
        """h·w·log2|codebook| (summed over stages): the bits a token grid holds (T'·h·w·… for a clip)."""
        self._require_tokens("bits_per_image")
        grid = self.token_shape()[: len(self.image_shape) - 1]  # (h, w) or (T', h, w): the stage axis left out
        return math.prod(grid) * float(self.quantizer.bits)

    def quantize(self, images: Tensor) -> tuple[Tensor, Tensor | None, Any]:
        """(z_q, indices, aux) of images in [-1, 1]; for a KL bottleneck (z, None, aux)."""
        z_q, indices, aux = self.quantizer(framewise(self.quant_conv, self.encoder(images)))
        return z_q, indices, aux

    def decode_codes(self, z_q: Tensor) -> Tensor:
        """Raw decoder output from quantized latents (B, quantizer.dim, h, w)."""
        return self.decoder(framewise(self.post_quant_conv, z_q))

    @torch.no_grad()
    def encode_indices(self, images: Tensor) -> Tensor:
        """The token grid of images: (B, h, w) long, or (B, h, w, N) for RVQ."""
        self._require_tokens("encode_indices")
        return self.quantize(images)[1]

    @torch.no_grad()
    def decode_indices(self, indices: Tensor) -> Tensor:
        """Images in [-1, 1] from a token grid."""
        self._require_tokens("decode_indices")
        return self.decode_codes(self.quantizer.indices_to_codes(indices)).clamp(-1, 1)

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Tensor:
        return self.decode_codes(self.quantize(images)[0]).clamp(-1, 1)

    # -- training ----------------------------------------------------------------------------
    def _rec_loss(self, x_hat: Tensor, x: Tensor) -> Tensor:
        """L1 or squared error per pixel, plus w_p·LPIPS when the perceptual term is on."""
        loss = (x_hat - x).abs().mean() if self.reconstruction == "l1" else (x_hat - x).pow(2).mean()
        if self._lpips:
            lpips = self._lpips[0].to(x.device)
            loss = loss + self.perceptual_weight * lpips(frames_of(x_hat), frames_of(x)).mean()
        return loss

    @property
    def adversarial(self) -> bool:
        """Whether this step trains with the GAN term (a discriminator, a weight, past the start)."""
        return (
            self.discriminator is not None
            and self.adversarial_weight > 0
            and int(self.tokenizer_steps) >= self.adversarial_start
        )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        optimizers = self.optimizers()
        opt, opt_d = optimizers if isinstance(optimizers, list) else (optimizers, None)
        x = batch[self.pixel_key]
        if self.image_rate and float(torch.rand(())) < self.image_rate:  # the global RNG: a run resumes bitwise
            x = x[:, :, :1]  # the first frames alone: images as one-frame videos
        adversarial = self.adversarial
        z_q, _, aux = self.quantize(x)
        x_hat = self.decode_codes(z_q)
        rec = self._rec_loss(x_hat, x)
        loss = rec + aux.loss
        logs = {"train/rec_loss": rec, "train/quantizer_loss": aux.loss, **aux.log_dict("train/quantizer/")}
        if adversarial:
            if opt_d is not None:
                self.toggle_optimizer(opt)
            g = g_loss("hinge", self.discriminator(frames_of(x_hat)))
            lam = adaptive_weight(rec, g, last_layer_weight(self.decoder))
            loss = loss + self.adversarial_weight * lam * g
            logs |= {"train/g_loss": g, "train/adaptive_weight": lam}
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if adversarial:
            if opt_d is not None:
                self.untoggle_optimizer(opt)
                self.toggle_optimizer(opt_d)
            d_real, d_fake = self.discriminator(frames_of(x)), self.discriminator(frames_of(x_hat.detach()))
            loss_d = d_loss("hinge", d_real, d_fake)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(loss_d)
            opt_d.step()
            opt_d.zero_grad(set_to_none=True)
            self.untoggle_optimizer(opt_d)
            logs |= {"train/d_loss": loss_d, "train/d_real": d_real.mean(), "train/d_fake": d_fake.mean()}
        self.tokenizer_steps += 1
        self.log("train/loss", loss, prog_bar=True)
        self.log_dict(logs)

    def _evaluate_step(self, batch: dict[str, Tensor], split: str) -> None:
        x = batch[self.pixel_key]
        z_q, _, aux = self.quantize(x)
        x_hat = self.decode_codes(z_q).clamp(-1, 1)
        self.log(f"{split}/rec_mse", (x_hat - x).pow(2).mean(), prog_bar=True, sync_dist=True)
        self.log(f"{split}/rec_l1", (x_hat - x).abs().mean(), sync_dist=True)
        if aux.perplexity is not None:
            self.log(f"{split}/perplexity", aux.perplexity.float().mean(), sync_dist=True)
        if aux.losses:  # the quantizer's weighted terms (a KL bottleneck's w_KL·D_KL)
            self.log_dict({f"{split}/quantizer/{k}": v.detach() for k, v in aux.losses.items()}, sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate_step(batch, "test")

    def configure_optimizers(self) -> Any:
        tokenizer = [p for name, p in self.named_parameters() if not name.startswith("discriminator.")]
        opt = torch.optim.Adam(tokenizer, lr=self.lr, betas=self.betas)
        if self.discriminator is None:
            return opt
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.lr_d, betas=self.betas)
        return [opt, opt_d]
