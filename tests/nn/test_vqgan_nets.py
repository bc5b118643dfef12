"""The tokenizer networks of issue 15: VQGAN conv encoder/decoder, ViT-VQGAN encoder/decoder, PatchGAN."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_genvision.nn import (
    PatchGANDiscriminator,
    ResidualBlock,
    ViTDecoder,
    ViTEncoder,
    VQGANDecoder,
    VQGANEncoder,
)
from lit_genvision.nn.patches import patchify, unpatchify

CONV = dict(channels=8, channel_mults=(1, 2), depth=1, attention_at=(8,), z_channels=4, norm_groups=4)
VIT = dict(patch_size=4, dim=16, depth=1, heads=2, z_channels=4)


def _pairs(size: int, channels: int) -> list[tuple[nn.Module, nn.Module]]:
    return [
        (VQGANEncoder(channels, size, **CONV), VQGANDecoder(channels, size, **CONV)),
        (ViTEncoder(size, in_channels=channels, **VIT), ViTDecoder(size, out_channels=channels, **VIT)),
    ]


@pytest.mark.parametrize("size, channels", [(16, 1), (32, 3)])
def test_encoder_decoder_shapes_and_round_trip(size, channels):
    torch.manual_seed(0)
    x = torch.randn(2, channels, size, size)
    for enc, dec in _pairs(size, channels):
        z = enc(x)
        h = size // 2 if isinstance(enc, VQGANEncoder) else size // 4  # 2 levels: f = 2; ViT: f = p = 4
        assert z.shape == (2, 4, h, h)
        assert enc.latent_size == dec.latent_size == h
        assert enc.image_size == dec.image_size == size and enc.z_channels == dec.z_channels == 4
        assert enc.in_channels == dec.out_channels == channels
        assert dec(z).shape == x.shape


def test_decoders_register_their_output_layer_last():
    """The tokenizer's adaptive GAN weight reads the decoder's last Conv2d/Linear: it must be the output map."""
    for _, dec in _pairs(16, 1):
        layers = [m for m in dec.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
        assert layers[-1] is (dec.conv_out if isinstance(dec, VQGANDecoder) else dec.head)


def _conv(i: int, o: int, k: int) -> int:
    return i * o * k * k + o


def _res(i: int, o: int) -> int:  # GN, conv 3×3, GN, conv 3×3, and a 1×1 skip when the width changes
    return 2 * i + _conv(i, o, 3) + 2 * o + _conv(o, o, 3) + (_conv(i, o, 1) if i != o else 0)


def _attn(c: int) -> int:  # GN, qkv, output projection
    return 2 * c + 3 * c * c + 3 * c + c * c + c


def test_conv_parameter_counts_match_the_formula():
    kw = dict(channels=4, channel_mults=(1, 2), depth=1, attention_at=(8,), z_channels=3, norm_groups=2)
    enc, dec = VQGANEncoder(1, 8, **kw), VQGANDecoder(1, 8, **kw)
    expected_enc = (
        _conv(1, 4, 3)  # conv_in
        + _res(4, 4) + _attn(4) + _conv(4, 4, 3)  # level 0 at 8×8 (attention), downsample
        + _res(4, 8)  # level 1 at 4×4
        + _res(8, 8) + _attn(8) + _res(8, 8)  # middle
        + 2 * 8 + _conv(8, 3, 3)  # norm_out, conv_out
    )  # fmt: skip
    expected_dec = (
        _conv(3, 8, 3)  # conv_in
        + _res(8, 8) + _attn(8) + _res(8, 8)  # middle
        + 2 * _res(8, 8) + _conv(8, 8, 3)  # level 1: depth + 1 blocks, upsample conv
        + _res(8, 4) + _attn(4) + _res(4, 4) + _attn(4)  # level 0 at 8×8 (attention)
        + 2 * 4 + _conv(4, 1, 3)  # norm_out, conv_out
    )  # fmt: skip
    assert sum(p.numel() for p in enc.parameters()) == expected_enc
    assert sum(p.numel() for p in dec.parameters()) == expected_dec


def test_residual_block_without_embedding_has_no_projection():
    block = ResidualBlock(4, 8, emb_dim=None, groups=2)
    assert block.emb_proj is None and not any("emb_proj" in n for n, _ in block.named_parameters())
    assert block(torch.randn(1, 4, 4, 4)).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError, match="emb_dim"):
        ResidualBlock(4, 8, emb_dim=6, groups=2)(torch.randn(1, 4, 4, 4))


def test_patchify_and_unpatchify_are_inverses_bitwise():
    torch.manual_seed(0)
    x, p = torch.randn(2, 3, 12, 12), 4
    tokens = patchify(x, p)
    assert tokens.shape == (2, 9, 48)
    # token i·w + j is patch (i, j), flattened row by row, channels last within a pixel
    assert torch.equal(tokens[:, 1 * 3 + 2], x[:, :, 4:8, 8:12].permute(0, 2, 3, 1).reshape(2, -1))
    assert torch.equal(unpatchify(tokens, p, 3), x)
    t = torch.randn(2, 9, 48)
    assert torch.equal(patchify(unpatchify(t, p, 3), p), t)


def test_vit_bad_patch_size_is_one_clear_error():
    with pytest.raises(ValueError, match="divisible by patch_size"):
        ViTEncoder(16, patch_size=5)


@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_patchgan_output_shape(size, norm):
    torch.manual_seed(0)
    d = PatchGANDiscriminator(in_channels=1, channels=8, layers=2, norm=norm)
    out = d(torch.randn(2, 1, size, size))
    side = size // 4 - 2  # ⌊S/2^L⌋ − 2
    assert out.shape == (2, 1, side, side) == (2, 1, d.output_size(size), d.output_size(size))


def test_patchgan_receptive_field_formula_and_too_small_input():
    assert [PatchGANDiscriminator(layers=n).receptive_field for n in (1, 2, 3)] == [16, 34, 70]  # pix2pix's 70×70
    d = PatchGANDiscriminator(channels=8, layers=3)
    assert d(torch.randn(1, 1, 32, 32)).shape == (1, 1, 2, 2)
    with pytest.raises(ValueError, match="at least 24"):
        d(torch.randn(1, 1, 16, 16))


@pytest.mark.parametrize("layers, size, norm", [(1, 32, "none"), (2, 64, "none"), (2, 64, "batch")])
def test_patchgan_logit_sees_exactly_its_window(layers, size, norm):
    """∂ logit(i, j) / ∂ x is nonzero exactly on the documented (9·2^L − 2)² window."""
    torch.manual_seed(0)
    d = PatchGANDiscriminator(in_channels=2, channels=4, layers=layers, norm=norm).double().eval()
    x = torch.randn(1, 2, size, size, dtype=torch.float64, requires_grad=True)
    i, j = 5, 6  # interior logits: their windows lie inside the image
    d(x)[0, 0, i, j].backward()
    (r0, r1), (c0, c1) = d.window(i), d.window(j)
    assert 0 <= r0 and r1 < size and 0 <= c0 and c1 < size and r1 - r0 + 1 == d.receptive_field
    window = torch.zeros(size, size, dtype=torch.bool)
    window[r0 : r1 + 1, c0 : c1 + 1] = True
    assert torch.equal(x.grad[0].ne(0).any(0), window)


def test_patchgan_taming_initialisation():
    torch.manual_seed(0)
    d = PatchGANDiscriminator(in_channels=3, channels=64, layers=3)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    scales = torch.cat([m.weight for m in norms])
    assert abs(weights.std().item() - 0.02) < 1e-3 and abs(weights.mean().item()) < 1e-3
    assert abs(scales.mean().item() - 1.0) < 5e-3 and abs(scales.std().item() - 0.02) < 5e-3
    assert sum(p.numel() for p in d.parameters()) == 2_765_633  # taming's NLayerDiscriminator(3, 64, 3)
