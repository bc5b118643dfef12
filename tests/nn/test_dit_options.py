"""The DiT's small-budget options (issue 29): each changes the network as its docstring says, and with
every option off the network is the paper's (its parameter count and its state-dict keys)."""

from __future__ import annotations

import pytest
import torch
from tests_helpers import randomise

from lit_genvision.methods import CosineSchedule
from lit_genvision.methods.diffusion import diffusion_loss, min_snr_weight
from lit_genvision.nn.dit import DiT
from lit_genvision.nn.patches import AxialRotaryEmbedding, apply_rotary, grid_positions
from lit_genvision.nn.transformer import LocalMixing, SwiGLU, TransformerBlock

B, C, S = 2, 1, 8


def tiny(**kw) -> DiT:
    torch.manual_seed(0)
    return DiT(**{"in_channels": C, "image_size": S, "patch_size": 2, "hidden": 32, "depth": 5, "heads": 2, **kw})


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, C, S, S, generator=g), torch.randint(0, 1000, (B,), generator=g).float()


def test_long_skips_join_block_i_output_to_block_depth_minus_1_minus_i_input():
    net = randomise(tiny(long_skips=True))
    assert net.skip_pairs == [(0, 4), (1, 3)]  # depth 5: two pairs around the middle block 2
    outputs: dict[int, torch.Tensor] = {}
    joined: dict[int, torch.Tensor] = {}
    for i, block in enumerate(net.blocks):
        block.register_forward_hook(lambda m, a, kw, out, i=i: outputs.__setitem__(i, out), with_kwargs=True)
    for j, proj in enumerate(net.skips):
        proj.register_forward_pre_hook(lambda m, a, j=j: joined.__setitem__(j, a[0]))
    with torch.no_grad():
        net(*inputs())
    d = 32
    for j, (i, target) in enumerate(sorted(net.skip_pairs, key=lambda p: p[1])):
        assert torch.equal(joined[j][..., :d], outputs[target - 1])  # the stream reaching block `target`
        assert torch.equal(joined[j][..., d:], outputs[i])  # block i's output, carried over


def test_even_depth_keeps_a_middle_pair_without_skips():
    assert tiny(long_skips=True, depth=6).skip_pairs == [(0, 5), (1, 4)]
    assert tiny(long_skips=False).skip_pairs == []


def test_every_option_keeps_the_untrained_output_at_exactly_zero():
    x, t = inputs()
    options = dict(
        long_skips=True, pos_embed="rope", qk_norm=True, norm="rms", mlp="swiglu", final_conv=True, conv_mlp=True,
        conv_stem=True, cond_init="unit",
    )  # fmt: skip
    for name, value in options.items():
        assert torch.equal(tiny(**{name: value})(x * 5, t), torch.zeros_like(x)), name


def test_rope_dit_has_no_additive_table_and_depends_on_token_order():
    net = randomise(tiny(pos_embed="rope"))
    assert not net.pos.any()
    x, t = inputs()
    with torch.no_grad():
        out = net(x, t)
        shifted = net(torch.roll(x, shifts=2, dims=-1), t)  # a translation by one patch
    assert not torch.allclose(torch.roll(out, shifts=2, dims=-1), shifted, atol=1e-5)  # borders differ


def test_2d_rope_is_a_rotation_norms_preserved_and_scores_depend_on_offsets_only():
    rot = AxialRotaryEmbedding(16, (8, 8))
    q, k = torch.randn(1, 1, 1, 16, dtype=torch.float64), torch.randn(1, 1, 1, 16, dtype=torch.float64)

    def at(pos: tuple[int, int], v: torch.Tensor) -> torch.Tensor:
        cos, sin = rot(torch.tensor([pos]))
        return apply_rotary(v, cos.double(), sin.double())

    assert torch.allclose(at((3, 5), q).norm(), q.norm())
    a = (at((1, 2), q) * at((4, 7), k)).sum()  # offset (3, 5)
    b = (at((10, 0), q) * at((13, 5), k)).sum()  # the same offset elsewhere
    c = (at((1, 2), q) * at((4, 6), k)).sum()  # another offset
    assert torch.allclose(a, b, atol=1e-6) and not torch.allclose(a, c, atol=1e-3)
    assert grid_positions((2, 3)).tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]


