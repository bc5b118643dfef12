from __future__ import annotations

import pytest
import torch

from lit_genvision.nn import UNet
from lit_genvision.nn.embeddings import sinusoidal_embedding


@pytest.mark.parametrize(
    "kw, shape",
    [
        (
            dict(in_channels=1, image_size=16, channels=8, channel_mults=[1, 2, 2], attention_at=[8], norm_groups=4),
            (2, 1, 16, 16),
        ),
        (
            dict(in_channels=3, image_size=32, channels=8, channel_mults=[1, 2, 2, 2], depth=2, attention_at=[16, 8]),
            (2, 3, 32, 32),
        ),
        (
            dict(in_channels=4, out_channels=8, image_size=8, channels=16, channel_mults=[1, 2], attention_at=[]),
            (3, 4, 8, 8),
        ),
    ],
)
def test_output_shape(kw, shape):
    net = UNet(**kw)
    out = net(torch.randn(shape), torch.randint(0, 1000, (shape[0],)))
    assert out.shape == (shape[0], kw.get("out_channels") or shape[1], *shape[2:])


def test_cross_attention_uses_context():
    torch.manual_seed(0)
    net = UNet(
        in_channels=1, image_size=8, channels=8, channel_mults=[1, 2], attention_at=[8], context_dim=5, norm_groups=4
    )
    for p in net.parameters():  # move every zero-initialised projection off zero
        torch.nn.init.normal_(p, std=0.2)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([1, 2])
    a = net(x, t, {"context": torch.randn(2, 3, 5)})
    b = net(x, t, {"context": torch.randn(2, 3, 5)})
    assert a.shape == x.shape and (a - b).abs().max() > 1e-4


def test_cross_attention_ignores_padded_context_tokens():
    torch.manual_seed(0)
    net = UNet(
        in_channels=1, image_size=8, channels=8, channel_mults=[1, 2], attention_at=[8], context_dim=5, norm_groups=4
    )
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([1, 2])
    context, mask = torch.randn(2, 4, 5), torch.tensor([[True, True, False, False], [True, True, True, False]])
    changed = torch.where(mask[..., None], context, torch.randn(2, 4, 5))  # other values in the padding only
    a = net(x, t, {"context": context, "context_mask": mask})
    b = net(x, t, {"context": changed, "context_mask": mask})
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    unmasked = net(x, t, {"context": changed})  # without the mask the padding is attended to
    assert (unmasked - a).abs().max() > 1e-4


def test_timestep_changes_output():
    torch.manual_seed(0)
    net = UNet(in_channels=1, image_size=8, channels=8, channel_mults=[1, 2], norm_groups=4)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(1, 1, 8, 8)
    assert (net(x, torch.tensor([0])) - net(x, torch.tensor([500]))).abs().max() > 1e-4


def test_bad_image_size_is_one_clear_error():
    with pytest.raises(ValueError, match="divisible by 2"):
        UNet(image_size=10, channel_mults=[1, 2, 2])


def test_sinusoidal_embedding_formula():
    t = torch.tensor([0.0, 3.0])
    emb = sinusoidal_embedding(t, 8)
    freqs = 10_000 ** (-torch.arange(4) / 4)
    torch.testing.assert_close(emb[1], torch.cat([torch.cos(3 * freqs), torch.sin(3 * freqs)]))
    torch.testing.assert_close(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4))
