from __future__ import annotations

import torch

from lit_genvision.methods.augment import flip_crop


def test_flip_crop_without_padding_or_flip_is_identity():
    x = torch.randn(4, 3, 8, 8)
    torch.testing.assert_close(flip_crop(x, 0, flip=False), x)


def test_crop_is_a_shift_of_the_padded_image():
    x = torch.arange(64.0).view(1, 1, 8, 8).repeat(16, 1, 1, 1)
    out = flip_crop(x, 2, flip=False, generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    for i in range(16):  # each output is some 8×8 window of its padded input
        windows = [padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    assert len({tuple(o.flatten().tolist()) for o in out}) > 1


def test_flip_flips_about_half():
    x = torch.arange(8.0).view(1, 1, 1, 8).repeat(1000, 1, 1, 1)
    out = flip_crop(x, 0, flip=True, generator=torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 7).float().mean()
    assert 0.4 < flipped < 0.6


def test_digits_classifier_config_fits_its_five_steps_through_the_cli(classifier_checkpoint):
    # Five steps do not make an accurate classifier (test accuracy stays at chance): this checks the
    # fit ran them and wrote a classifier checkpoint, not that it learned.
    ckpt = torch.load(classifier_checkpoint, weights_only=True)
    assert ckpt["lit_genvision"]["family"] == "classifier"
    assert ckpt["global_step"] == 5


def test_sampling_leaves_the_network_in_the_mode_it_had():
    from lit_genvision.methods import DDIMSampler, LinearSchedule
    from lit_genvision.models import DiffusionModel
    from lit_genvision.nn import UNet

    model = DiffusionModel(
        UNet(image_size=8, channels=8, channel_mults=[1, 2], norm_groups=4, dropout=0.1),
        LinearSchedule(10),
        DDIMSampler(steps=2),
    )
    model.train()
    model.sample(2)
    assert model.net.training
    model.eval()
    model.sample(2)
    assert not model.net.training