def test_swiglu_has_the_gelu_mlps_parameter_count_and_computes_silu_gating():
    gelu = TransformerBlock(48, 4)
    swiglu = TransformerBlock(48, 4, mlp="swiglu")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert isinstance(swiglu.mlp, SwiGLU)
    assert abs(count(swiglu.mlp) - count(gelu.mlp)) / count(gelu.mlp) < 0.01
    mlp, h = swiglu.mlp, torch.randn(2, 3, 48)
    a, b = (h @ mlp.fc1.weight.T + mlp.fc1.bias).chunk(2, dim=-1)
    assert torch.allclose(mlp(h), (a * torch.sigmoid(a) * b) @ mlp.fc2.weight.T + mlp.fc2.bias, atol=1e-6)


def test_rms_norm_and_qk_norm_replace_the_norms():
    net = tiny(norm="rms", qk_norm=True)
    block = net.blocks[0]
    assert isinstance(block.norm1, torch.nn.RMSNorm) and isinstance(block.q_norm, torch.nn.RMSNorm)
    assert isinstance(net.final.norm, torch.nn.RMSNorm)
    assert isinstance(tiny().blocks[0].q_norm, torch.nn.Identity)


def test_final_conv_is_a_3x3_convolution_of_the_unpatchified_output():
    net = randomise(tiny(final_conv=True))
    x, t = inputs()
    with torch.no_grad():
        conv, net.final_conv = net.final_conv, None
        before = net(x, t)  # the same network without its last convolution
        net.final_conv = conv
        expected = torch.nn.functional.conv2d(before, conv.weight, conv.bias, padding=1)
        assert torch.allclose(net(x, t), expected, atol=1e-6)
    assert conv.kernel_size == (3, 3) and conv.in_channels == conv.out_channels == C


def test_unknown_options_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="sincos, rope"):
        tiny(pos_embed="learned")
    with pytest.raises(ValueError, match="gelu, gelu_exact, swiglu"):
        tiny(mlp="relu")
    with pytest.raises(ValueError, match="layer, rms"):
        tiny(norm="batch")


def test_with_options_off_the_state_dict_keys_are_the_earlier_dits():
    keys = set(tiny().state_dict())
    assert not any(k.startswith(("skips.", "final_conv.")) or "fc1" in k or ".mix." in k for k in keys)
    assert "patch_embed.weight" in keys
    assert {"blocks.0.mlp.0.weight", "blocks.0.norm2.weight"} & keys == {"blocks.0.mlp.0.weight"}


def test_min_snr_weights_follow_the_papers_formula_per_target():
    ab = torch.tensor([0.999, 0.5, 0.01], dtype=torch.float64)
    snr = ab / (1 - ab)
    assert torch.allclose(min_snr_weight("eps", ab, 5.0), torch.minimum(snr, torch.tensor(5.0)) / snr)
    assert torch.allclose(min_snr_weight("v", ab, 5.0), torch.minimum(snr, torch.tensor(5.0)) / (snr + 1))
    assert torch.allclose(min_snr_weight("x0", ab, 5.0), torch.minimum(snr, torch.tensor(5.0)))
    assert min_snr_weight("eps", ab, 5.0)[-1] == 1.0  # below γ the ε loss is untouched


