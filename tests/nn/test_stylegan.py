"""StyleGAN2 networks: the grouped modulated conv against its per-sample reference, demodulation's unit
variance, equalised LR in the mapping, truncation, w_avg tracking, style mixing, noise modes, the ws count,
and the residual discriminator (conditioning, gradients; the mbstd channel: ``test_equalized.py``)."""

from __future__ import annotations

import math

import pytest
import torch

from lit_genvision.nn.equalized import EqualizedLinear
from lit_genvision.nn.stylegan import (
    MappingNetwork,
    StyleGANDiscriminator,
    StyleGANGenerator,
    SynthesisNetwork,
    modulated_conv2d,
    modulated_conv2d_reference,
)

Z, W = 16, 16
SMALL = {"channel_base": 128, "channel_max": 16}  # 16 channels at ≤ 8², 8 at 16², 4 at 32²


def tiny_generator(**kw) -> StyleGANGenerator:
    torch.manual_seed(0)
    return StyleGANGenerator(**{"z_dim": Z, "w_dim": W, "img_resolution": 16, "img_channels": 1, **SMALL, **kw})


def set_noise_strength(g: StyleGANGenerator, value: float) -> None:
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(value)


# ---------------------------------------------------------------------------------------------------- modulated conv


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("kernel", [3, 1])
def test_grouped_modconv_equals_per_sample_reference(demodulate: bool, up: int, kernel: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 6, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(7, 5, kernel, kernel, generator=g, dtype=torch.float64)
    styles = torch.randn(3, 5, generator=g, dtype=torch.float64) + 1
    out = modulated_conv2d(x, weight, styles, demodulate=demodulate, up=up)
    ref = modulated_conv2d_reference(x, weight, styles, demodulate=demodulate, up=up)
    assert out.shape == (3, 7, 6 * up, 6 * up)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    out32 = modulated_conv2d(x.float(), weight.float(), styles.float(), demodulate=demodulate, up=up)
    torch.testing.assert_close(out32, ref.float(), atol=1e-5, rtol=1e-4)


def test_demodulation_normalises_output_variance() -> None:
    """Eq. 3: for unit-variance i.i.d. input, each output channel has variance Σ w''² = 1 whatever the style;
    without it the variance is Σ_i s_i² Σ_k w_ijk² and scales with |s|²."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 130, 130, generator=g)  # valid conv: 128² outputs per channel, no border effects
    weight = torch.randn(6, 8, 3, 3, generator=g)
    styles = torch.rand(2, 8, generator=g) * 2 + 0.2
    for scale in (1.0, 3.0):
        var = modulated_conv2d(x, weight, styles * scale, padding=0).var(dim=(2, 3))  # (B, O)
        assert torch.allclose(var, torch.ones_like(var), rtol=0.1), var
    var1 = modulated_conv2d(x, weight, styles, demodulate=False, padding=0).var(dim=(2, 3))
    var3 = modulated_conv2d(x, weight, 3 * styles, demodulate=False, padding=0).var(dim=(2, 3))
    expected = (weight[None] * styles[:, None, :, None, None]).square().sum(dim=(2, 3, 4))  # (B, O)
    torch.testing.assert_close(var1, expected, rtol=0.1, atol=0.0)
    torch.testing.assert_close(var3 / var1, torch.full_like(var1, 9.0), rtol=1e-4, atol=0.0)


# ---------------------------------------------------------------------------------------------------- mapping


def test_mapping_equalised_lr_weights() -> None:
    torch.manual_seed(0)
    lr = 0.01
    m = MappingNetwork(z_dim=64, w_dim=64, num_layers=8, lr_multiplier=lr)
    layers = [layer for layer in m.modules() if isinstance(layer, EqualizedLinear)]
    assert len(layers) == 8
    for layer in layers:
        stored = layer.weight.detach()
        assert abs(stored.mean().item()) < 0.1 / lr
        assert stored.std().item() == pytest.approx(1 / lr, rel=0.05)  # N(0, 1)/lr_mul
        effective = layer.effective_weight().detach()
        torch.testing.assert_close(effective, stored * lr / math.sqrt(layer.in_features))
        assert effective.std().item() == pytest.approx(1 / math.sqrt(layer.in_features), rel=0.05)  # He


def test_mapping_shapes_and_label_conditioning() -> None:
    torch.manual_seed(0)
    m = MappingNetwork(Z, W, num_layers=2, num_classes=3).eval()
    z = torch.randn(4, Z)
    assert m(z, torch.tensor([0, 1, 2, 0])).shape == (4, W)
    assert m(z, torch.tensor([0, 1, 2, 0]), num_ws=5).shape == (4, 5, W)
    assert not torch.allclose(m(z, torch.zeros(4, dtype=torch.long)), m(z, torch.ones(4, dtype=torch.long)))
    with pytest.raises(ValueError, match="label"):
        m(z)


def test_truncation() -> None:
    torch.manual_seed(0)
    m = MappingNetwork(Z, W, num_layers=2)
    with torch.no_grad():
        m.w_avg.copy_(torch.randn(W))
    m.eval()
    z = torch.randn(4, Z)
    w = m(z, num_ws=6)
    assert torch.equal(m(z, num_ws=6, truncation_psi=1.0), w)
    assert torch.equal(m(z, num_ws=6, truncation_psi=0.0), m.w_avg.expand(4, 6, W))
    half = m(z, num_ws=6, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(half[:, :2], m.w_avg + 0.5 * (w[:, :2] - m.w_avg))
    assert torch.equal(half[:, 2:], w[:, 2:])
    torch.testing.assert_close(m(z, truncation_psi=0.0), m.w_avg.expand(4, W))


def test_w_avg_moves_only_in_training_mode() -> None:
    torch.manual_seed(0)
    m = MappingNetwork(Z, W, num_layers=2)
    z = torch.randn(8, Z)
    m.eval()
    m(z)
    assert torch.equal(m.w_avg, torch.zeros(W))
    m.train()
    w = m(z, update_w_avg=False)
    assert torch.equal(m.w_avg, torch.zeros(W))
    m(z)
    torch.testing.assert_close(m.w_avg, (1 - 0.995) * w.detach().mean(0))  # lerp from 0 with β = 0.995
    assert "w_avg" in m.state_dict()


# ---------------------------------------------------------------------------------------------------- generator


@pytest.mark.parametrize(("resolution", "num_ws"), [(16, 6), (32, 8)])
def test_generator_shapes(resolution: int, num_ws: int) -> None:
    g = tiny_generator(img_resolution=resolution)
    assert g.num_ws == g.synthesis.num_ws == num_ws == 2 * int(math.log2(resolution)) - 2
    img = g(torch.randn(2, Z))
    assert img.shape == (2, 1, resolution, resolution)
    assert torch.isfinite(img).all()
    with pytest.raises(ValueError, match="ws must be"):
        g.synthesis(torch.randn(2, num_ws - 1, W))


def test_generator_gradients_reach_every_parameter() -> None:
    g = tiny_generator()
    set_noise_strength(g, 0.1)
    g(torch.randn(2, Z)).square().mean().backward()
    missing = [n for n, p in g.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_noise_modes() -> None:
    g = tiny_generator().eval()
    set_noise_strength(g, 0.5)
    z = torch.randn(2, Z)
    assert torch.equal(g(z, noise_mode="const"), g(z, noise_mode="const"))
    assert torch.equal(g(z, noise_mode="none"), g(z, noise_mode="none"))
    assert not torch.allclose(g(z, noise_mode="random"), g(z, noise_mode="random"))
    assert not torch.allclose(g(z, noise_mode="const"), g(z, noise_mode="none"))
    with pytest.raises(ValueError, match="noise_mode"):
        g(z, noise_mode="fresh")  # type: ignore[arg-type]


def test_mix_takes_layers_before_crossover_from_a() -> None:
    g = tiny_generator()
    ws_a, ws_b = torch.randn(2, g.num_ws, W), torch.randn(2, g.num_ws, W)
    for crossover in range(g.num_ws + 1):
        mixed = g.mix(ws_a, ws_b, crossover)
        assert torch.equal(mixed[:, :crossover], ws_a[:, :crossover])
        assert torch.equal(mixed[:, crossover:], ws_b[:, crossover:])


def test_each_layer_reads_its_own_w() -> None:
    """Changing ws[:, i] changes the image for every i (each w reaches a layer; the last, the final ToRGB)."""
    g = tiny_generator().eval()
    ws = torch.randn(1, g.num_ws, W)
    base = g.synthesis(ws, noise_mode="none")
    for i in range(g.num_ws):
        other = ws.clone()
        other[:, i] += 1.0
        assert not torch.allclose(g.synthesis(other, noise_mode="none"), base), i


def test_style_mixing_ws_probability() -> None:
    g = tiny_generator().eval()
    z1, z2 = torch.randn(3, Z), torch.randn(3, Z)
    ws1, ws2 = g.mapping(z1, num_ws=g.num_ws), g.mapping(z2, num_ws=g.num_ws)
    rng = torch.Generator().manual_seed(0)
    for _ in range(20):
        assert torch.equal(g.style_mixing_ws(z1, z2, prob=0.0, generator=rng), ws1)
    crossovers = set()
    for _ in range(20):
        ws = g.style_mixing_ws(z1, z2, prob=1.0, generator=rng)
        assert torch.equal(ws[:, 0], ws1[:, 0]) and torch.equal(ws[:, -1], ws2[:, -1])  # some layer from each
        from_a = [bool(torch.equal(ws[:, i], ws1[:, i])) for i in range(g.num_ws)]
        crossover = from_a.index(False)
        assert all(from_a[:crossover]) and not any(from_a[crossover:])
        crossovers.add(crossover)
    assert len(crossovers) > 1 and crossovers <= set(range(1, g.num_ws))


def test_style_mixing_leaves_w_avg_to_z1() -> None:
    g = tiny_generator().train()
    z1, z2 = torch.randn(4, Z), torch.randn(4, Z)
    ws = g.style_mixing_ws(z1, z2, prob=1.0, generator=torch.Generator().manual_seed(0))
    w1 = ws[:, 0].detach()
    torch.testing.assert_close(g.mapping.w_avg, (1 - 0.995) * w1.mean(0))


def test_conditional_generator() -> None:
    g = tiny_generator(num_classes=4).eval()
    z = torch.randn(2, Z)
    a = g(z, torch.tensor([0, 1]), noise_mode="const")
    b = g(z, torch.tensor([2, 3]), noise_mode="const")
    assert a.shape == (2, 1, 16, 16) and not torch.allclose(a, b)


def test_synthesis_channels() -> None:
    s = SynthesisNetwork(w_dim=W, img_resolution=32, img_channels=3, channel_base=256, channel_max=32)
    assert [b.conv1.weight.shape[0] for b in s.blocks] == [32, 32, 16, 8]
    with pytest.raises(ValueError, match="power of two"):
        SynthesisNetwork(img_resolution=24)


# ---------------------------------------------------------------------------------------------------- discriminator


@pytest.mark.parametrize("resolution", [16, 32])
def test_discriminator_output_and_gradient(resolution: int) -> None:
    torch.manual_seed(0)
    d = StyleGANDiscriminator(img_resolution=resolution, img_channels=1, **SMALL)
    img = torch.randn(4, 1, resolution, resolution, requires_grad=True)
    out = d(img)
    assert out.shape == (4, 1)
    (grad,) = torch.autograd.grad(out.sum(), img)
    assert grad.shape == img.shape and grad.abs().sum() > 0
    assert len(d.blocks) == int(math.log2(resolution)) - 2


def test_conditional_discriminator_projection() -> None:
    torch.manual_seed(0)
    d = StyleGANDiscriminator(img_resolution=16, img_channels=1, num_classes=3, mapping_layers=2, **SMALL)
    img = torch.randn(4, 1, 16, 16)
    a, b = d(img, torch.tensor([0, 1, 2, 0])), d(img, torch.tensor([1, 2, 0, 1]))
    assert a.shape == (4, 1) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="label"):
        d(img)


def test_generator_discriminator_roundtrip() -> None:
    g = tiny_generator()
    torch.manual_seed(1)
    d = StyleGANDiscriminator(img_resolution=16, img_channels=1, **SMALL)
    logits = d(g(torch.randn(4, Z)))
    logits.sum().backward()
    assert g.synthesis.blocks[0].const.grad is not None
