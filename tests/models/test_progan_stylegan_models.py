"""ProGANModel's growth and StyleGANModel's regularisers, style bands, truncation and interpolation on tiny
networks (the networks themselves are tested in tests/nn/)."""

from __future__ import annotations

import math

import pytest
import torch

from lit_genvision.methods.gan import r1_penalty
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.models import GANModel, ProGANModel, StyleGANModel
from lit_genvision.models.progan import growth
from lit_genvision.models.stylegan import band_layers, band_of
from lit_genvision.nn import (
    DCGANDiscriminator,
    DCGANGenerator,
    ProGANDiscriminator,
    ProGANGenerator,
    StyleGANDiscriminator,
    StyleGANGenerator,
)

WIDTHS = {4: 8, 8: 8, 16: 4}


def progan(**kwargs) -> ProGANModel:
    torch.manual_seed(0)
    g = ProGANGenerator(latent_dim=8, max_resolution=16, out_channels=1, channels=WIDTHS)
    d = ProGANDiscriminator(max_resolution=16, in_channels=1, channels=WIDTHS)
    return ProGANModel(g, d, **({"stable_images": 64, "fade_images": 32} | kwargs))


def stylegan(resolution: int = 16, **kwargs) -> StyleGANModel:
    torch.manual_seed(0)
    g = StyleGANGenerator(
        z_dim=8, w_dim=8, img_resolution=resolution, img_channels=1, mapping_layers=2, channel_base=64, channel_max=8
    )
    d = StyleGANDiscriminator(img_resolution=resolution, img_channels=1, channel_base=64, channel_max=8)
    return StyleGANModel(g, d, **kwargs)


# ---------------------------------------------------------------------------------------------- ProGAN


@pytest.mark.parametrize(
    ("seen", "expected"),
    [(0, (0, 1.0)), (63, (0, 1.0)), (64, (1, 0.0)), (80, (1, 0.5)), (96, (1, 1.0)), (159, (1, 1.0)),
     (160, (2, 0.0)), (176, (2, 0.5)), (192, (2, 1.0)), (10_000, (2, 1.0))],
)  # fmt: skip
def test_growth_follows_the_schedule_stable_then_fade_in_then_stable(seen, expected):
    """S = 64 stable images at 4×4, then per stage F = 32 of fade-in (α linear) and S stable; the last stage stays."""
    assert growth(seen, 64, 32, 3) == expected


def test_progan_samples_at_the_current_resolution():
    model = progan()
    assert model.sample(2).shape == (2, 1, 4, 4) and model.image_shape == (1, 4, 4)
    model.images_seen.fill_(80)  # stage 1, α = 0.5
    assert model.growth == (1, 0.5) and model.sample(2).shape == (2, 1, 8, 8)
    model.images_seen.fill_(10_000)
    assert model.sample(2).shape == (2, 1, 16, 16) and model.image_shape == (1, 16, 16)


def test_progan_real_images_are_faded_in_like_the_generator():
    """x = α·x_R + (1 − α)·up(down(x_R)) at the stage's resolution R (area downsampling)."""
    model = progan()
    model.images_seen.fill_(88)  # stage 1 (8×8), α = 0.75
    x = torch.randn(4, 1, 16, 16)
    x8 = torch.nn.functional.avg_pool2d(x, 2)
    blurred = torch.nn.functional.avg_pool2d(x8, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(model.real_images({"image": x}), 0.75 * x8 + 0.25 * blurred)


def test_progan_stage_batch_size_takes_the_first_images_and_refuses_more_than_loaded():
    model = progan(batch_sizes={4: 3, 16: 8})
    assert len(model.real_images({"image": torch.randn(5, 1, 16, 16)})) == 3
    model.images_seen.fill_(10_000)
    with pytest.raises(ValueError, match="set the data module's batch_size"):
        model.real_images({"image": torch.randn(5, 1, 16, 16)})


def test_progan_refuses_a_batch_size_for_a_resolution_it_does_not_have():
    with pytest.raises(ValueError, match="batch_sizes names resolution 32"):
        progan(batch_sizes={32: 4})


def test_progan_critic_penalty_adds_the_drift_term_to_the_gradient_penalty():
    model = progan(gp_weight=0.0, drift_weight=0.5)
    logs: dict = {}
    d_real = torch.tensor([1.0, -3.0])
    total = model.d_penalties(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4), None, d_real, logs)
    assert total.item() == pytest.approx(0.5 * (1 + 9) / 2) and logs["d/drift"].item() == pytest.approx(5.0)


# ---------------------------------------------------------------------------------------------- StyleGAN


def test_style_bands_partition_the_layers_coarse_to_fine():
    """32²: 8 ws — 4×4 conv [0], 8×8 convs [1, 2] coarse; 16×16 [3, 4] middle; 32×32 [5, 6] and the last toRGB fine."""
    g = stylegan(32).generator
    assert band_layers(g, "coarse") == [0, 1, 2]
    assert band_layers(g, "middle") == [3, 4]
    assert band_layers(g, "fine") == [5, 6, 7]
    g128 = StyleGANGenerator(
        z_dim=4, w_dim=4, img_resolution=128, img_channels=1, mapping_layers=1, channel_base=512, channel_max=4
    )
    layers = sum((band_layers(g128, b) for b in ("coarse", "middle", "fine")), [])
    assert sorted(layers) == list(range(g128.num_ws))
    assert [band_of(r, 128) for r in (4, 8, 16, 32, 64, 128)] == ["coarse"] * 2 + ["middle"] * 2 + ["fine"] * 2