def test_min_snr_loss_equals_the_weighted_per_sample_mse():
    schedule = CosineSchedule(timesteps=100)
    x0 = torch.randn(4, 1, 4, 4)

    def net(x_t: torch.Tensor, t: torch.Tensor, cond: object) -> torch.Tensor:
        return torch.zeros_like(x_t)  # the loss is then the target's mean square

    loss = diffusion_loss(net, schedule, x0, generator=torch.Generator().manual_seed(0), min_snr_gamma=5.0)
    g = torch.Generator().manual_seed(0)  # the loss's draws, in its order: t, then ε
    t = torch.randint(0, 100, (4,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    weights = min_snr_weight("eps", schedule.alpha_bar(t, x0).flatten(), 5.0)
    expected = (weights * noise.square().flatten(1).mean(1)).mean()
    assert torch.allclose(loss, expected.to(loss.dtype), atol=1e-6)
    plain = diffusion_loss(net, schedule, x0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(plain, noise.square().mean())


def test_local_mixing_reaches_the_3x3_neighbourhood_on_the_token_grid_only():
    mix, u = LocalMixing(4), torch.randn(1, 12, 4)  # a 3 × 4 grid, row-major
    assert torch.equal(mix(u, grid=(3, 4)), u)  # zero-initialised: the identity
    randomise(mix)
    bumped = u.clone()
    bumped[0, 5] += 1.0  # token (1, 1)
    with torch.no_grad():
        changed = (mix(bumped, grid=(3, 4)) - mix(u, grid=(3, 4))).abs().sum(-1)[0] > 0
    rows, cols = torch.div(torch.arange(12), 4, rounding_mode="floor"), torch.arange(12) % 4
    assert torch.equal(changed, ((rows - 1).abs() <= 1) & ((cols - 1).abs() <= 1))
    with pytest.raises(ValueError, match="token grid"):
        mix(u, grid=(4, 4))


def test_a_block_with_local_mixing_starts_as_the_plain_block_and_needs_the_grid():
    torch.manual_seed(0)
    mixing = TransformerBlock(32, 2, cond_dim=8, local_mixing=2)
    plain = TransformerBlock(32, 2, cond_dim=8)
    missing, unexpected = plain.load_state_dict(mixing.state_dict(), strict=False)
    assert not missing and unexpected == ["mix.conv.weight", "mix.conv.bias"]
    for block in (mixing, plain):
        torch.nn.init.normal_(block.adaLN[1].weight, generator=torch.Generator().manual_seed(2))
    x, c = torch.randn(2, 16, 32), torch.randn(2, 8)
    with torch.no_grad():
        assert torch.allclose(mixing(x, cond=c, grid=(4, 4)), plain(x, cond=c), atol=1e-6)
        mixing.mix.conv.weight.fill_(0.1)  # trained: the MLP now sees its neighbours
        assert not torch.allclose(mixing(x, cond=c, grid=(4, 4)), plain(x, cond=c), atol=1e-4)
    with pytest.raises(ValueError, match="grid"):
        mixing(x, cond=c)


def test_conv_stem_tokens_see_their_patch_and_its_one_pixel_ring_in_patchify_order():
    net = randomise(tiny(conv_stem=True))
    x = torch.randn(1, C, S, S)
    bumped = x.clone()
    bumped[0, 0, 2, 5] += 1.0  # the top-right pixel of patch (1, 2) of the 4 × 4 grid: its ring touches (0, ·), (·, 3)
    with torch.no_grad():
        changed = (net.patch_embed(bumped) - net.patch_embed(x)).abs().sum(-1)[0] > 0
    assert changed.nonzero().flatten().tolist() == [0 * 4 + 2, 0 * 4 + 3, 1 * 4 + 2, 1 * 4 + 3]


def test_exact_gelu_keeps_the_parameters_and_nearly_the_function():
    tanh, exact = randomise(tiny()), tiny(mlp="gelu_exact")
    exact.load_state_dict(tanh.state_dict())
    x, t = inputs()
    with torch.no_grad():
        a, b = tanh(x, t), exact(x, t)
    assert not torch.equal(a, b) and torch.allclose(a, b, atol=0.05 * a.abs().max().item())


def test_cond_init_unit_keeps_pytorchs_scales_for_the_label_table_and_the_timestep_mlp():
    dit, unit = tiny(num_classes=10), tiny(num_classes=10, cond_init="unit")
    assert abs(dit.label_embed.weight.std().item() - 0.02) < 0.005
    assert abs(dit.time_embed.mlp[0].weight.std().item() - 0.02) < 0.002
    assert abs(unit.label_embed.weight.std().item() - 1.0) < 0.25
    fan_in, fan_out = unit.time_embed.mlp[0].in_features, unit.time_embed.mlp[0].out_features
    xavier = (2 / (fan_in + fan_out)) ** 0.5  # the std of Xavier-uniform
    assert abs(unit.time_embed.mlp[0].weight.std().item() - xavier) < 0.1 * xavier
    with pytest.raises(ValueError, match="dit, unit"):
        tiny(cond_init="zeros")
