"""StyleGANModel: StyleGAN2's training (Karras et al. 2020, arXiv 1912.04958; NVlabs/stylegan2-ada-pytorch
``training/loss.py``) over ``nn.StyleGANGenerator``/``StyleGANDiscriminator``.

    D:  softplus(D(G(z))) + softplus(−D(x))                          non-saturating logistic loss
        + [every k_D steps] k_D · γ/2 · E‖∇_x D(x)‖²                  lazy R1 (§B: k_D = 16)
    G:  softplus(−D(G(z)))                                            with style mixing (p = 0.9)
        + [every k_G steps] k_G · w_pl · E(‖J_wᵀ y‖₂ − a)²            lazy path-length regularisation (§3.2)

with y ~ N(0, I)/√(H·W) an image-space direction, J_w the Jacobian of the image with respect to the
ws (the norm taken per w and averaged over the layers), a the running mean of the lengths (decay 0.01),
computed on half the batch (``pl_batch_shrink``). Lazy regularisation changes the effective optimiser
(§B): lr·c and β^c with c = k/(k + 1). Sampling uses the tracked mean w̄ for truncation
w' = w̄ + ψ(w − w̄) and the stored noise maps (``noise_mode="const"``), so a seed gives one image.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lit_genvision.checks import check_float, check_int
from lit_genvision.methods.gan import r1_penalty
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.models.gan import GANModel
from lit_genvision.nn.stylegan import StyleGANDiscriminator, StyleGANGenerator

#: Style bands by resolution: coarse 4²–8², middle up to 32² (below the last), fine from 64² (or the last).
BANDS = ("coarse", "middle", "fine")


def band_of(resolution: int, img_resolution: int) -> str:
    """The StyleGAN paper's band of a synthesis resolution (§3.1, Fig. 3): coarse 4²–8² (pose, shape;
    here the digit), fine from 64² or the final resolution if smaller (colour, texture), middle between."""
    if resolution <= 8:
        return "coarse"
    return "fine" if resolution >= min(64, img_resolution) else "middle"


def band_layers(generator: StyleGANGenerator, band: str) -> list[int]:
    """The indices of the ws (layers) of ``band``: ws[i] drives the i-th modulated conv in order, each
    block's toRGB shares the next block's first w, and the last w drives the final toRGB."""
    if band not in BANDS:
        raise ValueError(f"crossover must be one of {', '.join(BANDS)}, got {band!r}.")
    layers, index = [], 0
    synthesis = generator.synthesis
    for block, resolution in zip(synthesis.blocks, synthesis.block_resolutions, strict=True):
        if band_of(resolution, synthesis.img_resolution) == band:
            layers += list(range(index, index + block.num_conv))
        index += block.num_conv
    if band_of(synthesis.img_resolution, synthesis.img_resolution) == band:
        layers.append(synthesis.num_ws - 1)  # the final toRGB
    return layers


class StyleGANModel(GANModel):
    """StyleGAN2 by configuration; see the module docstring for the objective.

    Args:
        generator: mapping + synthesis network (optionally class-conditional through the mapping).
        discriminator: the residual discriminator (conditioned like the generator).
        r1_gamma: γ of R1 (config E at 32²: 0.01–10 depending on data; digits 1).
        r1_interval: k_D, discriminator steps between R1 evaluations (16; 1 = every step, not lazy).
        pl_weight: w_pl of the path-length penalty (2; 0 turns it off, as config F at small size).
        pl_interval: k_G, generator steps between path-length evaluations (4).
        pl_decay: decay of the running mean length a (0.01).
        pl_batch_shrink: the penalty runs on batch/shrink samples (2).
        style_mixing: probability of mixing two ws at a random layer in training (0.9).
        lr: Adam learning rate of both networks before the lazy-regularisation correction (0.0025).
        betas: Adam betas before the correction ((0, 0.99)).
        truncation_psi: ψ used by ``sample`` (1: none) unless ``SampleOptions.truncation`` gives another.
        augment: discriminator augmentation (see ``GANModel``; ADA is StyleGAN2-ADA's).
    """

    accepts: ClassVar[frozenset[str]] = frozenset({"noise", "truncation"})
    d_steps: Tensor
    g_steps: Tensor
    pl_mean: Tensor

    def __init__(
        self,
        generator: StyleGANGenerator,
        discriminator: StyleGANDiscriminator,
        r1_gamma: float = 10.0,
        r1_interval: int = 16,
        pl_weight: float = 2.0,
        pl_interval: int = 4,
        pl_decay: float = 0.01,
        pl_batch_shrink: int = 2,
        style_mixing: float = 0.9,
        lr: float = 0.0025,
        betas: tuple[float, float] = (0.0, 0.99),
        truncation_psi: float = 1.0,
        augment: nn.Module | None = None,
    ) -> None:
        super().__init__(
            generator, discriminator, loss="non_saturating", lr_g=lr, lr_d=lr, betas=betas, augment=augment
        )
        self.save_config()
        check_float("r1_gamma", r1_gamma, low=0, hint="pass γ such as 10, or 0 to turn R1 off")
        check_int("r1_interval", r1_interval, low=1, hint="pass 16 (lazy) or 1 (every step)")
        check_float("pl_weight", pl_weight, low=0, hint="pass 2, or 0 to turn path-length regularisation off")
        check_int("pl_interval", pl_interval, low=1, hint="pass 4 (lazy) or 1 (every step)")
        check_float("pl_decay", pl_decay, low=0, high=1, hint="pass 0.01")
        check_int("pl_batch_shrink", pl_batch_shrink, low=1, hint="pass 2")
        check_float("style_mixing", style_mixing, low=0, high=1, hint="pass 0.9, or 0 to turn mixing off")
        self.r1_gamma, self.r1_interval = r1_gamma, r1_interval
        self.pl_weight, self.pl_interval, self.pl_decay, self.pl_batch_shrink = (
            pl_weight,
            pl_interval,
            pl_decay,
            pl_batch_shrink,
        )
        self.style_mixing = style_mixing
        self.truncation_psi = truncation_psi
        self.register_buffer("d_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("g_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("pl_mean", torch.zeros(()))

    @property
    def truncation_psi(self) -> float:
        """ψ of the truncation trick that ``sample`` applies (1: none)."""
        return self._truncation_psi

    @truncation_psi.setter
    def truncation_psi(self, value: float) -> None:
        check_float("truncation", value, low=0, hint="pass ψ in (0, 1], e.g. 0.7; 1 turns truncation off")
        self._truncation_psi = float(value)

    # ------------------------------------------------------------------ training

    @staticmethod
    def _label(cond: dict | None) -> Tensor | None:
        return cond["label"] if cond and "label" in cond else None

    def _ws(self, z: Tensor, cond: dict | None) -> Tensor:
        """ws (B, num_ws, w_dim) of a training batch, two ws switched at a random layer with p = ``style_mixing``."""
        z2 = torch.randn_like(z)
        return self.generator.style_mixing_ws(z, z2, self._label(cond), prob=self.style_mixing)

    def generate(self, z: Tensor, cond: dict | None) -> Tensor:
        return self.generator.synthesis(self._ws(z, cond))

    def discriminate(self, images: Tensor, cond: dict | None) -> Tensor:
        return self.discriminator(images, self._label(cond)).flatten()

    def d_penalties(self, real: Tensor, fake: Tensor, cond: dict | None, d_real: Tensor, logs: dict) -> Tensor:
        """Lazy R1: every ``r1_interval`` discriminator steps, r1_interval·γ/2·E‖∇D(x)‖² on the reals."""
        self.d_steps += 1
        if not self.r1_gamma or int(self.d_steps) % self.r1_interval:
            return torch.zeros((), device=real.device)
        r1 = r1_penalty(lambda x: self.critic(x, cond), real)
        logs["d/r1"] = r1
        return r1 * (self.r1_gamma / 2) * self.r1_interval

    def path_length_penalty(self, z: Tensor, cond: dict | None) -> tuple[Tensor, Tensor]:
        """(E(‖J_wᵀ y‖ − a)², the batch's mean length) with a ← a + decay·(mean length − a) updated in place."""
        ws = self._ws(z, cond)
        images = self.generator.synthesis(ws)
        y = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
        lengths = grad.square().sum(2).mean(1).sqrt()  # (B,)
        with torch.no_grad():
            self.pl_mean.copy_(self.pl_mean.lerp(lengths.mean(), self.pl_decay))
        return (lengths - self.pl_mean).square().mean(), lengths.mean().detach()

    def g_loss(self, z: Tensor, cond: dict | None, logs: dict) -> Tensor:
        loss = super().g_loss(z, cond, logs)
        self.g_steps += 1
        if self.pl_weight and int(self.g_steps) % self.pl_interval == 0:
            n = max(1, len(z) // self.pl_batch_shrink)
            sub = {k: v[:n] for k, v in cond.items()} if cond else cond
            penalty, length = self.path_length_penalty(z[:n], sub)
            logs |= {"g/path_length_penalty": penalty, "g/path_length": length}
            loss = loss + penalty * self.pl_weight * self.pl_interval
        return loss

    def configure_optimizers(self) -> Any:
        """Adam per network with the lazy-regularisation correction lr·c, β^c, c = k/(k + 1) (§B)."""

        def adam(params, interval: int) -> torch.optim.Adam:
            c = interval / (interval + 1)
            return torch.optim.Adam(params, lr=self.lr_g * c, betas=(self.betas[0] ** c, self.betas[1] ** c))

        g_interval = self.pl_interval if self.pl_weight else 0
        d_interval = self.r1_interval if self.r1_gamma else 0
        opt_g = adam(self.generator.parameters(), g_interval) if g_interval else None
        opt_d = adam(self.discriminator.parameters(), d_interval) if d_interval else None
        plain = lambda p: torch.optim.Adam(p, lr=self.lr_g, betas=self.betas)  # noqa: E731
        return [opt_g or plain(self.generator.parameters()), opt_d or plain(self.discriminator.parameters())]

    # ------------------------------------------------------------------ sampling

    def ws(self, z: Tensor, label: Tensor | None = None, psi: float | None = None) -> Tensor:
        """ws (B, num_ws, w_dim) of z, truncated with ψ (``truncation_psi`` by default); w̄ is left alone,
        so this needs no eval mode (the mapping has no dropout or normalisation statistics)."""
        psi = self.truncation_psi if psi is None else psi
        return self.generator.mapping(z, label, truncation_psi=psi, num_ws=self.generator.num_ws, update_w_avg=False)

    def synthesise(self, ws: Tensor) -> Tensor:
        """Images in [-1, 1] from ws, with the stored noise maps (deterministic)."""
        with self.eval_mode(self.generator):
            return self.generator.synthesis(ws, noise_mode="const").clamp(-1, 1)

    def draw(self, z: Tensor, cond: dict | None, options: SampleOptions | None = None) -> Tensor:
        """G(z[, y]) with truncation ψ (``options.truncation``, else ``truncation_psi``) around the tracked mean w̄
        and the stored noise."""
        return self.synthesise(self.ws(z, self._label(cond), self.psi_of(options)))

    def psi_of(self, options: SampleOptions | None) -> float:
        """ψ of one call: the options' truncation, else the model's ``truncation_psi``."""
        return self.truncation_psi if options is None or options.truncation is None else options.truncation

    def sampling_protocol(self, steps: int | None = None, options: SampleOptions | None = None) -> tuple[str, int]:
        """``direct``, or ``truncation ψ`` when ψ < 1 (a truncated model is ranked apart)."""
        psi = self.psi_of(options)
        return ("direct" if psi == 1 else f"truncation{psi:g}"), 1

    @torch.no_grad()
    def interpolate(
        self, a: Tensor, b: Tensor, num: int, *, cond: dict | None = None, steps: int | None = None,
        options: SampleOptions | None = None,
    ) -> Tensor:  # fmt: skip
        """``num`` images along the straight line from w(a) to w(b) in W (StyleGAN's perceptual path
        length interpolates in W, where the mapping has untangled the factors)."""
        options = self.checked(options, steps=steps)
        label, psi = self._label(cond), self.psi_of(options)
        wa = self.ws(a.to(self.device), None if label is None else label[:1], psi)
        wb = self.ws(b.to(self.device), None if label is None else label[:1], psi)
        t = torch.linspace(0, 1, num, device=self.device)[:, None, None]
        return self.synthesise(torch.lerp(wa, wb, t))

    @torch.no_grad()
    def style_mix(self, z_rows: Tensor, z_cols: Tensor, crossover: str, options: SampleOptions | None = None) -> Tensor:
        """The paper's style-mixing figure (StyleGAN Fig. 3): image (r, c) takes the ``crossover`` band's
        styles from row source r and every other layer's from column source c; (R·C, C, H, W), row-major."""
        psi = self.psi_of(options)
        w_rows, w_cols = self.ws(z_rows.to(self.device), psi=psi), self.ws(z_cols.to(self.device), psi=psi)
        base = w_cols[None].expand(len(w_rows), -1, -1, -1)  # (R, C, num_ws, w_dim)
        return self.synthesise(self.mix_band(base, w_rows[:, None], crossover).flatten(0, 1))

    def mix_band(self, base: Tensor, source: Tensor, band: str) -> Tensor:
        """``base`` ws (…, num_ws, w_dim) with the layers of ``band`` (coarse, middle, fine) taken from
        ``source`` (broadcast to ``base``): StyleGAN's style mixing by resolution band."""
        layers = band_layers(self.generator, band)
        mixed = base.clone()
        mixed[..., layers, :] = source[..., layers, :].expand_as(mixed[..., layers, :])
        return mixed
