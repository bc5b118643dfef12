"""One rule for every pixel key: ``image`` (B, C, H, W) and ``video`` (B, C, T, H, W) go from uint8 to [-1, 1]
on the device, and training augmentation flips and crops a clip (and its image) as one."""

from __future__ import annotations

import torch

from lit_genvision.data.base import PIXEL_KEYS, ImageDataModule, pixels_to_unit_range, to_unit_range
from lit_genvision.methods.augment import flip_crop


def _batch(b: int = 4, c: int = 3, t: int = 5, side: int = 8) -> dict:
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (b, c, side, side), generator=g, dtype=torch.uint8)
    video = image[:, :, None].repeat(1, 1, t, 1, 1)  # every frame is the image
    return {"image": image, "video": video, "label": torch.arange(b), "text": ["a"] * b}


def test_image_and_video_are_converted_by_the_same_rule_and_nothing_else_is():
    batch = _batch()
    out = ImageDataModule(batch_size=4).device_transform(batch, training=False)
    assert set(PIXEL_KEYS) == {"image", "video"}
    for key in PIXEL_KEYS:
        assert out[key].dtype == torch.float32 and out[key].shape == batch[key].shape
        assert torch.equal(out[key], batch[key].float() / 127.5 - 1)
    assert out["video"].min() >= -1 and out["video"].max() <= 1
    assert out["label"] is batch["label"] and out["text"] is batch["text"]


def test_a_video_alone_is_converted_and_float_pixels_are_left_alone():
    video = _batch()["video"]
    out = pixels_to_unit_range({"video": video})
    assert torch.equal(out["video"], to_unit_range(video))
    already = {"image": torch.zeros(2, 1, 4, 4)}
    assert pixels_to_unit_range(already)["image"] is already["image"]
    assert pixels_to_unit_range({"label": torch.ones(2)}).keys() == {"label"}


def test_training_augmentation_moves_a_clip_and_its_image_together():
    torch.manual_seed(0)
    dm = ImageDataModule(batch_size=4, augment_crop=2, augment_flip=True)
    batch = _batch(b=16)
    out = dm.device_transform(batch, training=True)
    video, image = out["video"], out["image"]
    assert not torch.equal(image, to_unit_range(batch["image"]))  # something moved
    for f in range(video.shape[2]):  # one flip/crop per sample: every frame is still the (augmented) image
        assert torch.equal(video[:, :, f], image)


def test_an_image_batch_is_augmented_exactly_as_before():
    """The draws of an image-only batch are those of one flip_crop call, as before videos existed."""
    batch = {"image": _batch(b=16)["image"]}
    torch.manual_seed(3)
    out = ImageDataModule(batch_size=4, augment_crop=2, augment_flip=True).device_transform(batch, training=True)
    torch.manual_seed(3)
    assert torch.equal(out["image"], to_unit_range(flip_crop(batch["image"], 2, flip=True)))


def test_flip_crop_of_a_video_is_one_draw_per_sample():
    x = torch.arange(2 * 1 * 3 * 6 * 6, dtype=torch.float32).view(2, 1, 3, 6, 6)
    g = torch.Generator().manual_seed(1)
    out = flip_crop(x, 1, flip=True, generator=g)
    g = torch.Generator().manual_seed(1)
    as_channels = flip_crop(x.flatten(1, 2), 1, flip=True, generator=g).view(x.shape)
    assert out.shape == x.shape and torch.equal(out, as_channels)
