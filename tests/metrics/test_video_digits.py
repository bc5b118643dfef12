"""The motion checks and the digits-FVD extractor of moving digits (``metrics.video_digits``), on clips whose
answer is known: a dot moving one pixel a frame, a frozen clip, a digit's window."""

from __future__ import annotations

import pytest
import torch

from lit_genvision.metrics.video_digits import (
    VideoDigitsExtractor,
    VideoDigitsNet,
    centroid_tracks,
    clip_classes,
    frame_identities,
    mean_speed,
    net_directions,
)


def dot_clip(start: tuple[int, int], step: tuple[int, int], frames: int = 5, side: int = 32) -> torch.Tensor:
    """One clip (1, 1, T, S, S) in [-1, 1]: black with one white pixel at start + t·step (x, y)."""
    clip = -torch.ones(1, 1, frames, side, side)
    for t in range(frames):
        x, y = start[0] + t * step[0], start[1] + t * step[1]
        clip[0, 0, t, y, x] = 1.0
    return clip


def test_centroids_speed_and_direction_of_a_moving_dot():
    clip = dot_clip((10, 20), (2, -1))
    tracks = centroid_tracks(clip)
    assert torch.allclose(tracks[0], torch.tensor([[10.0 + 2 * t, 20.0 - t] for t in range(5)]))
    assert mean_speed(clip).item() == pytest.approx(5**0.5)
    assert net_directions(torch.cat([clip, dot_clip((20, 5), (0, 3)), dot_clip((20, 20), (-1, 0))])) == [
        "right",
        "down",
        "left",
    ]


def test_a_frozen_clip_has_no_speed_and_a_blank_frame_sits_at_the_centre():
    frozen = dot_clip((7, 9), (0, 0))
    assert mean_speed(frozen).item() == 0.0
    blank = -torch.ones(1, 1, 2, 32, 32)
    assert torch.equal(centroid_tracks(blank), torch.full((1, 2, 2), 15.5))


def test_the_identity_window_is_centred_on_the_ink():
    seen = []

    def classify(windows: torch.Tensor) -> torch.Tensor:
        seen.append(windows)
        return torch.nn.functional.one_hot(windows.flatten(1).argmax(1) % 10, 10).float()

    clip = dot_clip((3, 28), (4, -5), frames=4)  # near the edges: the window is padded with black
    ids = frame_identities(clip, classify)
    assert ids.shape == (1, 4)
    windows = seen[0]
    assert windows.shape == (4, 1, 16, 16)
    assert (windows[:, 0, 8, 8] == 1).all() and (windows == 1).sum() == 4  # the dot at the window's centre


def test_clip_classes_name_the_first_digit_and_its_direction():
    fields = {
        "velocity": torch.tensor([[[-1.5, 0.0], [0.0, 0.0]], [[0.0, 2.0], [1.0, 0.0]], [[1.2, 0.0], [0.0, 0.0]]]),
        "digit_labels": torch.tensor([[3, -1], [7, 2], [0, -1]]),
    }
    assert clip_classes(fields).tolist() == [3 * 4 + 0, 7 * 4 + 3, 0 * 4 + 1]  # left, down, right


def test_the_extractor_scores_whole_clips_and_names_its_weights():
    torch.manual_seed(0)
    a, b = VideoDigitsExtractor(VideoDigitsNet(), 0.5), VideoDigitsExtractor(VideoDigitsNet(), 0.5)
    feats, probs = a(torch.zeros(3, 1, 9, 32, 32))
    assert feats.shape == (3, 64) and probs.shape == (3, 40) and a.takes_video
    assert torch.allclose(probs.sum(1), torch.ones(3))
    assert a.name.startswith("digits-video-cnn-v1-") and a.name != b.name  # other weights, other name
    with pytest.raises(ValueError, match=r"one-channel clips \(N, 1, T, H, W\)"):
        a(torch.zeros(3, 1, 32, 32))


def test_digits_fvd_scores_whole_clips_against_whole_reference_clips(tmp_path, monkeypatch):
    """A clip extractor sees each clip once, in the reference and in the scorer (not its frames): the real clips
    scored against themselves sit at 0."""
    from lit_genvision.data.base import to_unit_range
    from lit_genvision.metrics.scoring import reference_scorer

    monkeypatch.setenv("LIT_GENVISION_CACHE", str(tmp_path))
    torch.manual_seed(0)
    extractor = VideoDigitsExtractor(VideoDigitsNet(), 0.5)
    clips = torch.randint(0, 256, (70, 1, 5, 16, 16), dtype=torch.uint8)
    scorer = reference_scorer(extractor, "moving_digits", "test", clips, ["digits_fvd"])
    assert scorer.reference.stats.n == 70
    scorer.update(to_unit_range(clips))
    assert scorer.stats.n == 70
    assert scorer.compute()["digits_fvd"] == pytest.approx(0.0, abs=1e-6)


def test_digits_fvd_is_refused_for_another_data_set():
    from lit_genvision.data import DigitsDataModule
    from lit_genvision.metrics.families.digits_video import DigitsVideoFamily

    with pytest.raises(ValueError, match="digits-FVD scores generators of moving digits; this run trained on digits"):
        DigitsVideoFamily().build(DigitsDataModule(), "test", 16, ["digits_fvd"], {})
