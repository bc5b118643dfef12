"""ProGAN's networks: the fade-in at α = 0 and α = 1 for both networks, shapes at every stage, no gradient
into stages not yet grown, and clear errors for a bad stage or α (their equalised layers, pixel norm and
minibatch stddev: ``test_equalized.py``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lit_genvision.nn.progan import ProGANDiscriminator, ProGANGenerator, progan_channels

B, D, C, R = 4, 16, 3, 32
WIDTHS = {4: 16, 8: 16, 16: 8, 32: 8}


def generator(**kw) -> ProGANGenerator:
    torch.manual_seed(0)
    return ProGANGenerator(**{"latent_dim": D, "max_resolution": R, "out_channels": C, "channels": WIDTHS, **kw})


def discriminator(**kw) -> ProGANDiscriminator:
    torch.manual_seed(0)
    return ProGANDiscriminator(**{"max_resolution": R, "in_channels": C, "channels": WIDTHS, **kw})


def randomise_biases(module: torch.nn.Module) -> torch.nn.Module:
    """Biases start at 0; move them so a mis-scaled bias cannot pass."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g))
    return module


def latents(n: int = B, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed))


def images(size: int, n: int = B, seed: int = 2) -> torch.Tensor:
    return torch.randn(n, C, size, size, generator=torch.Generator().manual_seed(seed))


# --- shapes and channel rule ---------------------------------------------------------------------


def test_channel_rule_is_the_papers():
    assert progan_channels(1024) == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert progan_channels(32, WIDTHS) == [16, 16, 8, 8]
    with pytest.raises(ValueError, match="missing \\[32\\]"):
        progan_channels(32, {4: 8, 8: 8, 16: 8})
    with pytest.raises(ValueError, match="max_resolution must be 4·2\\^k"):
        ProGANGenerator(max_resolution=24)


@pytest.mark.parametrize("out_channels", [1, 3])
def test_shapes_at_every_stage(out_channels):
    g, d = generator(out_channels=out_channels), discriminator(in_channels=out_channels)
    assert g.num_stages == d.num_stages == 4
    for stage, size in enumerate([4, 8, 16, 32]):
        assert g.resolution(stage) == d.resolution(stage) == size
        for alpha in (0.0, 0.5, 1.0):
            x = g(latents(), stage, alpha)
            assert x.shape == (B, out_channels, size, size)
            assert d(x, stage, alpha).shape == (B,)


# --- fade-in -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_generator_fade_in_starts_at_the_upsampled_previous_stage(stage):
    g, z = generator(), latents()
    previous = F.interpolate(g(z, stage - 1, 1.0), scale_factor=2, mode="nearest")
    torch.testing.assert_close(g(z, stage, 0.0), previous)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_generator_fade_in_ends_at_the_new_blocks_to_rgb(stage):
    g, z = randomise_biases(generator()), latents()
    h = z
    for block in g.blocks[: stage + 1]:
        h = block(h)
    torch.testing.assert_close(g(z, stage, 1.0), g.to_rgb[stage](h))
    # and halfway it is the blend of the two
    previous = F.interpolate(g(z, stage - 1, 1.0), scale_factor=2, mode="nearest")
    torch.testing.assert_close(g(z, stage, 0.25), 0.75 * previous + 0.25 * g.to_rgb[stage](h))


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_discriminator_fade_in_starts_at_the_downsampled_previous_stage(stage):
    d, x = randomise_biases(discriminator()), images(4 * 2**stage)
    torch.testing.assert_close(d(x, stage, 0.0), d(F.avg_pool2d(x, 2), stage - 1, 1.0))


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_discriminator_fade_in_ends_at_the_new_block(stage):
    d, x = randomise_biases(discriminator()), images(4 * 2**stage)
    h = d.from_rgb[stage](x)
    for s in range(stage, 0, -1):
        h = d.blocks[s](h)
    torch.testing.assert_close(d(x, stage, 1.0), d.head(h))


# --- growth leaves later stages untouched --------------------------------------------------------


@pytest.mark.parametrize("stage, alpha", [(0, 1.0), (1, 0.5), (2, 1.0)])
def test_later_stages_get_no_gradient(stage, alpha):
    g, d = generator(), discriminator()
    d(g(latents(), stage, alpha), stage, alpha).sum().backward()
    for net in (g, d):
        for name, p in net.named_parameters():
            index = int(name.split(".")[1]) if name.startswith(("blocks.", "to_rgb.", "from_rgb.")) else 0
            used = index <= stage
            if name.startswith(("to_rgb.", "from_rgb.")):  # stage s − 1's RGB layer only during a fade-in
                used = index == stage or (index == stage - 1 and alpha < 1.0)
            assert (p.grad is not None) == used, name
            if used:
                assert p.grad.abs().sum() > 0, name


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stage, alpha, message",
    [
        (4, 1.0, r"stage must be an integer in \[0, 3\], got 4\."),
        (-1, 1.0, r"stage must be an integer in \[0, 3\], got -1\."),
        (1.5, 1.0, r"stage must be an integer in \[0, 3\], got 1\.5\."),
        (1, 1.5, r"alpha must lie in \[0, 1\], got 1\.5\."),
        (1, -0.1, r"alpha must lie in \[0, 1\], got -0\.1\."),
        (1, float("nan"), r"alpha must lie in \[0, 1\], got nan\."),
    ],
)
def test_bad_stage_or_alpha_raises_one_clear_sentence(stage, alpha, message):
    g, d = generator(), discriminator()
    with pytest.raises(ValueError, match=f"^{message}$"):
        g(latents(), stage, alpha)
    with pytest.raises(ValueError, match=f"^{message}$"):
        d(images(8), stage, alpha)


def test_discriminator_rejects_an_image_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"stage 1 takes 8×8 images, got \(16, 16\)\."):
        discriminator()(images(16), 1, 1.0)


def test_stage_accepts_an_integer_tensor():
    g = generator()
    assert g(latents(), torch.tensor(1), torch.tensor(0.5)).shape == (B, C, 8, 8)
