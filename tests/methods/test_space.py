"""The sampling space as a property of the model: pixels are bounded (x̂_0 clipped, output clamped),
latents are not (no clipping; the decoded image is clamped); the latent scale factor is 1/std."""

from __future__ import annotations

import pytest
import torch
from fixtures.latent import PoolAutoencoder
from torch import nn

from lit_genvision.methods import DDIMSampler, LinearSchedule
from lit_genvision.methods.space import LatentSpace, PixelSpace


def constant_x0(value: float):
    """A network that predicts x̂_0 = value everywhere (prediction='x0')."""
    return lambda x, t, cond: torch.full_like(x, value)


@pytest.mark.parametrize("clip", [True, False])
def test_the_sampler_clips_x0_only_in_a_bounded_space(clip):
    sampler, schedule = DDIMSampler(steps=5), LinearSchedule(50)
    x_T = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    out = sampler(constant_x0(2.5), schedule, x_T, prediction="x0", clip=clip)
    # DDIM η = 0 ends at its last x̂_0: clipped to 1 in pixels, the network's 2.5 in latents
    torch.testing.assert_close(out, torch.full_like(out, 1.0 if clip else 2.5))


def test_pixel_space_is_the_identity_and_clamps_the_output():
    space, x = PixelSpace(), torch.linspace(-2, 2, 8).view(1, 2, 2, 2)
    assert space.bounded and torch.equal(space.encode(x), x)
    assert torch.equal(space.decode(x), x.clamp(-1, 1))
    assert space.sample_shape((1, 16, 16)) == space.image_shape((1, 16, 16)) == (1, 16, 16)


def test_the_scale_factor_is_one_over_the_std_of_the_latents():
    space = LatentSpace(PoolAutoencoder())
    images = [torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(3)]
    s = space.fit_scale(images)
    z = torch.cat([PoolAutoencoder().encode(x) for x in images]).double()
    assert s == pytest.approx(1 / z.std(unbiased=False).item(), rel=1e-6)  # a float32 buffer
    assert space.encode(images[0]).double().std(unbiased=False).item() == pytest.approx(1.0, abs=0.2)
    # decode(encode(x)) = D(E(x)) clamped: the scale cancels
    torch.testing.assert_close(
        space.decode(space.encode(images[0])),
        PoolAutoencoder().decode(PoolAutoencoder().encode(images[0])).clamp(-1, 1),
    )


def test_latent_shapes_come_from_the_autoencoder():
    space = LatentSpace(PoolAutoencoder(), scale_factor=0.5)
    assert not space.bounded and space.sample_shape((1, 16, 16)) == (1, 8, 8)
    assert space.image_shape((1, 8, 8)) == (1, 16, 16)


def test_the_scale_factor_travels_in_the_state_dict_and_an_unscaled_space_refuses_to_encode():
    a = LatentSpace(PoolAutoencoder(), scale_factor=0.25)
    b = LatentSpace(PoolAutoencoder())
    with pytest.raises(RuntimeError, match="no scale factor yet; call fit_scale"):
        b.encode(torch.zeros(1, 1, 4, 4))
    b.load_state_dict(a.state_dict())
    assert b.is_scaled and float(b.scale_factor) == 0.25


def test_the_autoencoder_is_frozen_and_stays_in_eval_mode():
    ae = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Dropout(0.5))
    ae.encode, ae.decode = ae.forward, ae.forward
    space = LatentSpace(ae, scale_factor=1.0).train()
    assert not any(p.requires_grad for p in space.parameters()) and not ae.training


@pytest.mark.parametrize("value", [0.0, -1.0, float("inf")])
def test_a_bad_scale_factor_is_refused(value):
    with pytest.raises(ValueError, match="scale_factor must be a positive number"):
        LatentSpace(PoolAutoencoder(), scale_factor=value)
