"""Batched image augmentation on the device: ``flip_crop`` for classifier/data pipelines, and
discriminator augmentation for small-data GAN training (``DiffAugment``, ``AdaptiveAugment``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def flip_crop(x: Tensor, pad: int, flip: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """Random horizontal flip (if ``flip``) and random crop after ``pad``-pixel reflection padding,
    for a whole batch (B, C, H, W) at once: two gathers (rows, then columns with the flip folded
    into the column order), no per-image Python. Videos (B, C, T, H, W), or any (B, …, H, W): one
    flip and one crop per sample, shared by all its frames."""
    if x.ndim != 4:
        return flip_crop(x.flatten(1, -3), pad, flip, generator).view(x.shape)  # (B, C·T, H, W) and back
    b, c, h, w = x.shape
    dev = x.device
    gdev = generator.device if generator is not None else dev
    cols = torch.arange(w, device=dev).expand(b, w)
    if flip:
        flipped = (torch.rand(b, device=gdev, generator=generator) < 0.5).to(dev)
        cols = torch.where(flipped[:, None], cols.flip(-1), cols)
    if pad <= 0:
        return x.gather(3, cols[:, None, None, :].expand(b, c, h, w)) if flip else x
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")  # (B, C, H + 2p, W + 2p)
    dy = torch.randint(0, 2 * pad + 1, (b,), device=gdev, generator=generator).to(dev)
    dx = torch.randint(0, 2 * pad + 1, (b,), device=gdev, generator=generator).to(dev)
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None].expand(b, c, h, w + 2 * pad)
    out = padded.gather(2, rows)  # (B, C, H, W + 2p)
    return out.gather(3, (dx[:, None] + cols)[:, None, None, :].expand(b, c, h, w))


# ---------------------------------------------------------------------------------------------
# Discriminator augmentation for small-data GAN training. Images on this platform are in [-1, 1]
# with -1 the black background, so pixels that a shift or a cutout leaves empty take ``fill = -1``.
# ---------------------------------------------------------------------------------------------

DIFF_AUGMENT_POLICIES = ("color", "translation", "cutout")


def _gdev(images: Tensor, generator: torch.Generator | None) -> torch.device:
    """The device random draws are made on: the generator's when one is given."""
    return generator.device if generator is not None else images.device


def _rand(shape: tuple[int, ...], images: Tensor, generator: torch.Generator | None) -> Tensor:
    """U[0, 1) draws in float32 on the generator's device, moved to the images' device."""
    return torch.rand(shape, generator=generator, device=_gdev(images, generator)).to(images.device)


def _randn(shape: tuple[int, ...], images: Tensor, generator: torch.Generator | None) -> Tensor:
    """N(0, 1) draws in float32 on the generator's device, moved to the images' device."""
    return torch.randn(shape, generator=generator, device=_gdev(images, generator)).to(images.device)


def _randint(low: int, high: int, n: int, images: Tensor, generator: torch.Generator | None) -> Tensor:
    """``n`` integers uniform in [low, high), on the images' device."""
    return torch.randint(low, high, (n,), generator=generator, device=_gdev(images, generator)).to(images.device)


def translate_integer(images: Tensor, dx: Tensor, dy: Tensor, fill: float) -> Tensor:
    """Shift each image by whole pixels: out[b, :, i, j] = images[b, :, i − dy[b], j − dx[b]], or ``fill``
    where that source pixel lies outside the image. Exact (a gather, no interpolation) and
    differentiable w.r.t. ``images``. images (B, C, H, W); dx, dy (B,) integer tensors."""
    b, c, h, w = images.shape
    rows = torch.arange(h, device=images.device) - dy[:, None]  # (B, H) source row of each output row
    cols = torch.arange(w, device=images.device) - dx[:, None]  # (B, W)
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]  # (B, H, W)
    out = images.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand(b, c, h, w))
    out = out.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand(b, c, h, w))
    return torch.where(valid[:, None], out, torch.full_like(out, fill))


