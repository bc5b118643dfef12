"""StyleGAN2's generator and discriminator (Karras et al. 2020, "Analyzing and Improving the Image Quality
of StyleGAN", arXiv 1912.04958), in pure PyTorch after NVlabs/stylegan2-ada-pytorch ``training/networks.py``:
no custom CUDA op, so nothing to compile (the ada repository's extension builds are its users' most
common failure).

    mapping     w = f(z̃ [, e_y]),  z̃ = z / √(mean(z²) + 1e-8)       8 equalised FC layers, lr × 0.01 (StyleGAN §2)
    truncation  w' = w̄ + ψ·(w − w̄),  w̄ ← EMA_0.995(w)             for the first ``cutoff`` ws (StyleGAN App. B)
    (1) modulation    w'_ijk  = s_i · w_ijk,  s = A(w) (B, I)       s_i scales input channel i (§2.2)
    (2) output std    σ_j     = √(Σ_{i,k} w'_ijk²)                    for unit-variance i.i.d. inputs
    (3) demodulation  w''_ijk = w'_ijk / √(Σ_{i,k} w'_ijk² + 1e-8)  output std back to 1 (§2.2)
    synthesis   4×4 learned constant → blocks of two modulated 3×3 convs (+ noise, bias, lrelu·√2) with a
                modulated 1×1 toRGB each, summed over resolutions after upsampling ("skip", §4.1, Fig. 7b)
    discriminator  fromRGB → residual blocks, (skip + main)/√2 (§4.1, Fig. 7c) → minibatch stddev →
                conv → fc → out [+ projection ⟨out, cmap(y)⟩/√cmap_dim, as stylegan2-ada]

Equalised learning rate (ProGAN §4.1): every weight is stored N(0, 1)/lr_mul and multiplied at run time
by lr_mul/√fan_in, so Adam's per-parameter step is the same relative size for every layer; the layers, the
normalisation of z and the minibatch stddev come from `lit_genvision.nn.equalized`, shared with ProGAN.

Resampling is deliberately simple, not the paper's FIR filter: up ×2 is a bilinear upsample
(``align_corners=False``), which in the interior equals upsampling with the separable [1, 3, 3, 1]/4
filter StyleGAN2 uses (edges replicated instead of zero-padded), followed by the conv; down ×2 is a
2×2 average pool after the conv. The modulated conv is the grouped-conv form (the batch folded into
groups), with a per-sample Python loop, :func:`modulated_conv2d_reference`, as its specification.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_genvision.nn.equalized import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, activate, normalize_2nd_moment

NoiseMode = Literal["random", "const", "none"]


def _upsample(x: Tensor, factor: int) -> Tensor:
    """Bilinear ×factor; for factor 2 the interior equals the [1, 3, 3, 1]/4 FIR upsample of StyleGAN2."""
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False) if factor > 1 else x


def _check_resolution(img_resolution: int, minimum: int = 4) -> int:
    log2 = int(math.log2(img_resolution)) if img_resolution > 0 else 0
    if img_resolution < minimum or 2**log2 != img_resolution:
        raise ValueError(f"img_resolution must be a power of two ≥ {minimum}, got {img_resolution}.")
    return log2


# ----------------------------------------------------------------------------------------------------------------------
# Mapping network


class MappingNetwork(nn.Module):
    """z (B, z_dim) [+ label (B,)] → w (B, w_dim), or ws (B, num_ws, w_dim) broadcast for the synthesis.

    z is normalised to unit second moment; with ``num_classes`` the one-hot label is embedded by an
    equalised FC (lr 1), normalised likewise and concatenated (stylegan2-ada). Then ``num_layers``
    equalised FC layers at ``lr_multiplier`` (0.01: the mapping learns 100× slower), leaky ReLU·√2.
    ``z_dim = 0`` maps the label alone (the discriminator's cmap).

    In training mode every forward moves the tracked mean ``w_avg`` ← lerp(mean_batch(w), w_avg, β)
    (β = ``w_avg_beta``; None tracks nothing and forbids truncation), the centre of the truncation trick.
    """

    w_avg: Tensor

    def __init__(
        self,
        z_dim: int = 512,
        w_dim: int = 512,
        num_layers: int = 8,
        lr_multiplier: float = 0.01,
        num_classes: int | None = None,
        w_avg_beta: float | None = 0.995,
    ) -> None:
        super().__init__()
        if not z_dim and not num_classes:
            raise ValueError("MappingNetwork needs z_dim > 0 or num_classes.")
        self.z_dim, self.w_dim, self.num_classes, self.w_avg_beta = z_dim, w_dim, num_classes, w_avg_beta
        self.embed = EqualizedLinear(num_classes, w_dim) if num_classes else None  # one-hot → e_y, lr 1
        features = [z_dim + (w_dim if num_classes else 0)] + [w_dim] * num_layers
        self.layers = nn.Sequential(
            *(
                EqualizedLinear(i, o, lr_multiplier=lr_multiplier, activation="lrelu")
                for i, o in zip(features[:-1], features[1:], strict=True)
            )
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: Tensor | None,
        label: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        num_ws: int | None = None,
        update_w_avg: bool = True,
    ) -> Tensor:
        """z (B, z_dim), label (B,) int → w (B, w_dim) if ``num_ws`` is None else ws (B, num_ws, w_dim).

        ``truncation_psi`` ψ pulls ws [:cutoff] (all when ``truncation_cutoff`` is None) towards w_avg:
        w_avg + ψ·(w − w_avg); ψ = 1 returns w untouched. ``update_w_avg=False`` keeps w_avg still in
        training mode (the second z of style mixing, as stylegan2-ada's ``skip_w_avg_update``).
        """
        parts = []
        if self.z_dim:
            if z is None:
                raise ValueError("this mapping network takes z.")
            parts.append(normalize_2nd_moment(z))  # (B, z_dim)
        if self.embed is not None:
            if label is None:
                raise ValueError("this mapping network is conditioned: pass label.")
            dtype = z.dtype if z is not None else self.embed.weight.dtype
            onehot = F.one_hot(label.long(), self.num_classes).to(dtype)  # (B, K)
            parts.append(normalize_2nd_moment(self.embed(onehot)))  # (B, w_dim)
        w = self.layers(torch.cat(parts, dim=1))  # (B, w_dim)

        if self.training and update_w_avg and self.w_avg_beta is not None:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))

        if num_ws is not None:
            w = w[:, None].repeat(1, num_ws, 1)  # (B, num_ws, w_dim)
        if truncation_psi != 1:
            if self.w_avg_beta is None:
                raise ValueError("truncation needs the tracked w_avg (w_avg_beta is None).")
            if w.dim() == 2:
                w = self.w_avg.lerp(w, truncation_psi)  # (B, w_dim)
            else:
                cut = w.shape[1] if truncation_cutoff is None else truncation_cutoff
                w = torch.cat([self.w_avg.lerp(w[:, :cut], truncation_psi), w[:, cut:]], dim=1)
        return w


# ----------------------------------------------------------------------------------------------------------------------
# Modulated convolution (StyleGAN2 §2.2, Eqs. 1–3)


def _modulate(weight: Tensor, styles: Tensor, demodulate: bool) -> Tensor:
    """Eqs. 1 and 3: weight (O, I, k, k), styles (B, I) → per-sample weights (B, O, I, k, k)."""
    w = weight[None] * styles[:, None, :, None, None]  # (B, O, I, k, k)  (1) w' = s_i · w
    if demodulate:
        w = w * (w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()  # (3) w'' = w' / √(Σ w'² + ε)
    return w


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    demodulate: bool = True,
    padding: int | None = None,
    up: int = 1,
) -> Tensor:
    """Modulated (and demodulated) convolution, all samples in one grouped conv.

    x (B, I, H, W), weight (O, I, k, k), styles (B, I) → (B, O, H·up, W·up) ('same' padding k//2 by default).
    Each sample's weights w'' (Eqs. 1, 3) become one group: weight (B·O, I, k, k), x (1, B·I, H, W),
    ``groups=B`` (stylegan2-ada's fused_modconv path). ``up > 1`` upsamples x bilinearly before the conv.
    """
    batch, in_channels = x.shape[:2]
    out_channels, _, kh, kw = weight.shape
    pad = kh // 2 if padding is None else padding
    w = _modulate(weight, styles, demodulate)  # (B, O, I, k, k)
    x = _upsample(x, up)  # (B, I, H', W')
    x = x.reshape(1, batch * in_channels, *x.shape[2:])  # (1, B·I, H', W')
    y = F.conv2d(x, w.reshape(batch * out_channels, in_channels, kh, kw), padding=pad, groups=batch)  # (1, B·O, …)
    return y.reshape(batch, out_channels, *y.shape[2:])  # (B, O, H', W')


def modulated_conv2d_reference(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    demodulate: bool = True,
    padding: int | None = None,
    up: int = 1,
) -> Tensor:
    """The specification of :func:`modulated_conv2d`: one ``F.conv2d`` per sample in a Python loop."""
    pad = weight.shape[-1] // 2 if padding is None else padding
    outputs = []
    for b in range(x.shape[0]):
        w = weight * styles[b][None, :, None, None]  # (O, I, k, k)  (1)
        if demodulate:
            w = w / torch.sqrt(w.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)  # (3)
        outputs.append(F.conv2d(_upsample(x[b : b + 1], up), w, padding=pad))  # (1, O, H', W')
    return torch.cat(outputs, dim=0)


# ----------------------------------------------------------------------------------------------------------------------
# Synthesis network


class SynthesisLayer(nn.Module):
    """x (B, I, R/up, R/up), w (B, w_dim) → lrelu·√2(modconv(x, W, A(w)) + strength·noise + b) (B, O, R, R).

    The affine A starts at s = 1 (bias_init 1). Noise is one per-pixel map (B, 1, R, R) broadcast over
    channels, scaled by a learned per-layer strength (initialised 0): ``random`` draws it fresh,
    ``const`` uses the stored ``noise_const`` (deterministic output), ``none`` adds nothing.
    """

    noise_const: Tensor

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3, up: int = 1
    ) -> None:
        super().__init__()
        self.resolution, self.up = resolution, up
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, w: Tensor, noise_mode: NoiseMode = "random") -> Tensor:
        styles = self.affine(w)  # (B, I)
        x = modulated_conv2d(x, self.weight, styles, demodulate=True, up=self.up)  # (B, O, R, R)
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength  # (B, O, R, R)
        elif noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be random, const or none, got {noise_mode!r}.")
        return activate(x + self.bias[None, :, None, None], "lrelu")


class ToRGB(nn.Module):
    """x (B, I, R, R), w (B, w_dim) → (B, C, R, R): modulated 1×1 conv, no demodulation, plus bias.

    The style carries the equalised-LR gain 1/√I (the conv weight is stored N(0, 1)), as stylegan2-ada.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w) * self.weight_gain  # (B, I)
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)  # (B, C, R, R)
        return x + self.bias[None, :, None, None]


class SynthesisBlock(nn.Module):
    """One resolution R of the skip generator (StyleGAN2 Fig. 7b).

    First block (``in_channels = 0``): x = learned constant (O, 4, 4), one layer. Otherwise conv0 (up ×2)
    and conv1. Then img = upsample(img_prev) + ToRGB(x). It consumes ``num_conv + num_torgb`` ws; the
    ToRGB's w is shared with the next block's first layer (the ws overlap, as stylegan2-ada).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int) -> None:
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
            self.conv0 = None
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGB(out_channels, img_channels, w_dim)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(
        self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: NoiseMode = "random"
    ) -> tuple[Tensor, Tensor]:
        """x (B, I, R/2, R/2) or None, img (B, C, R/2, R/2) or None, ws (B, num_conv + 1, w_dim)
        → x (B, O, R, R), img (B, C, R, R)."""
        w_iter = iter(ws.unbind(dim=1))
        if self.conv0 is None:
            x = self.const[None].repeat(ws.shape[0], 1, 1, 1)  # (B, O, 4, 4)
        else:
            x = self.conv0(x, next(w_iter), noise_mode)  # (B, O, R, R)
        x = self.conv1(x, next(w_iter), noise_mode)  # (B, O, R, R)
        y = self.torgb(x, next(w_iter))  # (B, C, R, R)
        img = y if img is None else _upsample(img, 2) + y  # skip architecture: sum of upsampled RGBs
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) → image (B, img_channels, R, R), from 4×4 up to R (no tanh, as the paper).

    Channels at resolution r: min(channel_base // r, channel_max). ``num_ws`` = Σ num_conv + 1
    (2·log2(R) − 2; 18 at 1024², 8 at 32²): ws[:, i] drives the i-th layer in order, the last one the final ToRGB.
    """

    def __init__(
        self,
        w_dim: int = 512,
        img_resolution: int = 32,
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
    ) -> None:
        super().__init__()
        log2 = _check_resolution(img_resolution)
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        self.blocks = nn.ModuleList()
        self.num_ws = 0
        for r in self.block_resolutions:
            in_channels = channels[r // 2] if r > 4 else 0
            block = SynthesisBlock(in_channels, channels[r], w_dim, r, img_channels)
            self.blocks.append(block)
            self.num_ws += block.num_conv
        self.num_ws += self.blocks[-1].num_torgb

    def forward(self, ws: Tensor, noise_mode: NoiseMode = "random") -> Tensor:
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must be (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}.")
        x = img = None
        w_idx = 0
        for block in self.blocks:
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)  # (B, n, w_dim)
            x, img = block(x, img, block_ws, noise_mode)
            w_idx += block.num_conv
        return img  # (B, C, R, R)


class StyleGANGenerator(nn.Module):
    """z (B, z_dim) [+ label (B,)] → image (B, img_channels, R, R): mapping then synthesis.

    Args:
        z_dim, w_dim: latent and intermediate-latent widths (512 in the paper).
        img_resolution: R, a power of two ≥ 4.
        img_channels: output channels.
        mapping_layers: depth of the mapping network (8).
        lr_multiplier: the mapping's learning-rate multiplier (0.01).
        channel_base, channel_max: synthesis width min(channel_base // r, channel_max) at resolution r.
        num_classes: class-conditional through the mapping's label embedding.
        w_avg_beta: EMA decay of the tracked w_avg (0.995).
    """

    def __init__(
        self,
        z_dim: int = 512,
        w_dim: int = 512,
        img_resolution: int = 32,
        img_channels: int = 3,
        mapping_layers: int = 8,
        lr_multiplier: float = 0.01,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_classes: int | None = None,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_classes = z_dim, w_dim, num_classes
        self.img_resolution, self.img_channels = img_resolution, img_channels
        # the platform's generator attributes (DCGANGenerator's names)
        self.latent_dim, self.image_size, self.in_channels = z_dim, img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, channel_base, channel_max)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, lr_multiplier, num_classes, w_avg_beta)

    def forward(
        self,
        z: Tensor,
        label: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: NoiseMode = "random",
    ) -> Tensor:
        ws = self.mapping(z, label, truncation_psi, truncation_cutoff, num_ws=self.num_ws)  # (B, num_ws, w_dim)
        return self.synthesis(ws, noise_mode)  # (B, C, R, R)

    @staticmethod
    def mix(ws_a: Tensor, ws_b: Tensor, crossover: int) -> Tensor:
        """Style mixing (StyleGAN §3.1): ws (B, num_ws, w_dim) from A for layers < crossover, from B from then on.

        Small crossovers give B the coarse-to-fine styles; a late crossover keeps A's coarse styles (pose,
        class) and takes only B's fine ones (colour, texture)."""
        return torch.cat([ws_a[:, :crossover], ws_b[:, crossover:]], dim=1)

    def style_mixing_ws(
        self,
        z1: Tensor,
        z2: Tensor,
        label: Tensor | None = None,
        prob: float = 0.9,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Mixing regularisation (StyleGAN §3.1, stylegan2-ada ``loss.py``): ws of z1 (B, num_ws, w_dim), with
        probability ``prob`` switched to z2's ws from a crossover drawn uniformly in [1, num_ws) (one per batch).
        z2's mapping leaves w_avg alone."""
        device = generator.device if generator is not None else torch.device("cpu")
        ws = self.mapping(z1, label, num_ws=self.num_ws)  # (B, num_ws, w_dim)
        mixes = torch.rand((), generator=generator, device=device).item() < prob
        crossover = int(torch.randint(1, self.num_ws, (), generator=generator, device=device))
        if not mixes:
            return ws
        ws2 = self.mapping(z2, label, num_ws=self.num_ws, update_w_avg=False)
        return self.mix(ws, ws2, crossover)


# ----------------------------------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    """Residual block at resolution R (StyleGAN2 Fig. 7c): x (B, I, R, R) [or img when first] → (B, O, R/2, R/2).

    [fromRGB 1×1] → out = (skip(x) + conv1↓(conv0(x))) / √2, skip a bias-free 1×1 conv with ↓ (2×2 average pool);
    the 1/√2 keeps the sum's variance that of each branch.
    """

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int) -> None:
        super().__init__()
        self.fromrgb = EqualizedConv2d(img_channels, tmp_channels, 1, activation="lrelu") if in_channels == 0 else None
        self.conv0 = EqualizedConv2d(tmp_channels, tmp_channels, 3, activation="lrelu")
        self.conv1 = EqualizedConv2d(tmp_channels, out_channels, 3, activation="lrelu", down=2)
        self.skip = EqualizedConv2d(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: Tensor) -> Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(x)  # (B, tmp, R, R)
        y = self.skip(x)  # (B, O, R/2, R/2)
        x = self.conv1(self.conv0(x))  # (B, O, R/2, R/2)
        return (y + x) / math.sqrt(2.0)


class StyleGANDiscriminator(nn.Module):
    """image (B, C, R, R) [+ label (B,)] → logits (B, 1): StyleGAN2's residual discriminator (configs E/F).

    Blocks from R down to 8, then the 4×4 epilogue: minibatch stddev → conv 3×3 → fc → out. With
    ``num_classes``, out has ``cmap_dim`` features and the logit is ⟨out, cmap(y)⟩/√cmap_dim, cmap a
    mapping network of the label alone (stylegan2-ada's projection conditioning).

    Args:
        img_resolution: R, a power of two ≥ 8.
        img_channels: input channels.
        channel_base, channel_max: width min(channel_base // r, channel_max) at resolution r.
        mbstd_group_size: G of the minibatch stddev (4); ``mbstd_num_channels`` its F (1).
        num_classes: projection-conditioned on a class label.
        cmap_dim: width of the projection (defaults to the 4×4 channels).
        mapping_layers: depth of the label's mapping network (8, as stylegan2-ada).
    """

    def __init__(
        self,
        img_resolution: int = 32,
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        num_classes: int | None = None,
        cmap_dim: int | None = None,
        mapping_layers: int = 8,
    ) -> None:
        super().__init__()
        log2 = _check_resolution(img_resolution, minimum=8)
        self.img_resolution, self.img_channels, self.num_classes = img_resolution, img_channels, num_classes
        self.in_channels, self.image_size = img_channels, img_resolution  # the platform's attribute names
        resolutions = [2**i for i in range(log2, 1, -1)]  # R, R/2, …, 4
        channels = {r: min(channel_base // r, channel_max) for r in resolutions}
        self.blocks = nn.Sequential(
            *(
                DiscriminatorBlock(
                    channels[r] if r < img_resolution else 0, channels[r], channels[r // 2], img_channels
                )
                for r in resolutions[:-1]
            )
        )
        c4 = channels[4]
        self.cmap_dim = (cmap_dim or c4) if num_classes else 0
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels else None
        self.conv = EqualizedConv2d(c4 + mbstd_num_channels, c4, 3, activation="lrelu")
        self.fc = EqualizedLinear(c4 * 16, c4, activation="lrelu")
        self.out = EqualizedLinear(c4, self.cmap_dim or 1)
        self.mapping = (
            MappingNetwork(0, self.cmap_dim, mapping_layers, num_classes=num_classes, w_avg_beta=None)
            if num_classes
            else None
        )

    def forward(self, img: Tensor, label: Tensor | None = None) -> Tensor:
        x = self.blocks(img)  # (B, c4, 4, 4)
        if self.mbstd is not None:
            x = self.mbstd(x)  # (B, c4 + F, 4, 4)
        x = self.conv(x)  # (B, c4, 4, 4)
        x = self.fc(x.flatten(1))  # (B, c4)
        x = self.out(x)  # (B, cmap_dim or 1)
        if self.mapping is not None:
            if label is None:
                raise ValueError("this discriminator is conditioned: pass label.")
            cmap = self.mapping(None, label)  # (B, cmap_dim)
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)  # (B, 1)
        return x
