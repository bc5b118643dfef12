"""The U-Net's ``layout: ddpm`` builds Ho et al. 2020's network, and the paper configs build what they cite."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from lit_genvision.nn import UNet
from lit_genvision.nn.unet import AttentionBlock, timestep_features

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _net_args(config: str) -> dict:
    return yaml.safe_load((CONFIGS / config).read_text())["model"]["init_args"]["net"]["init_args"]


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    "config, params",
    [
        ("diffusion/cifar10.yaml", 35_746_307),  # Ho et al. 2020: 35.7M; google/ddpm-cifar10-32 in diffusers
        ("diffusion/celeba.yaml", 78_700_803),  # Song et al. 2021 (DDIM), CelebA 64×64: DDPM's net, ch_mult 1,2,2,2,4
    ],
)
def test_paper_configs_build_the_papers_network(config, params):
    args = _net_args(config)
    assert args["layout"] == "ddpm"
    assert _count(UNet(**args)) == params


def test_ddpm_cifar10_layout_block_by_block():
    net = UNet(**_net_args("diffusion/cifar10.yaml"))
    assert [len(level.res) for level in net.down] == [2, 2, 2, 2]  # every level, the 4×4 one too
    assert [len(level.res) for level in net.up] == [3, 3, 3, 3]  # depth + 1 on the way up
    assert [level.down is not None for level in net.down] == [True, True, True, False]
    attn = [[isinstance(a, AttentionBlock) for a in level.attn] for level in (*net.down, net.mid, *net.up)]
    down, mid, up = [[False] * 2, [True] * 2, [False] * 2, [False] * 2], [[True, False]], [[False] * 3] * 4
    up[2] = [True] * 3  # 16×16 on the way up
    assert attn == down + mid + up
    assert {m.eps for m in net.modules() if isinstance(m, torch.nn.GroupNorm)} == {1e-6}
    assert net.down[0].res[0].dropout.p == 0.1 and net.time_embed.mlp[0].out_features == 512


def test_diffusers_counts_the_same_network():
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.UNet2DModel(
        sample_size=32, block_out_channels=(128, 256, 256, 256), layers_per_block=2, attention_head_dim=None,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        norm_eps=1e-6, downsample_padding=0, flip_sin_to_cos=False, freq_shift=1, dropout=0.1,
    )  # fmt: skip  # google/ddpm-cifar10-32's config
    assert _count(ref) == 35_746_307


def test_default_layout_is_todays_network():
    """The lecture layout keeps its parameter names and count, so existing checkpoints still load."""
    net = UNet(in_channels=3, image_size=32, channels=128, channel_mults=[1, 2, 2, 2], attention_at=[16], heads=1)
    assert _count(net) == 26_019_843
    names = set(net.state_dict())
    assert {"mid.res.2.emb_proj.1.weight", "up.2.up.1.weight", "down.0.down.weight", "mid.attn.2.qkv.weight"} <= names
    assert net.mid.res[0].emb_proj[1].out_features == 2 * 256  # scale and shift


def test_ddpm_timestep_features_are_the_papers():
    """DDPM's get_timestep_embedding: ω_i = 10000^(−i/(d/2 − 1)), [sin(tω), cos(tω)]."""
    t, d = torch.tensor([0.0, 7.0]), 8
    freqs = torch.tensor([10_000 ** (-i / (d // 2 - 1)) for i in range(d // 2)])
    emb = timestep_features(t, d, flip_sin_to_cos=False, freq_shift=1)
    torch.testing.assert_close(emb[1], torch.cat([torch.sin(7 * freqs), torch.cos(7 * freqs)]))
    assert math.isclose(freqs[-1].item(), 1e-4, rel_tol=1e-6)


def test_ddpm_layout_runs_and_starts_at_zero():
    net = UNet(
        in_channels=3, image_size=16, channels=16, channel_mults=[1, 2, 2], attention_at=[8], norm_groups=8,
        layout="ddpm", num_classes=3,
    )  # fmt: skip
    x = torch.randn(2, 3, 16, 16)
    out = net(x, torch.tensor([3, 900]), {"label": torch.tensor([0, 2])})
    assert out.shape == x.shape and out.abs().max() == 0  # the output conv starts at zero, as in the official code
    conv = net.down[0].res[0].conv1.weight
    bound = math.sqrt(6 / (conv[0].numel() + conv.shape[0] * 9))
    assert conv.abs().max() <= bound and conv.abs().max() > 0.9 * bound  # Xavier-uniform (TF's fan_avg)


def test_unknown_layout_is_one_sentence():
    with pytest.raises(ValueError, match=r"^layout must be one of lecture, ddpm; got 'adm'\.$"):
        UNet(layout="adm")
