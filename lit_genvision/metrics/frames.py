"""The one adapter between videos and everything made for images: grids, GIFs and per-frame metrics.

A video is (N, C, T, H, W), an image (N, C, H, W): an image is a one-frame video. Anything that takes
images takes a video's frames, (N·T, C, H, W), video-major (all frames of video 0, then of video 1, …):

    frames = as_frames(x)                   (N, C, T, H, W) → (N·T, C, H, W); images pass unchanged
    x      = from_frames(frames, T)         the inverse
    y      = per_frame(labels, T)           a per-video value (labels (N,), prompts) repeated for its T frames

so an image metric scores a video frame by frame: every frame is one sample of the metric, carrying its
video's label and prompt (`frame_batch`).
"""

from __future__ import annotations

from typing import TypeVar

from einops import rearrange
from torch import Tensor

V = TypeVar("V", Tensor, list, None)


def is_video(x: Tensor) -> bool:
    """True for a batch of videos (N, C, T, H, W), False for images (N, C, H, W)."""
    if x.ndim not in (4, 5):
        raise ValueError(f"expected images (N, C, H, W) or videos (N, C, T, H, W), got shape {tuple(x.shape)}.")
    return x.ndim == 5


def num_frames(x: Tensor) -> int:
    """T of a video batch, 1 for images."""
    return x.shape[2] if is_video(x) else 1


def as_frames(x: Tensor) -> Tensor:
    """Videos (N, C, T, H, W) → their frames (N·T, C, H, W), video-major; images (N, C, H, W) unchanged."""
    return rearrange(x, "n c t h w -> (n t) c h w") if is_video(x) else x


def from_frames(frames: Tensor, t: int) -> Tensor:
    """The inverse of `as_frames`: (N·T, C, H, W) → (N, C, T, H, W)."""
    if frames.ndim != 4 or frames.shape[0] % t:
        raise ValueError(f"{tuple(frames.shape)} is not a stack of whole videos of {t} frames (N·T, C, H, W).")
    return rearrange(frames, "(n t) c h w -> n c t h w", t=t)


def per_frame(values: V, t: int) -> V:
    """A per-video value for each of its ``t`` frames: a tensor (N, …) → (N·T, …), a list of N → N·T
    items (each repeated t times in a row), None → None. With t = 1 the value itself."""
    if values is None or t == 1:
        return values
    if isinstance(values, Tensor):
        return values.repeat_interleave(t, dim=0)
    return [v for v in values for _ in range(t)]


def frame_batch(
    x: Tensor, labels: Tensor | None = None, prompts: list[str] | None = None, whole: bool = False
) -> tuple[Tensor, Tensor | None, list[str] | None]:
    """What an image metric sees of a batch: (frames (N·T, C, H, W), labels (N·T,), prompts (N·T))
    for videos; images, labels and prompts unchanged. ``whole``: what a video metric sees (an extractor with
    ``takes_video``, digits-FVD's): the batch as it is."""
    if whole:
        return x, labels, prompts
    t = num_frames(x)
    return as_frames(x), per_frame(labels, t), per_frame(prompts, t)


def takes_video(extractor: object) -> bool:
    """Whether ``extractor`` scores whole clips (digits-FVD's network) rather than frames."""
    return bool(getattr(extractor, "takes_video", False))


__all__ = ["as_frames", "frame_batch", "from_frames", "is_video", "num_frames", "per_frame", "takes_video"]
