"""nn/patches: patches and tubelets, sin-cos positions over 1-3 axes, RoPE over 1-3 axes."""

from __future__ import annotations

import math

import pytest
import torch

from lit_genvision.nn.embeddings import sinusoidal_embedding
from lit_genvision.nn.patches import (
    AxialRotaryEmbedding,
    RotaryEmbedding,
    apply_rotary,
    grid_positions,
    patchify,
    sincos_1d,
    sincos_2d,
    sincos_3d,
    sincos_grid,
    split_dims,
    token_grid,
    unpatchify,
)

# ----------------------------------------------------------------------------------------------
# Patches and tubelets
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 8, 12), (2, 3, 4, 8, 12)], ids=["image", "video"])
def test_unpatchify_inverts_patchify_bitwise(shape):
    x = torch.randn(shape)
    tubelet = 2 if len(shape) == 5 else 1
    grid = token_grid(shape[2:], 4, tubelet)
    tokens = patchify(x, 4, tubelet)
    assert tokens.shape == (2, math.prod(grid), tubelet * 4 * 4 * 3)
    assert torch.equal(unpatchify(tokens, 4, 3, grid, tubelet), x)
    assert torch.equal(patchify(unpatchify(tokens, 4, 3, grid, tubelet), 4, tubelet), tokens)


def test_a_token_is_its_pixels_channels_last():
    x = torch.randn(1, 2, 4, 4, 6)  # (B, C, T, H, W)
    tokens = patchify(x, 2, tubelet=2)  # grid (2, 2, 3)
    f, i, j = 1, 0, 2
    expected = x[0, :, 2 * f : 2 * f + 2, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].permute(1, 2, 3, 0).flatten()
    assert torch.equal(tokens[0, (f * 2 + i) * 3 + j], expected)


def test_a_tubelet_of_one_frame_is_a_patch():
    x = torch.randn(2, 3, 5, 8, 8)
    per_frame = torch.stack([patchify(x[:, :, f], 4) for f in range(5)], dim=1).flatten(1, 2)  # (B, T·h·w, ·)
    assert torch.equal(patchify(x, 4, tubelet=1), per_frame)
    assert torch.equal(patchify(x[:, :, :1], 4), patchify(x[:, :, 0], 4))  # a one-frame video is its image


def test_the_square_default_grid_is_todays_unpatchify():
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(unpatchify(patchify(x, 2), 2, 3), x)


def test_shapes_that_do_not_divide_are_refused_by_name():
    with pytest.raises(ValueError, match="divisible"):
        patchify(torch.zeros(1, 1, 6, 8), 4)
    with pytest.raises(ValueError, match="divisible"):
        patchify(torch.zeros(1, 1, 3, 8, 8), 4, tubelet=2)
    with pytest.raises(ValueError, match="tubelets"):
        patchify(torch.zeros(1, 1, 8, 8), 4, tubelet=2)
    with pytest.raises(ValueError, match="images"):
        patchify(torch.zeros(8, 8), 4)


def test_grid_positions_are_row_major():
    pos = grid_positions((2, 3, 4))
    assert pos.shape == (24, 3)
    assert pos[(1 * 3 + 2) * 4 + 3].tolist() == [1, 2, 3]


# ----------------------------------------------------------------------------------------------
# Fixed sin-cos positions
# ----------------------------------------------------------------------------------------------


def test_sincos_1d_is_the_timestep_embedding_for_any_shape():
    pos = torch.arange(12.0).reshape(3, 4)
    torch.testing.assert_close(sincos_1d(pos, 8), sinusoidal_embedding(pos.flatten(), 8).reshape(3, 4, 8))


