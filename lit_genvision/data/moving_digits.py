"""Moving digits: one or two real scikit-learn digits sliding at constant velocity on a canvas and bouncing off
its edges — the embedded, offline default of the video families (Moving MNIST, Srivastava et al. 2015, on the
digits this platform ships).

A clip is ``frames`` frames of an S×S canvas (default 9 of 32×32: a causal tokenizer with temporal factor r needs
1 + r·k frames, CogVideoX's 8N + 1, Cosmos' 9 → 3). Each digit gets a side, a start and a velocity of one of the
four directions (left, right, up, down) at ``speed`` pixels per frame; its top-left corner moves as

    p_t = reflect(p_0 + v·t)   with reflect folding the line back into [0, S − side] (a bounce at each edge),

and the start is drawn so that the default clip has no bounce (the caption's direction is then the whole clip's);
longer clips bounce. Digits are pasted by the maximum of ink, white on black.

The caption says what moves and how, from the trajectories ("a 4 moving left"; two digits: "a 2 and a 9 moving
apart" when they move along one axis in opposite directions and their gap grows, "… moving together" when it
shrinks, "a 2 and a 9 moving up" when both move the same way, else "a 2 moving left and a 9 moving down"), the digit
as a numeral or a word, in wordings of its split: the test split's wordings never occur in training.
`motion_phrases` parses a caption back into (digit, direction) pairs.

Train clips use only train digits, val clips val digits, test clips test digits (the split of `DigitsDataModule`
with the same ``seed``); clips of a split come from a generator seeded by (seed, split): the same arguments give
the same clips.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from torch import Tensor

from lit_genvision.data.base import InMemoryDataModule, TensorImageDataset
from lit_genvision.data.captions import DIGIT_WORDS, SPLITS
from lit_genvision.data.digits import split_indices
from lit_genvision.data.scenes import SIDE_RANGE_32, TEST_FRACTION, VAL_FRACTION, digit_images_by_side, per_split

#: Direction words and their unit velocity (dx, dy), y growing downwards.
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
#: Clips per split unless ``clips_per_split`` says otherwise.
DEFAULT_CLIPS = {"train": 5000, "val": 500, "test": 1000}
#: Wordings by split: {a} is a digit with its article ("a 4", "a four"), {dir} a direction word, {both} two digits
#: ("a 2 and a 9"), {how} a joint motion ("apart", "together", "left" …). No string is shared between splits.
WORDINGS: dict[str, dict[str, list[str]]] = {
    "train": {
        "one": ["{a} moving {dir}", "{a} that moves {dir}", "{a} sliding {dir}", "{a} drifting {dir}"],
        "joint": ["{both} moving {how}", "{both} sliding {how}", "{both} that move {how}"],
        "each": ["{a} moving {dir} and {b} moving {dir2}", "{a} sliding {dir} while {b} slides {dir2}"],
    },
    "val": {
        "one": ["{a} travelling {dir}"],
        "joint": ["{both} travelling {how}"],
        "each": ["{a} travelling {dir} as {b} travels {dir2}"],
    },
    "test": {
        "one": ["a clip of {a} going {dir}", "{a} heading {dir}"],
        "joint": ["a clip of {both} going {how}", "{both} heading {how}"],
        "each": ["a clip of {a} going {dir} and {b} going {dir2}", "{a} heading {dir}, {b} heading {dir2}"],
    },
}
_NAME = r"\b(?:an? )?(" + "|".join(DIGIT_WORDS) + r"|[0-9])\b"
_DIRECTION = r"(left|right|up|down|apart|together)"
_PHRASE = re.compile(_NAME + r"(?: and " + _NAME + r")?\s+(?:\w+\s+){0,1}?(?:moving|moves|sliding|slides|drifting|"
                     r"travelling|travels|going|heading|move|slide)\s+" + _DIRECTION)  # fmt: skip


def digit_name(digit: int, word: bool) -> str:
    """ "a 4" / "an 8" (numeral) or "a four" / "an eight" (word)."""
    name = DIGIT_WORDS[digit] if word else str(digit)
    return ("an " if name[0] in "8e" else "a ") + name


def motion_caption(
    digits: list[int], directions: list[str], gap_change: float, template: str, words: list[bool]
) -> str:
    """The caption of a clip of ``digits`` moving in ``directions`` (see the module docstring), in ``template``
    (one of a split's "one", "joint" or "each" wordings, chosen by the caller to fit the motion); ``gap_change``
    is the change of the distance between two digits' centres over the clip; ``words[i]``: name digit i as a
    word."""
    names = [digit_name(d, w) for d, w in zip(digits, words, strict=True)]
    if len(digits) == 1:
        return template.format(a=names[0], dir=directions[0])
    return template.format(
        a=names[0], b=names[1], dir=directions[0], dir2=directions[1], both=f"{names[0]} and {names[1]}",
        how=joint_motion(directions, gap_change) or "",
    )  # fmt: skip


def joint_motion(directions: list[str], gap_change: float) -> str | None:
    """How two digits move together: their common direction, "apart" / "together" for opposite directions on one
    axis (by the sign of the change of their gap), None when each is named on its own."""
    a, b = (DIRECTIONS[d] for d in directions)
    if a == b:
        return directions[0]
    if a[0] == -b[0] and a[1] == -b[1]:
        return "apart" if gap_change > 0 else "together"
    return None


def motion_phrases(text: str) -> list[tuple[int, str]]:
    """The (digit, motion word) pairs a caption states, in order: "a 4 moving left" → [(4, "left")]; "a 2 and
    a 9 moving apart" → [(2, "apart"), (9, "apart")]. A motion word is a direction, "apart" or "together"."""
    out: list[tuple[int, str]] = []
    for first, second, how in _PHRASE.findall(text.lower()):
        for name in (first, second):
            if name:
                out.append((int(name) if name.isdigit() else DIGIT_WORDS.index(name), how))
    return out


def reflect(p: np.ndarray, high: np.ndarray | float) -> np.ndarray:
    """p folded into [0, high] by reflection at both ends (a bounce): a triangle wave of period 2·high (0 where
    high is 0: no room to move)."""
    period = np.maximum(2 * np.asarray(high, dtype=np.float64), 1e-12)
    q = np.mod(p, period)
    return np.minimum(np.where(q > period / 2, period - q, q), np.maximum(high, 0))


def make_clips(
    pool: Tensor,
    num: int,
    frames: int,
    image_size: int,
    digits_per_clip: tuple[int, int],
    speed: tuple[float, float],
    seed: int,
    split: str,
    digit_images: dict[int, Tensor],
    digit_labels: Tensor,
) -> dict[str, Tensor | list[str]]:
    """``num`` clips from the digits whose ids are in ``pool``, drawn by a generator seeded by ``seed``; captions
    in ``split``'s wordings. Returns ``video`` uint8 (N, 1, T, S, S) and the per-clip fields of
    `MovingDigitsDataModule`."""
    rng = np.random.default_rng(seed)
    s, m, t = image_size, digits_per_clip[1], frames
    sides_available = sorted(digit_images)
    counts = rng.integers(digits_per_clip[0], m + 1, num)
    ids = pool.numpy()[rng.integers(0, len(pool), (num, m))]
    sides = rng.integers(sides_available[0], sides_available[-1] + 1, (num, m))
    names = list(DIRECTIONS)
    direction = rng.integers(0, len(names), (num, m))
    speeds = rng.uniform(speed[0], speed[1], (num, m))
    unit = np.array([DIRECTIONS[n] for n in names], dtype=np.float64)[direction]  # (N, M, 2)
    velocity = unit * speeds[..., None]  # (N, M, 2) px per frame
    high = (s - sides).astype(np.float64)  # (N, M): the corner's range on each axis
    travel = np.abs(velocity) * (t - 1)  # (N, M, 2)
    # the start: on a moving axis, where the whole clip fits without a bounce (if it can); elsewhere uniform
    room = np.clip(high[..., None] - travel, 0, None)  # (N, M, 2)
    start = rng.random((num, m, 2)) * room + np.where(velocity < 0, np.minimum(travel, high[..., None]), 0)
    steps = np.arange(t, dtype=np.float64)
    path = reflect(start[:, :, None] + velocity[:, :, None] * steps[None, None, :, None], high[:, :, None, None])
    corner = np.rint(path).astype(np.int64)  # (N, M, T, 2): x, y of the top-left corner per frame
    present = np.arange(m)[None] < counts[:, None]  # (N, M)

    video = torch.zeros(num, t, s, s, dtype=torch.uint8)
    corner_t, ids_t, sides_t = torch.from_numpy(corner), torch.from_numpy(ids), torch.from_numpy(sides)
    for j in range(m):
        for side in sides_available:
            sel = torch.nonzero(torch.from_numpy(present[:, j]) & (sides_t[:, j] == side)).flatten()
            if len(sel) == 0:
                continue
            span = torch.arange(side)
            ink = digit_images[side][ids_t[sel, j]]  # (k, side, side)
            for f in range(t):
                rows = corner_t[sel, j, f, 1, None] + span  # (k, side)
                cols = corner_t[sel, j, f, 0, None] + span
                region = video[sel[:, None, None], f, rows[:, :, None], cols[:, None, :]]
                video[sel[:, None, None], f, rows[:, :, None], cols[:, None, :]] = torch.maximum(region, ink)

    labels = digit_labels[ids_t]  # (N, M)
    centre = corner + sides[:, :, None, None] / 2  # (N, M, T, 2)
    boxes = np.concatenate([corner, corner + sides[:, :, None, None]], axis=-1) / s  # (N, M, T, 4)
    boxes = np.where(present[:, :, None, None], boxes, 0.0)
    net = centre[:, :, -1] - centre[:, :, 0]  # (N, M, 2) the clip's displacement
    gap = np.linalg.norm(centre[:, 0] - centre[:, min(1, m - 1)], axis=-1)  # (N, T)
    wordings = WORDINGS[split]
    pick = rng.random((num, 2))
    words = rng.random((num, m)) < 0.5
    texts = []
    for i in range(num):
        n = int(counts[i])
        moves = [_direction_of(net[i, j], direction[i, j]) for j in range(n)]
        digits = [int(v) for v in labels[i, :n]]
        kind = "one" if n == 1 else ("joint" if joint_motion(moves, gap[i, -1] - gap[i, 0]) else "each")
        options = wordings[kind]
        template = options[int(pick[i, 0] * len(options))]
        texts.append(motion_caption(digits, moves, float(gap[i, -1] - gap[i, 0]), template, list(words[i, :n])))
    present_t = torch.from_numpy(present)
    return {
        "video": video[:, None],
        "label": labels[:, 0].clone(),
        "digit_labels": torch.where(present_t, labels, -1),
        "boxes": torch.from_numpy(boxes).float().transpose(1, 2).contiguous(),  # (N, T, M, 4)
        "velocity": torch.from_numpy(np.where(present[..., None], velocity, 0.0)).float(),  # (N, M, 2)
        "digit_ids": torch.where(present_t, ids_t, -1),
        "id": torch.arange(num),
        "text": texts,
    }


def _direction_of(displacement: np.ndarray, drawn: int) -> str:
    """The direction word of a clip's net displacement (x, y): its larger axis and sign; the drawn direction
    when the digit ends where it started (a clip long enough to bounce back)."""
    dx, dy = displacement
    if abs(dx) < 0.5 and abs(dy) < 0.5:
        return list(DIRECTIONS)[drawn]
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


class MovingDigitsDataModule(InMemoryDataModule):
    """Clips of one or two real digits moving on an ``image_size`` canvas, with per-frame boxes, labels,
    velocities and a caption of the motion (see the module docstring).

    Args:
        image_size: side S of the (square, one-channel) canvas; at least 16.
        frames: T, frames per clip (9 by default: 1 + 8, what a causal tokenizer with temporal factor 2 or 4 or 8
            takes; one frame is an image).
        batch_size: per-process batch size.
        min_digits, max_digits: digits per clip (1 … 2 by default).
        speed: (low, high) pixels per frame of a 32-pixel canvas (in proportion to S), drawn uniformly.
        clips_per_split: clips of each split, e.g. {train: 5000, val: 500, test: 1000} (the default).
        seed: seed of the digit split, of the clips and of the shuffling.
        num_workers: DataLoader workers (0: the data is already in memory).

    Batches carry ``video`` uint8 (B, 1, T, S, S), ``label`` (B,) the first digit, ``digit_labels`` (B, M) −1-padded,
    ``boxes`` (B, T, M, 4) per frame ([xmin, ymin, xmax, ymax] as fractions of S, zeros for padding),
    ``velocity`` (B, M, 2) pixels per frame (x right, y down), ``text`` (B strings), ``id`` (B,) the clip's index
    in its split and ``digit_ids`` (B, M) the source digits' indices in ``load_digits()`` order.
    """

    name = "moving_digits"
    provides = ("video", "label", "text")

    def __init__(
        self,
        image_size: int = 32,
        frames: int = 9,
        batch_size: int = 64,
        min_digits: int = 1,
        max_digits: int = 2,
        speed: tuple[float, float] = (1.0, 2.0),
        clips_per_split: dict[str, int] | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, num_workers=num_workers)
        if image_size < 16:
            raise ValueError(f"image_size must be at least 16 (digits of 5 px or more), got {image_size}.")
        if frames < 1:
            raise ValueError(f"frames must be at least 1 (one frame is an image), got {frames}.")
        if not 1 <= min_digits <= max_digits <= 2:
            raise ValueError(f"need 1 <= min_digits <= max_digits <= 2, got {min_digits} and {max_digits}.")
        if not 0 < speed[0] <= speed[1]:
            raise ValueError(f"speed must be (low, high) pixels per frame with 0 < low <= high, got {tuple(speed)}.")
        self.clips_per_split = per_split(clips_per_split, DEFAULT_CLIPS, "clips_per_split")
        self.image_size, self.frames = image_size, frames
        self.min_digits, self.max_digits, self.speed = min_digits, max_digits, (float(speed[0]), float(speed[1]))

    @property
    def image_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of a clip."""
        return (1, self.frames, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int:
        return len(DIGIT_WORDS)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        digit_images, labels = digit_images_by_side(*(round(v * self.image_size / 32) for v in SIDE_RANGE_32))
        scale = self.image_size / 32
        pools = split_indices(len(labels), VAL_FRACTION, TEST_FRACTION, self.seed)
        for name in SPLITS:
            fields = make_clips(
                pools[name], self.clips_per_split[name], self.frames, self.image_size,
                (self.min_digits, self.max_digits), (self.speed[0] * scale, self.speed[1] * scale),
                seed=self.seed * len(SPLITS) + SPLITS.index(name), split=name, digit_images=digit_images,
                digit_labels=labels,
            )  # fmt: skip
            video, label = fields.pop("video"), fields.pop("label")
            self.splits[name] = TensorImageDataset(video, label, key="video", **fields)

    def caption_corpus(self, split: str = "train") -> list[str]:
        """The captions of ``split`` (a text tower's tokenizer is trained on the training ones)."""
        self.setup("fit")
        return list(self.split(split).fields["text"])


__all__ = ["DIRECTIONS", "MovingDigitsDataModule", "make_clips", "motion_caption", "motion_phrases", "reflect"]