def test_style_mix_takes_the_crossover_band_from_the_row_source_and_the_rest_from_the_column_source():
    model = stylegan(16).eval()
    z_rows, z_cols = torch.randn(2, 8), torch.randn(3, 8)
    grid = model.style_mix(z_rows, z_cols, "coarse")
    ws_rows, ws_cols = model.ws(z_rows), model.ws(z_cols)
    layers = band_layers(model.generator, "coarse")
    ws = ws_cols[2].clone()
    ws[layers] = ws_rows[1, layers]
    torch.testing.assert_close(grid[1 * 3 + 2], model.synthesise(ws[None])[0])
    same = model.style_mix(z_rows, z_rows, "middle")  # a source mixed with itself is itself
    torch.testing.assert_close(
        same[0], model.sample(1, options=SampleOptions(noise=z_rows[:1]))[0], rtol=1e-5, atol=1e-5
    )


def test_truncation_to_zero_draws_the_mean_image_for_every_z():
    model = stylegan(16)
    model.generator.mapping.w_avg.normal_()
    model.truncation_psi = 0.0
    images = model.sample(3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(images[0], images[2])
    assert model.sampling_protocol() == ("truncation0", 1)
    model.truncation_psi = 1.0
    assert model.sampling_protocol() == ("direct", 1)
    with pytest.raises(ValueError, match="truncation"):
        model.truncation_psi = -0.5


def test_interpolation_in_w_starts_and_ends_at_the_two_sources():
    model = stylegan(16)
    a, b = torch.randn(1, 8), torch.randn(1, 8)
    path = model.interpolate(a, b, 4)
    torch.testing.assert_close(path[0], model.sample(1, options=SampleOptions(noise=a))[0])
    torch.testing.assert_close(path[-1], model.sample(1, options=SampleOptions(noise=b))[0])


def test_lazy_r1_runs_every_interval_steps_scaled_by_the_interval():
    """k_D·γ/2·E‖∇D(x)‖² on steps k_D, 2k_D, …; nothing in between."""
    model = stylegan(16, r1_gamma=3.0, r1_interval=2)
    real = torch.randn(4, 1, 16, 16)
    totals = [model.d_penalties(real, real, None, torch.zeros(4), {}) for _ in range(4)]
    expected = r1_penalty(lambda x: model.discriminate(x, None), real) * 3.0 / 2 * 2
    assert totals[0].item() == totals[2].item() == 0.0
    torch.testing.assert_close(totals[1], expected)
    torch.testing.assert_close(totals[3], expected)


def test_path_length_mean_moves_by_the_decay_and_the_penalty_reaches_the_generator():
    model = stylegan(16, pl_decay=0.25)
    penalty, length = model.path_length_penalty(torch.randn(4, 8), None)
    assert model.pl_mean.item() == pytest.approx(0.25 * length.item(), rel=1e-5)  # a ← a + 0.25·(mean − a), a₀ = 0
    penalty.backward()
    assert model.generator.synthesis.blocks[0].conv1.weight.grad.abs().sum() > 0


def test_lazy_regularisation_corrects_learning_rate_and_betas():
    """lr·c and β^c with c = k/(k + 1) (StyleGAN2 App. B)."""
    model = stylegan(16, lr=0.002, betas=(0.5, 0.99), r1_interval=16, pl_interval=4)
    opt_g, opt_d = model.configure_optimizers()
    assert opt_g.defaults["lr"] == pytest.approx(0.002 * 4 / 5) and opt_d.defaults["lr"] == pytest.approx(
        0.002 * 16 / 17
    )
    assert opt_d.defaults["betas"] == pytest.approx((0.5 ** (16 / 17), 0.99 ** (16 / 17)))
    plain = stylegan(16, lr=0.002, r1_gamma=0.0, pl_weight=0.0).configure_optimizers()
    assert plain[0].defaults["lr"] == plain[1].defaults["lr"] == 0.002


# ---------------------------------------------------------------------------------------------- augmentation


class Recorder(torch.nn.Module):
    """An augmentation that flips the sign and records the reals' logits it was told about."""

    probability = 0.5

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        return -x

    def update(self, logits):
        self.seen.append(logits)


def test_gan_critic_scores_through_the_augmentation_and_feeds_it_the_real_logits():
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=4, image_size=8, out_channels=1, width=8)
    d = DCGANDiscriminator(in_channels=1, image_size=8, width=8, norm="none")
    augment = Recorder()
    model = GANModel(g, d, augment=augment)
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(model.critic(x, None), d(-x, None).flatten())
    logs: dict = {}
    model.after_d_step(x, torch.tensor([1.0, -1.0, 2.0]), logs)
    assert torch.equal(augment.seen[0], torch.tensor([1.0, -1.0, 2.0])) and logs["aug/p"] == 0.5


def test_path_length_uses_the_same_formula_as_a_direct_recomputation():
    """‖J_wᵀ y‖ per w, averaged over the layers then square-rooted, y ~ N(0, I)/√(HW) (seeded identically)."""
    model = stylegan(16, style_mixing=0.0)
    z = torch.randn(2, 8)
    torch.manual_seed(1)
    _, length = model.path_length_penalty(z, None)
    torch.manual_seed(1)  # replay the draws: the second z, the mixing coin and crossover, then the noise maps
    torch.randn_like(z), torch.rand(()), torch.randint(1, model.generator.num_ws, ())
    ws = model.generator.mapping(z, None, num_ws=model.generator.num_ws).detach().requires_grad_(True)
    images = model.generator.synthesis(ws)
    y = torch.randn_like(images) / math.sqrt(16 * 16)
    (grad,) = torch.autograd.grad((images * y).sum(), ws)
    torch.testing.assert_close(length, grad.square().sum(2).mean(1).sqrt().mean())
