"""digits-FVD and the motion checks of moving digits: the video analogue of digits-FD (Unterthiner et al. 2018's
FVD, with the project's own small 3-D CNN in place of I3D), and what a person checks in a clip of a moving digit —
does it move the way the caption says, as fast as real digits move, and stay the same digit.

The feature network (`VideoDigitsNet`: three strided 3-D convs, global average pooling, a 64-wide feature layer)
is trained deterministically on the training clips of ``MovingDigitsDataModule`` to name the first digit and its
direction (10 × 4 classes), on first use, and cached as safetensors with its test accuracy; its name carries the
SHA-256 of its weights, so figures of two different networks are never ranked together. Because it must tell the
direction, its features see time: shuffling a clip's frames moves them (a metric that ignored time would not).

Motion checks read the ink centroid c_t of each frame (one digit per clip):

    speed = mean_t ‖c_{t+1} − c_t‖,   direction = the larger axis of c_{T−1} − c_0 and its sign,

and the identity of each frame from the digits classifier on the 16×16 window centred on c_t.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from lit_genvision.data.base import to_unit_range
from lit_genvision.data.moving_digits import DIRECTIONS, MovingDigitsDataModule
from lit_genvision.metrics.digits import cache_dir, fit_classifier

VERSION = 1  # bump when the network or its training changes: old caches are then ignored
DIRECTION_NAMES = tuple(DIRECTIONS)
NUM_CLASSES = 10 * len(DIRECTION_NAMES)
FEATURES = 64


class VideoDigitsNet(nn.Module):
    """Clips (N, 1, T, H, W) in [-1, 1] → features (N, 64) → logits (N, 40) of (first digit, its direction)."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv3d(1, 16, 3, stride=(1, 2, 2), padding=1), nn.SiLU(),
            nn.Conv3d(16, 32, 3, stride=(1, 2, 2), padding=1), nn.SiLU(),
            nn.Conv3d(32, 64, 3, stride=(2, 2, 2), padding=1), nn.SiLU(),
        )  # fmt: skip
        self.feature = nn.Linear(64, FEATURES)
        self.head = nn.Linear(FEATURES, NUM_CLASSES)

    def features(self, x: Tensor) -> Tensor:
        return F.silu(self.feature(self.convs(x).mean((2, 3, 4))))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def clip_classes(fields: dict) -> Tensor:
    """The class of each clip: 4·(its first digit) + the index of that digit's direction (left, right, up, down)."""
    v = fields["velocity"][:, 0]  # (N, 2)
    horizontal = v[:, 0].abs() >= v[:, 1].abs()
    direction = torch.where(horizontal, torch.where(v[:, 0] < 0, 0, 1), torch.where(v[:, 1] < 0, 2, 3))
    return fields["digit_labels"][:, 0] * len(DIRECTION_NAMES) + direction


def train_video_classifier(seed: int = 0, epochs: int = 15) -> tuple[VideoDigitsNet, float]:
    """Train the feature network on the training clips of the default moving digits (seed 0), deterministic for a
    given ``seed``. Returns the net and its accuracy on the test clips."""
    dm = MovingDigitsDataModule(seed=0)
    train, test = dm.split("train").fields, dm.split("test").fields
    net = fit_classifier(
        VideoDigitsNet, train["video"], clip_classes(train), epochs=epochs, lr=3e-3, seed=seed,
        prepare=lambda xb, g: to_unit_range(xb),
    )  # fmt: skip
    with torch.no_grad():
        logits = torch.cat([net(to_unit_range(c)) for c in test["video"].split(256)])
    return net, (logits.argmax(1) == clip_classes(test)).double().mean().item()


class VideoDigitsExtractor:
    """Features (N, 64) and class probabilities (N, 40) of clips (N, 1, T, H, W) in [-1, 1], whole clips at a time
    (``takes_video``); its ``name`` carries the weights' hash."""

    takes_video = True

    def __init__(self, net: VideoDigitsNet, test_accuracy: float) -> None:
        self.net, self.test_accuracy, self.dim = net.eval(), test_accuracy, FEATURES
        digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in net.state_dict().values()))
        self.name = f"digits-video-cnn-v{VERSION}-{digest.hexdigest()[:12]}"

    @torch.no_grad()
    def __call__(self, clips: Tensor) -> tuple[Tensor, Tensor]:
        if clips.ndim != 5 or clips.shape[1] != 1:
            raise ValueError(f"digits-FVD scores one-channel clips (N, 1, T, H, W), got shape {tuple(clips.shape)}.")
        feats = self.net.features(clips.float().cpu())
        return feats, self.net.head(feats).softmax(dim=1)