def apply_affine(images: Tensor, theta: Tensor, fill: float) -> Tensor:
    """Resample each image through an affine map: out(u) = images(θ_b [u; 1]) with bilinear
    interpolation, ``fill`` outside the image.

    θ (B, 2, 3) is in ``F.affine_grid``'s normalised coordinates with ``align_corners=False``: u ∈ [−1, 1]²
    spans the image's outer edges and pixel centres sit at (2k + 1)/W − 1, a set symmetric about 0, so
    any θ that permutes pixel centres (identity, a 90° rotation of a square image of odd or even side,
    a flip) reproduces the pixels exactly up to float rounding. θ maps output to input coordinates:
    θ = [[0, −1, 0], [1, 0, 0]] gives ``torch.rot90(images, 1, (2, 3))``.
    The fill is done by sampling (images − fill) with zero padding and adding ``fill`` back, so border
    pixels blend bilinearly into the fill value. Differentiable w.r.t. ``images``."""
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)  # (B, H, W, 2)
    out = F.grid_sample(images - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill


def _cutout(images: Tensor, size_h: int, size_w: int, fill: float, generator: torch.Generator | None) -> Tensor:
    """One ``size_h`` × ``size_w`` rectangle per image set to ``fill``, centred uniformly so that it may
    overhang the border (DiffAugment's ``rand_cutout``)."""
    b, _, h, w = images.shape
    cy = _randint(0, h + (1 - size_h % 2), b, images, generator)  # (B,) centre row, as in DiffAugment
    cx = _randint(0, w + (1 - size_w % 2), b, images, generator)
    top, left = cy - size_h // 2, cx - size_w // 2
    rows = torch.arange(h, device=images.device)[None, :] - top[:, None]  # (B, H) row offset into the square
    cols = torch.arange(w, device=images.device)[None, :] - left[:, None]
    inside = ((rows >= 0) & (rows < size_h))[:, :, None] & ((cols >= 0) & (cols < size_w))[:, None, :]
    return torch.where(inside[:, None], torch.full_like(images, fill), images)


class DiffAugment(nn.Module):
    """Differentiable Augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient
    GAN Training", arXiv 2006.10738): the same random, differentiable transform T is applied to reals
    and fakes before the discriminator, D(T(x)) and D(T(G(z))), to every image (probability 1), and
    the generator is trained through T.

    Policies (any comma-separated subset of "color,translation,cutout", applied in that order):
      color        brightness x + U[−0.5, 0.5]; saturation (x − mean_c x)·U[0, 2] + mean_c x (a no-op
                   on 1-channel images); contrast (x − mean_chw x)·U[0.5, 1.5] + mean_chw x, per image.
      translation  a whole-pixel shift per image, dx, dy uniform in {−r·W..r·W}, r = ``translation_ratio``,
                   emptied pixels set to ``fill``.
      cutout       one square of side ``cutout_ratio``·(H, W) per image set to ``fill``.

    Args:
        policy: comma-separated policy names from "color", "translation", "cutout".
        translation_ratio: the largest shift as a fraction of the side (paper: 1/8).
        cutout_ratio: the cutout square's side as a fraction of the image side (paper: 1/2).
        fill: the value of emptied and cut-out pixels; the platform's images are in [−1, 1] with −1 the
            black background, hence −1.
    """

    def __init__(
        self,
        policy: str = "color,translation,cutout",
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
        fill: float = -1.0,
    ) -> None:
        super().__init__()
        names = [name.strip() for name in policy.split(",") if name.strip()]
        unknown = [name for name in names if name not in DIFF_AUGMENT_POLICIES]
        if not names or unknown:
            raise ValueError(
                f"policy must be a comma-separated subset of {', '.join(DIFF_AUGMENT_POLICIES)}, got {policy!r}; "
                "name at least one of them and nothing else."
            )
        if not 0.0 < translation_ratio <= 1.0:
            raise ValueError(f"translation_ratio must be in (0, 1], got {translation_ratio}; the paper uses 0.125.")
        if not 0.0 < cutout_ratio <= 1.0:
            raise ValueError(f"cutout_ratio must be in (0, 1], got {cutout_ratio}; the paper uses 0.5.")
        if not math.isfinite(fill):
            raise ValueError(f"fill must be a finite float, got {fill}; use -1.0 for images in [-1, 1].")
        self.policy = [name for name in DIFF_AUGMENT_POLICIES if name in names]  # fixed order
        self.translation_ratio = translation_ratio
        self.cutout_ratio = cutout_ratio
        self.fill = fill

    @property
    def probability(self) -> float:
        """Every image is augmented: 1.0 (for logging beside ``AdaptiveAugment.probability``)."""
        return 1.0

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """images (B, C, H, W) → augmented images of the same shape, dtype and device."""
        b, _, h, w = images.shape
        x = images
        if "color" in self.policy:
            x = x + (_rand((b, 1, 1, 1), x, generator) - 0.5).to(x.dtype)  # brightness
            mean_c = x.mean(dim=1, keepdim=True)
            x = (x - mean_c) * (_rand((b, 1, 1, 1), x, generator) * 2).to(x.dtype) + mean_c  # saturation
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (_rand((b, 1, 1, 1), x, generator) + 0.5).to(x.dtype) + mean  # contrast
        if "translation" in self.policy:
            sy, sx = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
            dy = _randint(-sy, sy + 1, b, x, generator)
            dx = _randint(-sx, sx + 1, b, x, generator)
            x = translate_integer(x, dx, dy, self.fill)
        if "cutout" in self.policy:
            x = _cutout(x, int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5), self.fill, generator)
        return x


