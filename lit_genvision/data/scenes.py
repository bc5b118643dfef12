"""Digit scenes: 1–3 real scikit-learn digits pasted on a canvas, with their boxes, a per-pixel
semantic map and a caption of the layout ("a 3 above a 7"): the embedded, offline default for
layout-, map- and text-conditioned models.

Layouts follow `openimages.py` exactly, so a layout model meets either data set unchanged:

* ``boxes`` float32 (M, 4): [xmin, ymin, xmax, ymax] as fractions of the image side; a box covers
  the pixels whose centres lie in [xmin, xmax) × [ymin, ymax) (pixel columns c0 … c1 − 1 give
  xmin = c0 / S, xmax = c1 / S); padding rows are zeros.
* ``box_labels`` int64 (M,): class indices 1 … 10 (digit d is class d + 1), −1 for padding.
* ``semantic_map`` int64 (S, S): class 0 (``"background"``) where no digit's ink exceeds
  `INK_THRESHOLD`, else the class (d + 1) of the digit whose ink is strongest there.

``label`` stays the digit itself (0 … 9) of the first, i.e. largest, digit, so label-conditional
models and the digits classifier still work on scenes.

Objects are ordered by ink-box area, largest first (ties in drawing order); the caption names them
in that order with numerals: "a 7" (one), "a 3 above a 7" / "a 2 to the left of a 5" (two: the
first relative to the second, from the box centres; above/below when the vertical offset is the
larger one), "a 4, a 1 and a 9" (three or more). `scene_digits` parses a caption back.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lit_genvision.data.base import InMemoryDataModule, TensorImageDataset
from lit_genvision.data.captions import DIGIT_WORDS, SPLITS
from lit_genvision.data.digits import DIGITS_CLASSES, load_digits_uint8, split_indices

#: Ink level (uint8) above which a pixel belongs to a digit: its box and its semantic-map class.
INK_THRESHOLD = 64
#: Largest IoU a new digit's ink box may have with an earlier one's (heavier overlap is redrawn).
MAX_IOU = 0.1
#: Positions tried per digit before the least overlapping one is kept.
PLACEMENT_TRIES = 20
#: Digit side range on a 32×32 canvas, scaled in proportion to ``image_size``.
SIDE_RANGE_32 = (10, 16)
#: Scenes per split unless ``scenes_per_split`` says otherwise.
DEFAULT_SCENES = {"train": 5000, "val": 500, "test": 1000}
# The digit split of DigitsDataModule's defaults, so a digit lies in exactly one split of both modules.
VAL_FRACTION, TEST_FRACTION = 0.1, 0.2

_DIGIT_PATTERN = re.compile(r"\b(" + "|".join(DIGIT_WORDS) + r"|[0-9])\b")


def digit_images_by_side(lo: int, hi: int) -> tuple[dict[int, Tensor], Tensor]:
    """Every digit resized once to each side lo … hi ({side: (N, side, side) uint8}) from its native 8×8, and the
    digits' labels (N,): what scenes and clips paste."""
    digits, labels = load_digits_uint8(8)
    ink = digits.float().div(255.0)
    resized = {
        side: F.interpolate(ink, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        .clamp(0, 1).mul(255).round().to(torch.uint8)[:, 0]
        for side in range(lo, hi + 1)
    }  # fmt: skip
    return resized, labels


def per_split(given: dict[str, int] | None, default: dict[str, int], what: str) -> dict[str, int]:
    """``default`` updated by ``given`` (how many scenes or clips each split has), refused in one sentence when a
    split is unknown or empty (``what``: the argument's name)."""
    unknown = set(given or {}) - set(SPLITS)
    if unknown:
        raise ValueError(f"{what} has unknown split(s) {sorted(unknown)}; use {', '.join(SPLITS)}.")
    counts = default | dict(given or {})
    if any(n < 1 for n in counts.values()):
        raise ValueError(f"every split of {what} needs at least one, got {counts}.")
    return counts


def scene_caption(digits: list[int], centres: list[tuple[float, float]]) -> str:
    """The caption of a scene whose objects are ``digits`` (in order) with box ``centres`` (x, y),
    y growing downwards: "a 7"; "a 3 above a 7" (the first relative to the second); "a 4, a 1 and a 9"."""
    names = [("an " if d == 8 else "a ") + str(d) for d in digits]
    if len(digits) == 1:
        return names[0]
    if len(digits) == 2:
        (x0, y0), (x1, y1) = centres
        if abs(y1 - y0) > abs(x1 - x0):
            relation = "above" if y0 < y1 else "below"
        else:
            relation = "to the left of" if x0 < x1 else "to the right of"
        return f"{names[0]} {relation} {names[1]}"
    return ", ".join(names[:-1]) + " and " + names[-1]


def scene_digits(text: str) -> list[int]:
    """The digits a scene caption names, in order, as numerals ("7") or words ("seven")
    (`captions.caption_digit` parses single-digit captions only)."""
    return [int(m) if m.isdigit() else DIGIT_WORDS.index(m) for m in _DIGIT_PATTERN.findall(text.lower())]


def _ink_boxes(images: Tensor) -> Tensor:
    """(N, 4) int64 [c0, r0, c1, r1] (end exclusive) of the pixels above `INK_THRESHOLD` in (N, s, s)
    uint8 images; the whole square where none is."""
    mask = images > INK_THRESHOLD
    side = images.shape[-1]
    rows, cols = mask.any(2), mask.any(1)  # (N, s) each
    first = lambda m: m.int().argmax(1)  # noqa: E731
    box = torch.stack([first(cols), first(rows), side - first(cols.flip(1)), side - first(rows.flip(1))], dim=1)
    empty = ~rows.any(1)
    box[empty] = torch.tensor([0, 0, side, side])
    return box.long()


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def make_scenes(
    pool: Tensor,
    num: int,
    image_size: int,
    min_objects: int,
    max_objects: int,
    seed: int,
    digit_images: dict[int, Tensor],
    digit_labels: Tensor,
) -> dict[str, Tensor | list[str]]:
    """``num`` scenes built from the digits whose ids are in ``pool``, drawn by a generator seeded by ``seed``.

    Each scene has n ~ U{min_objects … max_objects} digits, each drawn from ``pool`` with a side
    ~ U{sides in ``digit_images``} and a top-left corner uniform on the canvas; a position whose ink
    box has IoU > `MAX_IOU` with an earlier digit's is redrawn (`PLACEMENT_TRIES` times, then the
    least overlapping try is kept). Digits are pasted by the maximum of ink (white on black).
    Returns the batch fields (see the module docstring) plus ``digit_ids`` (M,) −1-padded.
    """
    rng = np.random.default_rng(seed)
    s, m = image_size, max_objects
    sides_available = sorted(digit_images)
    counts = rng.integers(min_objects, max_objects + 1, num).tolist()
    ids = pool.numpy()[rng.integers(0, len(pool), (num, m))].tolist()
    sides = rng.integers(sides_available[0], sides_available[-1] + 1, (num, m)).tolist()
    pos = rng.random((num, m, PLACEMENT_TRIES, 2)).tolist()  # (x, y) in [0, 1): scaled to s − side + 1
    ink = {side: _ink_boxes(imgs).tolist() for side, imgs in digit_images.items()}

    objects: list[list[tuple]] = []  # per scene: (digit id, side, x, y, (c0, r0, c1, r1)) largest first
    for i in range(num):
        placed: list[tuple] = []
        for j in range(counts[i]):
            did, side = ids[i][j], sides[i][j]
            c0, r0, c1, r1 = ink[side][did]
            best = None
            for px, py in pos[i][j]:
                x, y = int(px * (s - side + 1)), int(py * (s - side + 1))
                box = (x + c0, y + r0, x + c1, y + r1)
                overlap = max((_iou(box, p[4]) for p in placed), default=0.0)
                if best is None or overlap < best[0]:
                    best = (overlap, (did, side, x, y, box))
                if overlap <= MAX_IOU:
                    break
            placed.append(best[1])
        area = lambda o: (o[4][2] - o[4][0]) * (o[4][3] - o[4][1])  # noqa: E731
        objects.append(sorted(placed, key=area, reverse=True))

    pad = [(-1, 0, 0, 0, (0, 0, 0, 0))]
    rows_of = [objs + pad * (m - len(objs)) for objs in objects]
    digit_ids = torch.tensor([[o[0] for o in r] for r in rows_of], dtype=torch.int64)  # (N, M)
    sides_t = torch.tensor([[o[1] for o in r] for r in rows_of], dtype=torch.int64)
    xy = torch.tensor([[o[2:4] for o in r] for r in rows_of], dtype=torch.int64)  # (N, M, 2)
    pixel_boxes = torch.tensor([[o[4] for o in r] for r in rows_of], dtype=torch.int64)  # (N, M, 4)
    layers = torch.zeros(num, m, s, s, dtype=torch.uint8)
    for j in range(m):  # paste slot j of all scenes, one index operation per digit side
        for side in sides_available:
            sel = torch.nonzero((digit_ids[:, j] >= 0) & (sides_t[:, j] == side)).flatten()
            if len(sel) == 0:
                continue
            span = torch.arange(side)
            rows = xy[sel, j, 1, None] + span  # (k, side)
            cols = xy[sel, j, 0, None] + span
            layers[sel[:, None, None], j, rows[:, :, None], cols[:, None, :]] = digit_images[side][digit_ids[sel, j]]

    real = digit_ids >= 0
    box_labels = torch.where(real, digit_labels[digit_ids.clamp_min(0)] + 1, -1)
    image = layers.amax(1)  # (N, S, S): paste by the maximum of ink
    owner_class = torch.zeros(num, s, s, dtype=torch.int64)  # class of the strongest ink (the first on ties)
    for j in reversed(range(m)):
        owner_class = torch.where(layers[:, j] == image, box_labels[:, j, None, None], owner_class)
    semantic_map = torch.where(image > INK_THRESHOLD, owner_class, 0)
    boxes = torch.where(real[..., None], pixel_boxes.float() / s, 0.0)
    centres = ((boxes[..., :2] + boxes[..., 2:]) / 2).tolist()
    texts = [
        scene_caption([int(v) - 1 for v in box_labels[i, : len(objs)]], [tuple(c) for c in centres[i][: len(objs)]])
        for i, objs in enumerate(objects)
    ]
    return {
        "image": image[:, None],
        "label": box_labels[:, 0] - 1,
        "boxes": boxes,
        "box_labels": box_labels,
        "semantic_map": semantic_map,
        "digit_ids": digit_ids,
        "id": torch.arange(num),
        "text": texts,
    }


class DigitScenesDataModule(InMemoryDataModule):
    """Scenes of 1–3 real digits on an ``image_size`` canvas, with boxes, semantic maps and captions.

    Train scenes use only train digits, val scenes only val digits and test scenes only test digits
    (the split of `DigitsDataModule` with the same ``seed``). Scenes of split s come from a generator
    seeded by (seed, s), so the same arguments give the same scenes; all are built at setup.

    Args:
        image_size: side of the (square, one-channel) canvas; at least 16.
        batch_size: per-process batch size.
        max_objects: digits per scene at most (and rows of ``boxes`` / ``box_labels``).
        min_objects: digits per scene at least.
        scenes_per_split: scenes of each split, e.g. {train: 5000, val: 500, test: 1000} (the
            default; missing splits keep their default).
        seed: seed of the digit split, of the scenes and of the shuffling.
        num_workers: DataLoader workers (0: the data is already in memory).

    Batches carry ``image`` uint8 (B, 1, S, S), ``label`` (B,) the first (largest) digit,
    ``boxes`` (B, M, 4), ``box_labels`` (B, M), ``semantic_map`` (B, S, S) (conventions of
    `openimages.py`, see the module docstring), ``text`` (B strings), ``id`` (B,) the scene index in
    its split and ``digit_ids`` (B, M) the source digits' indices in ``load_digits()`` order, −1-padded.
    Digits are pasted with little overlap: a position whose ink box has IoU > `MAX_IOU` with an
    earlier digit's is redrawn.
    """

    name = "digit_scenes"
    provides = ("image", "label", "boxes", "box_labels", "semantic_map", "text")

    def __init__(
        self,
        image_size: int = 32,
        batch_size: int = 128,
        max_objects: int = 3,
        min_objects: int = 1,
        scenes_per_split: dict[str, int] | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, num_workers=num_workers)
        if image_size < 16:
            raise ValueError(f"image_size must be at least 16 (digits of 5 px or more), got {image_size}.")
        if not 1 <= min_objects <= max_objects:
            raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects} and {max_objects}.")
        self.scenes_per_split = per_split(scenes_per_split, DEFAULT_SCENES, "scenes_per_split")
        self.image_size, self.max_objects, self.min_objects = image_size, max_objects, min_objects
        #: Classes of the semantic map and of ``box_labels``, background (0) included.
        self.class_names: list[str] = ["background", *DIGIT_WORDS]
        #: The id a user names each class by, index for index with ``class_names``: the digit ("" for background).
        self.class_ids: list[str] = ["", *(str(d) for d in range(DIGITS_CLASSES))]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int:
        """Classes of the semantic map, background included: 11."""
        return DIGITS_CLASSES + 1

    @property
    def digit_sides(self) -> tuple[int, int]:
        """Smallest and largest side of a pasted digit (10–16 px on a 32 canvas, in proportion)."""
        lo, hi = (round(v * self.image_size / 32) for v in SIDE_RANGE_32)
        return lo, hi

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        digit_images, labels = digit_images_by_side(*self.digit_sides)
        pools = split_indices(len(labels), VAL_FRACTION, TEST_FRACTION, self.seed)
        for name in SPLITS:
            fields = make_scenes(
                pools[name],
                self.scenes_per_split[name],
                self.image_size,
                self.min_objects,
                self.max_objects,
                seed=self.seed * len(SPLITS) + SPLITS.index(name),
                digit_images=digit_images,
                digit_labels=labels,
            )
            image, label = fields.pop("image"), fields.pop("label")
            self.splits[name] = TensorImageDataset(image, label, **fields)

    def caption_corpus(self, split: str = "train") -> list[str]:
        """The captions of ``split`` (a text tower's tokenizer is trained on the training ones)."""
        self.setup("fit")
        return list(self.split(split).fields["text"])