def load_video_extractor(seed: int = 0) -> VideoDigitsExtractor:
    """The cached feature network, trained on first use (a few minutes on a 2-core CPU)."""
    path = cache_dir() / f"digits-video-cnn-v{VERSION}-seed{seed}.safetensors"
    net = VideoDigitsNet()
    if path.is_file():
        try:
            net.load_state_dict(load_file(path))
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                acc = float(f.metadata()["test_accuracy"])
            return VideoDigitsExtractor(net, acc)
        except Exception:  # a damaged cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
    net, acc = train_video_classifier(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.safetensors")
    save_file(net.state_dict(), str(tmp), metadata={"test_accuracy": str(acc)})
    tmp.replace(path)
    return VideoDigitsExtractor(net, acc)


def centroid_tracks(clips: Tensor) -> Tensor:
    """The ink centroid (x, y) in pixels of every frame of clips (N, 1, T, H, W) in [-1, 1]: (N, T, 2); a frame
    without ink has its centre."""
    ink = ((clips.float()[:, 0] + 1) / 2).clamp(0, 1)  # (N, T, H, W)
    h, w = ink.shape[-2:]
    mass = ink.sum((-2, -1)).clamp_min(1e-6)
    x = (ink.sum(-2) * torch.arange(w, dtype=ink.dtype)).sum(-1) / mass
    y = (ink.sum(-1) * torch.arange(h, dtype=ink.dtype)).sum(-1) / mass
    empty = ink.sum((-2, -1)) < 1e-6
    return torch.stack([torch.where(empty, (w - 1) / 2, x), torch.where(empty, (h - 1) / 2, y)], dim=-1)


def mean_speed(clips: Tensor) -> Tensor:
    """Each clip's mean centroid speed in pixels per frame, (N,) (0 for a one-frame clip)."""
    tracks = centroid_tracks(clips)
    if tracks.shape[1] < 2:
        return torch.zeros(len(clips))
    return tracks.diff(dim=1).norm(dim=-1).mean(1)


def net_directions(clips: Tensor) -> list[str]:
    """The direction word of each clip's centroid displacement from its first frame to its last."""
    d = centroid_tracks(clips)[:, -1] - centroid_tracks(clips)[:, 0]  # (N, 2)
    out = []
    for dx, dy in d.tolist():
        out.append(("right" if dx > 0 else "left") if abs(dx) >= abs(dy) else ("down" if dy > 0 else "up"))
    return out


def frame_identities(clips: Tensor, classify) -> Tensor:
    """The digits classifier's decision (N, T) on each frame's 16×16 window centred on its ink centroid;
    ``classify`` maps windows (M, 1, 16, 16) in [-1, 1] to class probabilities (M, 10)."""
    n, _, t, h, w = clips.shape
    tracks = centroid_tracks(clips).round().long()  # (N, T, 2)
    padded = F.pad(clips.float()[:, 0], (8, 8, 8, 8), value=-1.0)  # (N, T, H + 16, W + 16)
    rows = (tracks[..., 1, None] + torch.arange(16)).clamp(0, h + 15)  # (N, T, 16): centre − 8 … + 7, shifted by 8
    cols = (tracks[..., 0, None] + torch.arange(16)).clamp(0, w + 15)
    ni, ti = torch.arange(n)[:, None, None, None], torch.arange(t)[None, :, None, None]
    windows = padded[ni, ti, rows[..., :, None], cols[..., None, :]]  # (N, T, 16, 16)
    return classify(windows.reshape(n * t, 1, 16, 16)).argmax(1).view(n, t)


__all__ = [
    "VideoDigitsExtractor",
    "VideoDigitsNet",
    "centroid_tracks",
    "clip_classes",
    "frame_identities",
    "load_video_extractor",
    "mean_speed",
    "net_directions",
    "train_video_classifier",
]
