"""ProGANModel: progressive growing of a GAN (Karras et al. 2018, arXiv 1710.10196).

Training starts at 4×4 and doubles the resolution stage by stage. Stage 0 trains for
``stable_images`` real images; every later stage s first fades its new blocks in over
``fade_images`` images, α rising linearly from 0 to 1, then trains stably for ``stable_images``:

    images seen t < S:           stage 0, α = 1
    otherwise, u = t − S:        stage s = 1 + ⌊u / (F + S)⌋ (at most the last), α = min((u mod (F + S)) / F, 1)

Growth is state: the count of real images the discriminator has seen (``images_seen``, a buffer in
the checkpoint) decides stage and α, so a run resumed in the middle of a fade-in continues exactly.
The real images are shown at the stage's resolution (area downsampling) and faded in like the
generator's output: x = α·x_s + (1 − α)·up(down(x_s)) (the paper's §A.1).

Loss: WGAN-GP (λ = 10) with the drift term ε_drift·E[D(x)²], ε_drift = 0.001 (§A.1), Adam lr 0.001,
β = (0, 0.99), equalised learning rate in the networks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_genvision.checks import check_float, check_int
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.models.gan import GANModel
from lit_genvision.nn.progan import ProGANDiscriminator, ProGANGenerator


def growth(images_seen: int, stable_images: int, fade_images: int, num_stages: int) -> tuple[int, float]:
    """(stage, α) after ``images_seen`` real images under the schedule in the module docstring."""
    if images_seen < stable_images:
        return 0, 1.0
    u = images_seen - stable_images
    stage = 1 + u // (fade_images + stable_images)
    if stage >= num_stages:
        return num_stages - 1, 1.0
    return stage, min((u % (fade_images + stable_images)) / fade_images, 1.0) if fade_images else 1.0


class ProGANModel(GANModel):
    """A progressively grown GAN; the generator and critic are ``nn.ProGANGenerator``/``ProGANDiscriminator``.

    Args:
        generator: the growing generator (unconditional).
        discriminator: the growing critic, of the same number of stages.
        stable_images: real images per stable phase (the paper: 800k).
        fade_images: real images per fade-in (the paper: 800k).
        batch_sizes: ``{resolution: batch size}`` per stage (the paper shrinks it at high resolution);
            a stage uses the first B images of each loaded batch, so the data module's batch size is
            the largest. None: the loaded batch at every stage.
        gp_weight: λ of WGAN-GP (10).
        drift_weight: ε_drift of the drift term (0.001).
        n_critic: critic steps per generator step (1 in the paper).
        lr: Adam learning rate of both networks (0.001).
        betas: Adam betas ((0, 0.99)).
        augment: discriminator augmentation (see ``GANModel``).
    """

    images_seen: Tensor

    def __init__(
        self,
        generator: ProGANGenerator,
        discriminator: ProGANDiscriminator,
        stable_images: int = 800_000,
        fade_images: int = 800_000,
        batch_sizes: dict[int, int] | None = None,
        gp_weight: float = 10.0,
        drift_weight: float = 0.001,
        n_critic: int = 1,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.0, 0.99),
        augment: nn.Module | None = None,
    ) -> None:
        if generator.num_stages != discriminator.num_stages:
            raise ValueError(
                f"the generator grows to {generator.max_resolution}×{generator.max_resolution} but the "
                f"discriminator to {discriminator.max_resolution}×{discriminator.max_resolution}; build both with "
                "the same max_resolution."
            )
        super().__init__(
            generator,
            discriminator,
            loss="wasserstein",
            gp_weight=gp_weight,
            n_critic=n_critic,
            lr_g=lr,
            lr_d=lr,
            betas=betas,
            image_shape=(generator.out_channels, generator.max_resolution, generator.max_resolution),
            augment=augment,
        )
        self.save_config()
        check_int("stable_images", stable_images, low=1, hint="pass the real images per stable phase, e.g. 800000")
        check_int("fade_images", fade_images, low=0, hint="pass the real images per fade-in, e.g. 800000")
        check_float("drift_weight", drift_weight, low=0, hint="pass 0.001 as the paper, or 0 to turn it off")
        resolutions = [generator.resolution(s) for s in range(generator.num_stages)]
        for resolution, size in (batch_sizes or {}).items():
            if int(resolution) not in resolutions:
                raise ValueError(
                    f"batch_sizes names resolution {resolution}, which is not a stage of this model "
                    f"({', '.join(map(str, resolutions))}); give a batch size per stage resolution."
                )
            check_int(f"batch_sizes[{resolution}]", size, low=1, hint="pass a positive batch size")
        self.stable_images, self.fade_images, self.drift_weight = stable_images, fade_images, drift_weight
        self.batch_sizes = {int(k): int(v) for k, v in (batch_sizes or {}).items()}
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ growth

    @property
    def growth(self) -> tuple[int, float]:
        """(stage, α) now."""
        return growth(int(self.images_seen), self.stable_images, self.fade_images, self.generator.num_stages)

    @property
    def resolution(self) -> int:
        """The side of the images at the current stage."""
        return self.generator.resolution(self.growth[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, R, R) at the current stage: what ``sample`` returns."""
        return (self.generator.out_channels, self.resolution, self.resolution)

    @image_shape.setter
    def image_shape(self, value: tuple[int, ...]) -> None:  # GANModel sets the final shape; growth decides
        pass

    def real_images(self, batch: dict[str, Tensor]) -> Tensor:
        """The batch at the current stage's batch size and resolution, faded in like the generator's output."""
        stage, alpha = self.growth
        x = batch["image"]
        size = self.batch_sizes.get(self.resolution)
        if size is not None:
            if size > len(x):
                raise ValueError(
                    f"batch_sizes asks for {size} images at {self.resolution}×{self.resolution} but the data module "
                    f"loads batches of {len(x)}; set the data module's batch_size to the largest of batch_sizes."
                )
            x = x[:size]
        if x.shape[-1] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="area")
        if alpha < 1.0:
            x = torch.lerp(F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest"), x, alpha)
        return x

    def generate(self, z: Tensor, cond: dict | None) -> Tensor:
        stage, alpha = self.growth
        return self.generator(z, stage, alpha)

    def discriminate(self, images: Tensor, cond: dict | None) -> Tensor:
        stage, alpha = self.growth
        return self.discriminator(images, stage, alpha)

    def d_penalties(self, real: Tensor, fake: Tensor, cond: dict | None, d_real: Tensor, logs: dict) -> Tensor:
        """λ·GP plus the drift term ε_drift·E[D(x)²], which keeps the critic's scores near 0."""
        total = super().d_penalties(real, fake, cond, d_real, logs)
        if self.drift_weight:
            drift = d_real.pow(2).mean()
            logs["d/drift"] = drift
            total = total + self.drift_weight * drift
        return total

    def after_d_step(self, real: Tensor, d_real: Tensor, logs: dict) -> None:
        super().after_d_step(real, d_real, logs)
        self.images_seen += len(real)
        stage, alpha = self.growth
        logs |= {"grow/stage": float(stage), "grow/alpha": alpha, "grow/resolution": float(self.resolution)}

    def draw(self, z: Tensor, cond: dict | None, options: SampleOptions | None = None) -> Tensor:
        """G(z) at the current stage and α: (num, C, R, R) with R the current resolution."""
        return self.generate(z, cond)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        stage, alpha = self.growth
        checkpoint.setdefault("lit_genvision", {})["growth"] = {
            "images_seen": int(self.images_seen),
            "stage": stage,
            "alpha": alpha,
            "resolution": self.resolution,
        }
