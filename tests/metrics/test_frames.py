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