def test_sincos_2d_matches_the_formula():
    h, w, dim = 3, 4, 16
    quarter = dim // 4
    expected = torch.zeros(h * w, dim, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            for a, p in enumerate((i, j)):  # first half: the row, second half: the column
                for f in range(quarter):
                    omega = 10_000.0 ** (-f / quarter)
                    expected[i * w + j, a * dim // 2 + f] = math.cos(p * omega)
                    expected[i * w + j, a * dim // 2 + quarter + f] = math.sin(p * omega)
    torch.testing.assert_close(sincos_2d(h, w, dim).double(), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(2, 2, 6)


def test_sincos_2d_is_bitwise_the_previous_implementation():
    """The table DiT, the ViT towers and the semantic encoder were trained with (before nn/patches)."""
    for h, w, dim in [(8, 8, 64), (3, 5, 16), (16, 16, 384)]:
        rows = torch.arange(h, dtype=torch.float32).repeat_interleave(w)
        cols = torch.arange(w, dtype=torch.float32).repeat(h)
        old = torch.cat([sincos_1d(rows, dim // 2), sincos_1d(cols, dim // 2)], dim=-1)
        assert torch.equal(sincos_2d(h, w, dim), old)


def test_sincos_grid_over_one_axis_is_sincos_1d():
    assert torch.equal(sincos_grid((7,), (12,)), sincos_1d(torch.arange(7.0), 12))


def test_sincos_3d_of_one_frame_is_a_constant_block_then_sincos_2d():
    h, w, dim = 3, 4, 64
    d_t = split_dims(dim, 3)[0]
    pe = sincos_3d(1, h, w, dim)
    assert pe.shape == (h * w, dim)
    assert torch.equal(pe[:, d_t:], sincos_2d(h, w, dim - d_t))
    constant = torch.cat([torch.ones(d_t // 2), torch.zeros(d_t // 2)])  # cos 0, sin 0
    assert torch.equal(pe[:, :d_t], constant.expand(h * w, d_t))


def test_sincos_3d_gives_each_axis_its_share():
    t, h, w, dims = 2, 3, 4, (8, 12, 12)
    pe = sincos_3d(t, h, w, 32, dims=dims)
    f, i, j = 1, 2, 3
    row = pe[(f * h + i) * w + j]
    for p, lo, d in [(f, 0, 8), (i, 8, 12), (j, 20, 12)]:
        assert torch.equal(row[lo : lo + d], sincos_1d(torch.tensor([float(p)]), d)[0])
    with pytest.raises(ValueError, match="add up"):
        sincos_3d(1, 2, 2, 32, dims=(8, 8, 8))


def test_split_dims_follows_the_quarter_for_time_rule_and_refuses_odd_shares():
    assert split_dims(64, 1) == (64,)
    assert split_dims(64, 2) == (32, 32)
    assert split_dims(64, 3) == (16, 24, 24)
    with pytest.raises(ValueError, match="divisible by 16"):
        split_dims(24, 3)
    with pytest.raises(ValueError, match="1, 2 or 3"):
        split_dims(64, 4)


# ----------------------------------------------------------------------------------------------
# RoPE
# ----------------------------------------------------------------------------------------------


def test_rotary_scores_depend_only_on_the_relative_position():
    d = 8
    rotary = RotaryEmbedding(d)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, d, generator=g), torch.randn(1, 1, 1, d, generator=g)

    def score(m: int, n: int) -> float:
        cm, sm = rotary(torch.tensor([m]))
        cn, sn = rotary(torch.tensor([n]))
        return (apply_rotary(q, cm, sm) * apply_rotary(k, cn, sn)).sum().item()

    for m, n in [(3, 1), (1, 3), (0, 0), (5, 9)]:
        for shift in (1, 7, 40):
            assert score(m + shift, n + shift) == pytest.approx(score(m, n), abs=1e-4)
    assert score(3, 1) != pytest.approx(score(3, 2), abs=1e-3)
    cos, sin = rotary(torch.zeros(1))  # position 0 is no rotation, and a rotation keeps the norm
    torch.testing.assert_close(apply_rotary(q, cos, sin), q)
    cos, sin = rotary(torch.tensor([[2, 5]]))  # per-sample positions (B, N, d)
    x = torch.randn(1, 3, 2, d, generator=g)
    torch.testing.assert_close(apply_rotary(x, cos, sin).norm(dim=-1), x.norm(dim=-1))


def test_rotary_1d_is_bitwise_the_previous_implementation():
    """RotaryEmbedding as it was before nn/patches (the token prior and the captioner were trained with it)."""
    for d in (8, 32, 64):
        inv_freq = 10_000.0 ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
        for positions in (torch.arange(3, 53), torch.tensor([[0, 4, 9], [2, 2, 100]])):
            angles = positions.float()[..., None] * inv_freq
            angles = torch.cat([angles, angles], dim=-1)
            cos, sin = RotaryEmbedding(d)(positions)
            assert torch.equal(cos, angles.cos()) and torch.equal(sin, angles.sin())
    one_axis = AxialRotaryEmbedding(32)
    assert all(torch.equal(a, b) for a, b in zip(one_axis.grid((9,)), RotaryEmbedding(32).at(9), strict=True))


def _rotation_matrix(rope: AxialRotaryEmbedding, position: tuple[int, ...], base: float = 10_000.0) -> torch.Tensor:
    """R(p) (d, d) in float64 from the definition: pair (i, i + d/2) of axis a, local index j, turns by
    p_a·base^(−2j/d_a)."""
    d, half = rope.head_dim, rope.head_dim // 2
    r = torch.zeros(d, d, dtype=torch.float64)
    i = 0
    for a, d_a in enumerate(rope.axes_dims):
        for j in range(d_a // 2):
            angle = position[a] * base ** (-2 * j / d_a)
            c, s = math.cos(angle), math.sin(angle)
            r[i, i], r[i, i + half], r[i + half, i], r[i + half, i + half] = c, -s, s, c
            i += 1
    return r


def test_axial_rope_is_the_rotation_of_its_definition():
    rope = AxialRotaryEmbedding(32, split_dims(32, 3))  # (8, 12, 12) over (T, H, W)
    sizes = (2, 3, 4)
    x = torch.randn(1, 1, math.prod(sizes), 32, dtype=torch.float64)
    out = apply_rotary(x, *rope.grid(sizes))
    for n, p in enumerate(grid_positions(sizes).tolist()):
        expected = _rotation_matrix(rope, tuple(p)) @ x[0, 0, n]
        torch.testing.assert_close(out[0, 0, n], expected, rtol=0, atol=1e-5)


def test_axial_rope_turns_each_axis_share_by_that_axis_position_only():
    rope = AxialRotaryEmbedding(32, (8, 12, 12))
    sizes = (3, 2, 4)
    x = torch.randn(1, 2, math.prod(sizes), 32)
    out = apply_rotary(x, *rope.grid(sizes))
    pos = grid_positions(sizes)  # (N, 3)
    assert sorted(torch.cat([rope.axis_channels(a) for a in range(3)]).tolist()) == list(range(32))
    for a, d_a in enumerate(rope.axes_dims):
        ch = rope.axis_channels(a)
        alone = apply_rotary(x[..., ch], *RotaryEmbedding(d_a)(pos[:, a]))  # a 1-D RoPE of width d_a at p_a
        torch.testing.assert_close(out[..., ch], alone, rtol=0, atol=1e-6)


def test_axial_rope_keeps_norms_and_scores_depend_on_offsets_only():
    rope = AxialRotaryEmbedding(32, (8, 12, 12))
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(32, generator=g, dtype=torch.float64), torch.randn(32, generator=g, dtype=torch.float64)

    def rotate(v: torch.Tensor, p: tuple[int, int, int]) -> torch.Tensor:
        return apply_rotary(v[None, None, None], *rope(torch.tensor([p])))[0, 0, 0]

    def score(m: tuple[int, int, int], n: tuple[int, int, int]) -> float:
        return float(rotate(q, m) @ rotate(k, n))

    m, n = (1, 2, 3), (4, 0, 5)
    offset = tuple(b - a for a, b in zip(m, n, strict=True))
    direct = float(q @ (_rotation_matrix(rope, offset) @ k))  # ⟨q, R_{n−m} k⟩
    assert score(m, n) == pytest.approx(direct, abs=1e-5)
    for shift in [(1, 0, 0), (0, 5, 0), (3, 1, 7)]:
        moved = tuple(a + s for a, s in zip(m, shift, strict=True)), tuple(b + s for b, s in zip(n, shift, strict=True))
        assert score(*moved) == pytest.approx(score(m, n), abs=1e-5)
    assert score((1, 2, 3), (1, 2, 4)) != pytest.approx(score((1, 2, 3), (2, 2, 3)), abs=1e-3)  # axes differ
    assert rotate(q, (7, 3, 9)).norm().item() == pytest.approx(q.norm().item(), abs=1e-5)


def test_axial_rope_grid_offset_and_bad_shares():
    rope = AxialRotaryEmbedding(16, (4, 6, 6))
    cos, sin = rope.grid((2, 2, 2), offset=(3, 0, 0))  # frames 3 and 4, as when extending a clip
    ref_cos, _ = rope(grid_positions((2, 2, 2)) + torch.tensor([3, 0, 0]))
    assert torch.equal(cos, ref_cos) and cos.shape == (8, 16)
    with pytest.raises(ValueError, match="even shares"):
        AxialRotaryEmbedding(16, (5, 5, 6))
    with pytest.raises(ValueError, match="3 coordinates"):
        rope(torch.zeros(4, 2))
