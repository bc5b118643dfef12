"""The causal video encoder and decoder (``nn.CausalVideoEncoder`` / ``CausalVideoDecoder``): frame 0 encodes and
decodes alone exactly as within a clip, each latent frame sees only its past, and the shapes follow
T' = 1 + (T − 1)/r."""

from __future__ import annotations

import pytest
import torch

from lit_genvision.nn import CausalVideoDecoder, CausalVideoEncoder
from lit_genvision.nn.causal_video import double_time, halve_time

KW = {"image_size": 16, "frames": 9, "channels": 8, "channel_mults": [1, 2, 2], "depth": 1, "z_channels": 4}


def nets(temporal_factor: int = 4) -> tuple[CausalVideoEncoder, CausalVideoDecoder]:
    """A tiny pair with every weight drawn at random (the zero-initialised convs would hide a leak)."""
    torch.manual_seed(0)
    encoder = CausalVideoEncoder(in_channels=1, temporal_factor=temporal_factor, norm_groups=4, **KW)
    decoder = CausalVideoDecoder(out_channels=1, temporal_factor=temporal_factor, norm_groups=4, **KW)
    for p in [*encoder.parameters(), *decoder.parameters()]:
        torch.nn.init.normal_(p, std=0.1)
    return encoder.eval(), decoder.eval()


@pytest.mark.parametrize("frames", [1, 5, 9, 17])
def test_frame_0_encodes_and_decodes_alone_exactly_as_within_a_clip(frames):
    encoder, decoder = nets()
    clip = torch.randn(2, 1, frames, 16, 16, generator=torch.Generator().manual_seed(frames))
    with torch.no_grad():
        z, z0 = encoder(clip), encoder(clip[:, :, :1])
        assert z.shape == (2, 4, 1 + (frames - 1) // 4, 4, 4) and z0.shape == (2, 4, 1, 4, 4)
        assert torch.equal(z[:, :, :1], z0)
        video = decoder(z)
        assert video.shape == clip.shape
        assert torch.equal(video[:, :, :1], decoder(z0))


def test_a_latent_frame_depends_on_its_past_frames_only():
    encoder, _ = nets()
    clip = torch.randn(1, 1, 17, 16, 16, generator=torch.Generator().manual_seed(1))
    later = clip.clone()
    later[:, :, 9:] += 1.0  # frames 9 … 16: latent frames 3 and 4 (frames 1 + 4(j − 1) … 4j)
    with torch.no_grad():
        a, b = encoder(clip), encoder(later)
    assert torch.equal(a[:, :, :3], b[:, :, :3])
    assert not torch.allclose(a[:, :, 3:], b[:, :, 3:])


def test_time_halves_by_keeping_frame_0_and_averaging_pairs_and_doubles_by_repeating():
    x = torch.arange(5.0).view(1, 1, 5, 1, 1)
    assert halve_time(x).flatten().tolist() == [0.0, 1.5, 3.5]
    assert double_time(halve_time(x)).flatten().tolist() == [0.0, 1.5, 1.5, 3.5, 3.5]


def test_frame_counts_and_factors_that_do_not_fit_are_refused_in_one_sentence():
    encoder, _ = nets()
    with pytest.raises(ValueError, match=r"takes 1 \+ 4·k frames"):
        encoder(torch.zeros(1, 1, 8, 16, 16))
    with pytest.raises(ValueError, match="power of 2 of at most 2"):
        CausalVideoEncoder(temporal_factor=8, **KW)
    with pytest.raises(ValueError, match=r"frames must be 1 \+ 2·k"):
        CausalVideoEncoder(temporal_factor=2, **{**KW, "frames": 8})