def _matrices(b: int, device: torch.device) -> Tensor:
    """(B, 3, 3) identity matrices in float32."""
    return torch.eye(3, device=device).expand(b, 3, 3).clone()


class AdaptiveAugment(nn.Module):
    """Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial
    Networks with Limited Data", StyleGAN2-ADA, arXiv 2006.06676), a reduced "bgc" pipeline.

    Each enabled augmentation is applied to each image independently with probability p (ADA §2.3);
    p = 0 returns the images unchanged. In order:
      xflip           (off by default) horizontal flip.
      rotate90        (off by default) rotation by a uniform multiple of 90°; square images only.
      translate       whole-pixel shift, dx, dy uniform in {−W/8..W/8}, {−H/8..H/8}, emptied pixels ``fill``.
      scale           isotropic scale s = 2^N(0, 0.2²), i.e. lognormal with std 0.2·ln 2.
      rotate          rotation by U[−max_rotation_degrees, +max_rotation_degrees].
      aniso           anisotropic scale diag(s, 1/s), s = 2^N(0, 0.2²).
      frac_translate  shift by N(0, 0.125²)·(W, H) pixels.
      brightness      x + N(0, 0.2²).
      contrast        x · 2^N(0, 0.5²), about 0 as in ADA (the middle of the [−1, 1] range).
    Flips, 90° turns and whole-pixel shifts are exact gathers; scale, rotate, aniso and frac_translate
    are composed into one affine matrix per image and resampled once (bilinear, ``fill`` outside).
    ADA composes the whole-pixel steps into that matrix too; doing them first keeps them exact and
    only differs where a shifted-out border would have been rotated back in. ADA also applies its
    rotation twice with probability 1 − √(1 − p) about the anisotropic scale and uses reflection
    padding; here it is once with probability p, and padding is ``fill`` (the black background).
    Every distribution is symmetric, so whether a matrix is read as the forward or inverse map does
    not change the distribution.

    Defaults for digits: flips and 90° turns are off and rotation is limited to ±15° because a digit's
    orientation carries its class (6 vs 9, a mirrored 2 or 7 is not a digit); ADA's full [−π, π]
    rotation would leak into the generator as soon as p nears 1 (ADA §2.2: augmentations must be
    "non-leaking", which needs p < 1 and invertible distributions).

    The p heuristic (ADA §3): ``update(real_logits)`` after each discriminator step accumulates
    sign(D(x_real)); every ``interval`` calls r_t = E[sign(D(x_real))] over them, and
    p ← clamp(p + sign(r_t − target) · N / (speed_kimg · 1000), 0, 1), with N the real images seen
    in those calls (summed over ranks under torch.distributed), so p can cross [0, 1] in
    ``speed_kimg`` thousand images (ADA: 500; short digits runs need far less, e.g. 10–50).

    Args:
        p_init: the starting p in [0, 1] (ADA: 0).
        p_fixed: if set, p is this constant in [0, 1] and never adapts (ADA's fixed-p ablation).
        target: the r_t target in (0, 1) (ADA: 0.6).
        interval: discriminator steps between p adjustments (ADA: 4).
        speed_kimg: thousands of real images for p to move by 1 (ADA's ada_kimg: 500).
        max_rotation_degrees: the largest rotation in [0, 180] degrees (ADA: 180; digits: 15).
        fill: the value outside the image; the platform's images are in [−1, 1] with −1 the black
            background, hence −1.
        xflip, rotate90, translate, scale, rotate, aniso, frac_translate, brightness, contrast:
            enable each augmentation (at least one must be enabled).
    """

    p: Tensor
    stats: Tensor

    def __init__(
        self,
        p_init: float = 0.0,
        p_fixed: float | None = None,
        target: float = 0.6,
        interval: int = 4,
        speed_kimg: float = 500.0,
        max_rotation_degrees: float = 15.0,
        fill: float = -1.0,
        xflip: bool = False,
        rotate90: bool = False,
        translate: bool = True,
        scale: bool = True,
        rotate: bool = True,
        aniso: bool = True,
        frac_translate: bool = True,
        brightness: bool = True,
        contrast: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 <= p_init <= 1.0:
            raise ValueError(f"p_init must be a probability in [0, 1], got {p_init}; ADA starts at 0.")
        if p_fixed is not None and not 0.0 <= p_fixed <= 1.0:
            raise ValueError(f"p_fixed must be None or a probability in [0, 1], got {p_fixed}.")
        if not 0.0 < target < 1.0:
            raise ValueError(f"target must be in (0, 1), got {target}; ADA uses 0.6.")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"interval must be a positive integer number of steps, got {interval!r}; ADA uses 4.")
        if not speed_kimg > 0.0:
            raise ValueError(f"speed_kimg must be positive (thousands of images), got {speed_kimg}; ADA uses 500.")
        if not 0.0 <= max_rotation_degrees <= 180.0:
            raise ValueError(f"max_rotation_degrees must be in [0, 180], got {max_rotation_degrees}.")
        if not math.isfinite(fill):
            raise ValueError(f"fill must be a finite float, got {fill}; use -1.0 for images in [-1, 1].")
        flags = (xflip, rotate90, translate, scale, rotate, aniso, frac_translate, brightness, contrast)
        if not any(flags):
            raise ValueError(
                "AdaptiveAugment needs at least one of xflip, rotate90, translate, scale, rotate, aniso, "
                "frac_translate, brightness, contrast set to True."
            )
        self.p_fixed = p_fixed
        self.target = target
        self.interval = interval
        self.speed_kimg = speed_kimg
        self.max_rotation_degrees = max_rotation_degrees
        self.fill = fill
        self.xflip, self.rotate90, self.translate = xflip, rotate90, translate
        self.scale, self.rotate, self.aniso, self.frac_translate = scale, rotate, aniso, frac_translate
        self.brightness, self.contrast = brightness, contrast
        self.register_buffer("p", torch.tensor(p_init if p_fixed is None else p_fixed, dtype=torch.float32))
        self._p = float(self.p)  # host copy so forward needs no device sync; refreshed on load below
        self.register_load_state_dict_post_hook(lambda module, _keys: module._sync_p())
        self.rt: float | None = None  # the last r_t, for logging
        # Σ sign(D(x)), the number of signs, of images, and of calls since the last adjustment: in the
        # checkpoint, so a run resumed between two adjustments moves p as an uninterrupted one.
        self.register_buffer("stats", torch.zeros(4, dtype=torch.float64))

    def _sync_p(self) -> None:
        self._p = float(self.p)

    @property
    def probability(self) -> float:
        """The current p, for logging."""
        return self._p

    @torch.no_grad()
    def update(self, real_logits: Tensor) -> None:
        """Accumulate sign(D(x_real)) from one discriminator step (real_logits (B,) or (B, 1)); every
        ``interval`` calls set r_t and move p by sign(r_t − target) · N / (speed_kimg · 1000)."""
        signs = torch.sign(real_logits.detach().double()).sum()
        self.stats[0] += signs
        self.stats[1:] += torch.tensor([real_logits.numel(), real_logits.shape[0], 1.0], dtype=torch.float64)
        if self.stats[3] < self.interval:
            return
        stats = self.stats[:3].clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)  # every rank then moves p identically
        sign_sum, count, images = stats.tolist()
        self.stats.zero_()
        self.rt = sign_sum / count
        if self.p_fixed is not None:
            return
        step = math.copysign(1.0, self.rt - self.target) if self.rt != self.target else 0.0
        self.p.fill_(min(max(self._p + step * images / (self.speed_kimg * 1000), 0.0), 1.0))
        self._sync_p()

    def _mask(self, b: int, images: Tensor, generator: torch.Generator | None) -> Tensor:
        """(B,) booleans, each True with probability p."""
        return _rand((b,), images, generator) < self._p

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """images (B, C, H, W) → augmented images of the same shape, dtype and device."""
        if self._p == 0.0:
            return images
        b, _, h, w = images.shape
        x, dev = images, images.device
        if self.xflip:
            x = torch.where(self._mask(b, x, generator)[:, None, None, None], x.flip(3), x)
        if self.rotate90:
            if h != w:
                raise ValueError(f"rotate90 needs square images, got {h}x{w}; set rotate90=False.")
            k = _randint(0, 4, b, x, generator) * self._mask(b, x, generator)  # (B,) quarter turns
            base = x
            for turns in (1, 2, 3):
                x = torch.where((k == turns)[:, None, None, None], torch.rot90(base, turns, (2, 3)), x)
        if self.translate:
            sy, sx = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
            dy = _randint(-sy, sy + 1, b, x, generator) * self._mask(b, x, generator)
            dx = _randint(-sx, sx + 1, b, x, generator) * self._mask(b, x, generator)
            x = translate_integer(x, dx, dy, self.fill)

        g = _matrices(b, dev)  # (B, 3, 3) in pixel units about the image centre
        geometric = False
        if self.scale:
            s = torch.where(self._mask(b, x, generator), torch.exp2(_randn((b,), x, generator) * 0.2), 1.0)
            g = g @ torch.diag_embed(torch.stack([s, s, torch.ones_like(s)], dim=1))
            geometric = True
        if self.rotate and self.max_rotation_degrees > 0:
            a = (_rand((b,), x, generator) * 2 - 1) * math.radians(self.max_rotation_degrees)
            a = a * self._mask(b, x, generator)
            rot = _matrices(b, dev)
            rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = a.cos(), -a.sin(), a.sin(), a.cos()
            g = g @ rot
            geometric = True
        if self.aniso:
            s = torch.where(self._mask(b, x, generator), torch.exp2(_randn((b,), x, generator) * 0.2), 1.0)
            g = g @ torch.diag_embed(torch.stack([s, 1 / s, torch.ones_like(s)], dim=1))
            geometric = True
        if self.frac_translate:
            t = _randn((b, 2), x, generator) * 0.125 * self._mask(b, x, generator)[:, None]
            shift = _matrices(b, dev)
            shift[:, 0, 2], shift[:, 1, 2] = t[:, 0] * w, t[:, 1] * h
            g = g @ shift
            geometric = True
        if geometric:
            # pixel units about the centre → align_corners=False normalised units: x_px = u · W / 2
            to_px = torch.diag(torch.tensor([w / 2, h / 2, 1.0], device=dev))
            to_norm = torch.diag(torch.tensor([2 / w, 2 / h, 1.0], device=dev))
            x = apply_affine(x, (to_norm @ g @ to_px)[:, :2], self.fill)

        if self.brightness:
            add = _randn((b,), x, generator) * 0.2 * self._mask(b, x, generator)
            x = x + add.to(x.dtype)[:, None, None, None]
        if self.contrast:
            mul = torch.where(self._mask(b, x, generator), torch.exp2(_randn((b,), x, generator) * 0.5), 1.0)
            x = x * mul.to(x.dtype)[:, None, None, None]
        return x
