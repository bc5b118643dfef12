"""Moving digits (``data.MovingDigitsDataModule``): split-disjoint and deterministic clips whose pixels move as
their velocities and captions say, bouncing inside the canvas, captioned in wordings the test split keeps to itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_genvision.data import MovingDigitsDataModule, motion_phrases
from lit_genvision.data.digits import split_indices
from lit_genvision.data.moving_digits import DIRECTIONS, WORDINGS, reflect
from lit_genvision.data.scenes import TEST_FRACTION, VAL_FRACTION

SMALL = {"train": 300, "val": 20, "test": 200}


@pytest.fixture(scope="module")
def clips() -> MovingDigitsDataModule:
    dm = MovingDigitsDataModule(clips_per_split=SMALL)
    dm.setup()
    return dm


def centroids(video: torch.Tensor) -> torch.Tensor:
    """The ink centroid (x, y) of each frame of (N, 1, T, S, S) uint8 clips: (N, T, 2)."""
    ink = video[:, 0].float()
    side = ink.shape[-1]
    axis = torch.arange(side, dtype=torch.float32)
    mass = ink.sum((-2, -1))
    return torch.stack([(ink.sum(-2) * axis).sum(-1) / mass, (ink.sum(-1) * axis).sum(-1) / mass], dim=-1)


def test_clips_use_only_the_digits_of_their_split():
    dm = MovingDigitsDataModule(clips_per_split=SMALL, seed=3)
    pools = split_indices(1797, VAL_FRACTION, TEST_FRACTION, 3)
    used = {}
    for split in ("train", "val", "test"):
        ids = dm.split(split).fields["digit_ids"]
        used[split] = set(ids[ids >= 0].tolist())
        assert used[split] <= set(pools[split].tolist())
    assert not (used["train"] & used["test"]) and not (used["train"] & used["val"]) and not (used["val"] & used["test"])


def test_the_same_seed_gives_the_same_clips_and_another_seed_others():
    a, b = (MovingDigitsDataModule(clips_per_split=SMALL, seed=1).split("train") for _ in range(2))
    c = MovingDigitsDataModule(clips_per_split=SMALL, seed=2).split("train")
    assert torch.equal(a.fields["video"], b.fields["video"]) and a.fields["text"] == b.fields["text"]
    assert not torch.equal(a.fields["video"], c.fields["video"])


def test_a_single_digit_moves_in_its_pixels_by_its_velocity_in_the_captioned_direction(clips):
    test = clips.split("test")
    single = (test.fields["digit_labels"][:, 1] < 0).nonzero().flatten()
    assert len(single) > 50
    video, velocity = test.fields["video"][single], test.fields["velocity"][single, 0]
    moved = centroids(video)[:, -1] - centroids(video)[:, 0]  # (n, 2)
    expected = velocity * (clips.frames - 1)  # no bounce in a default clip
    assert (moved - expected).abs().max() < 1.0  # the corner is rounded to whole pixels each frame
    for i, k in enumerate(single.tolist()):
        ((digit, word),) = motion_phrases(test.fields["text"][k])
        assert digit == int(test.fields["label"][k])
        assert torch.equal(torch.tensor(DIRECTIONS[word], dtype=torch.float32), torch.sign(velocity[i]))


def test_two_digit_captions_name_both_digits_and_how_they_move(clips):
    test = clips.split("test")
    pairs = (test.fields["digit_labels"][:, 1] >= 0).nonzero().flatten().tolist()
    assert len(pairs) > 50
    for k in pairs:
        said = motion_phrases(test.fields["text"][k])
        assert [d for d, _ in said] == test.fields["digit_labels"][k].tolist()
        v = torch.sign(test.fields["velocity"][k])
        words = [w for _, w in said]
        if words[0] in ("apart", "together"):
            assert torch.equal(v[0], -v[1])
        else:
            assert all(torch.equal(torch.tensor(DIRECTIONS[w], dtype=torch.float32), v[j]) for j, w in enumerate(words))


def test_long_clips_bounce_and_stay_on_the_canvas():
    dm = MovingDigitsDataModule(frames=40, clips_per_split={"train": 50, "val": 2, "test": 2}, max_digits=1)
    train = dm.split("train")
    boxes = train.fields["boxes"][:, :, 0]  # (N, T, 4)
    assert boxes.min() >= 0 and boxes.max() <= 1
    step = boxes[:, 1:, :2] - boxes[:, :-1, :2]  # (N, T−1, 2)
    reversed_ = (step[:, 1:] * step[:, :-1] < 0).any(-1).any(-1)  # a bounce: a coordinate's step changes sign
    assert reversed_.float().mean() > 0.9  # 40 frames at 1–2 px on a 16–22 px range
    p = np.linspace(-30, 60, 1000)
    folded = reflect(p, 10.0)
    assert folded.min() >= 0 and folded.max() <= 10 and np.abs(np.diff(folded)).max() <= np.abs(np.diff(p)).max() + 1e-9


def test_test_wordings_never_occur_in_training_captions(clips):
    train_words = {w for t in clips.split("train").fields["text"] for w in t.split()}
    for kind in ("one", "joint", "each"):
        for template in WORDINGS["test"][kind]:
            assert template not in WORDINGS["train"][kind] + WORDINGS["val"][kind]
    assert "heading" not in train_words and "going" not in train_words and "clip" not in train_words


def test_a_batch_is_a_uint8_video_that_becomes_unit_range_on_the_device(clips):
    batch = next(iter(clips.train_dataloader()))
    assert batch["video"].dtype == torch.uint8 and batch["video"].shape == (64, 1, 9, 32, 32)
    assert len(batch["text"]) == 64 and batch["boxes"].shape == (64, 9, 2, 4)
    moved = clips.device_transform(batch, training=False)["video"]
    assert moved.dtype == torch.float32 and moved.min() >= -1 and moved.max() <= 1
    assert clips.image_shape == (1, 9, 32, 32)


def test_bad_arguments_are_refused_in_one_sentence():
    with pytest.raises(ValueError, match="frames must be at least 1"):
        MovingDigitsDataModule(frames=0)
    with pytest.raises(ValueError, match="max_digits <= 2"):
        MovingDigitsDataModule(max_digits=3)
    with pytest.raises(ValueError, match="0 < low <= high"):
        MovingDigitsDataModule(speed=(2.0, 1.0))
