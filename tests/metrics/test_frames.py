"""The frame adapter: videos (N, C, T, H, W) ↔ frames (N·T, C, H, W), per-video values per frame, and an image
metric scoring a video frame by frame."""

from __future__ import annotations

import pytest
import torch

from lit_genvision.metrics.frames import as_frames, frame_batch, from_frames, is_video, num_frames, per_frame


def test_as_frames_is_video_major_and_from_frames_inverts_it():
    x = torch.randn(2, 3, 4, 5, 6)
    frames = as_frames(x)
    assert frames.shape == (8, 3, 5, 6)
    assert torch.equal(frames[1 * 4 + 2], x[1, :, 2])  # video 1, frame 2
    assert torch.equal(from_frames(frames, 4), x)
    with pytest.raises(ValueError, match="whole videos"):
        from_frames(frames, 3)


def test_images_pass_unchanged():
    x = torch.randn(2, 3, 5, 6)
    assert not is_video(x) and num_frames(x) == 1 and as_frames(x) is x
    assert is_video(torch.zeros(1, 1, 2, 3, 3)) and num_frames(torch.zeros(1, 1, 2, 3, 3)) == 2
    with pytest.raises(ValueError, match="videos"):
        is_video(torch.zeros(3, 3))


def test_per_frame_repeats_each_videos_value_for_its_frames():
    assert per_frame(torch.tensor([7, 9]), 3).tolist() == [7, 7, 7, 9, 9, 9]
    assert per_frame(["a", "b"], 2) == ["a", "a", "b", "b"]
    assert per_frame(None, 4) is None
    labels = torch.tensor([1, 2])
    assert per_frame(labels, 1) is labels


def test_frame_batch_lines_up_frames_labels_and_prompts():
    x = torch.randn(2, 1, 3, 4, 4)
    frames, labels, prompts = frame_batch(x, torch.tensor([4, 5]), ["four", "five"])
    assert frames.shape == (6, 1, 4, 4)
    assert labels.tolist() == [4, 4, 4, 5, 5, 5] and prompts[3] == "five"
    image = x[:, :, 0]
    assert frame_batch(image, None, None) == (image, None, None)


class _MeanExtractor:
    """A stand-in image extractor: features = per-channel means and maxima, class probabilities from the mean
    brightness. It accepts images (N, C, H, W) only, as every real extractor does."""

    name, dim = "mean", 2

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert images.ndim == 4, "an image extractor got something other than images"
        feats = torch.stack([images.mean((1, 2, 3)), images.amax((1, 2, 3))], dim=1)  # (N, 2)
        bright = (images.mean((1, 2, 3)) > 0).long()
        return feats, torch.nn.functional.one_hot(bright, 2).float()  # (N, 2)


def test_a_video_is_scored_frame_by_frame_by_an_image_metric():
    from lit_genvision.metrics.scoring import METRICS, Scorer

    g = torch.Generator().manual_seed(0)
    videos = torch.rand(3, 1, 4, 6, 6, generator=g) * 2 - 1  # (N, C, T, H, W)
    labels = torch.tensor([0, 1, 1])
    as_video = Scorer(_MeanExtractor(), None, ["recognised", "label_agreement"])
    as_video.update(videos, labels, ["x", "y", "z"])
    as_images = as_video.fresh()
    as_images.update(as_frames(videos), per_frame(labels, 4), per_frame(["x", "y", "z"], 4))
    assert as_video.stats.n == 12  # every frame is one sample
    assert torch.equal(as_video.stats.sum, as_images.stats.sum) and torch.equal(as_video.all_probs, as_images.all_probs)
    assert as_video.prompts == as_images.prompts and len(as_video.prompts) == 12
    agreement = METRICS["label_agreement"].compute(as_video)
    assert agreement == METRICS["label_agreement"].compute(as_images)
    expected = (as_images.all_probs.argmax(1) == per_frame(labels, 4)).double().mean().item()
    assert agreement == pytest.approx(expected)


def test_reference_features_of_videos_are_those_of_their_frames():
    from lit_genvision.metrics.reference import extract, image_batches

    g = torch.Generator().manual_seed(1)
    videos = torch.randint(0, 256, (5, 1, 3, 4, 4), generator=g, dtype=torch.uint8)
    stats_v, kept_v, probs_v = extract(_MeanExtractor(), image_batches(videos, 2))
    stats_f, kept_f, probs_f = extract(_MeanExtractor(), image_batches(as_frames(videos), 6))
    assert stats_v.n == stats_f.n == 15
    torch.testing.assert_close(stats_v.sum, stats_f.sum)
    assert torch.equal(kept_v, kept_f) and torch.equal(probs_v, probs_f)
