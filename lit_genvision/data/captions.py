"""Captions of the digits measured on the images themselves, and caption files.

Each digit gets three attributes measured on its pixels (`digit_attributes`): stroke ``weight``,
``slant`` and ``size``; each is cut into three words at the tertiles of the default train split
(the middle tertile has no word). A caption is a template of its split filled with the digit's
name and its attribute words (`make_captions`); the train, val and test template sets share no
string, so a text-conditioned model is tested on wordings it never trained on. `caption_digit`
and `caption_words` parse a caption back, so a metric can check that a sample obeys its prompt.

Caption files are parquet with string columns ``key`` and ``text`` (`write_captions`, `read_captions`).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

SPLITS = ("train", "val", "test")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Tertiles (1/3 and 2/3 quantiles, torch.quantile with linear interpolation) of each attribute over
# the train split of DigitsDataModule(image_size=16, seed=0), i.e.
#     digit_attributes(DigitsDataModule().split("train").images) -> torch.quantile(v, [1/3, 2/3])
# rounded to 4 decimals; tests/data/test_captions.py recomputes them so they cannot drift silently.
THRESHOLDS: dict[str, tuple[float, float]] = {
    "weight": (2.7469, 2.9804),
    "slant": (-0.0919, 0.0176),
    "size": (0.8005, 0.8620),
}
#: Words for the low and high tertile of each attribute (the middle tertile has none).
ATTRIBUTE_WORDS: dict[str, tuple[str, str]] = {
    "weight": ("thin", "thick"),
    "slant": ("slanted left", "slanted right"),
    "size": ("small", "large"),
}

# {word}: the digit's name ("seven"); {num}: its numeral ("7"); {weight}, {slant}, {size}: attribute
# words, possibly empty (`caption_for` then drops the dangling comma and the double space). Each
# split's templates open with their own words, so no caption of one split can be a caption of another.
LABEL_TEMPLATES: dict[str, list[str]] = {
    # Training has the widest wording, so a text tower learns that the digit decides and the filler
    # words do not; none of the test templates' filler words (picture, image, photo, number, numeral,
    # showing) occurs here.
    "train": [
        "a handwritten {word}",
        "the digit {num}",
        "a scanned {word}",
        "{word}",
        "{num}",
        "a drawing of the digit {word}",
        "an ink sketch of a {num}",
        "the character {num} in ink",
        "a {word} written by hand",
        "the symbol {word}",
        "a low resolution scan of a {word}",
        "only the {word}",
    ],
    "val": ["a written {word}", "digit {num}", "a pen drawing of a {word}"],
    "test": ["a picture of the number {word}", "an image showing a {num}", "a photo of the numeral {num}"],
}
ATTRIBUTE_TEMPLATES: dict[str, list[str]] = {
    "train": [
        "a handwritten {weight} {word}",
        "the {size}, {weight} digit {num}",
        "a scanned {word} {slant}",
        "a {weight} {word} drawn by hand",
        "a {size} {num}, {slant}",
        "a sketch of a {size}, {weight} {word} {slant}",
    ],
    "val": ["a pen drawing of a {size}, {weight} {word}", "a written {word} {slant}", "a {weight} written {num}"],
    "test": [
        "a picture of a {size}, {weight} {word}",
        "an image showing a {num} {slant}",
        "a photo of a {weight} {word} {slant}",
    ],
}
#: Every template of each split: label-only ones first, then those with attribute words.
TEMPLATES: dict[str, list[str]] = {s: LABEL_TEMPLATES[s] + ATTRIBUTE_TEMPLATES[s] for s in SPLITS}

_EMPTY = "\0"  # stands for an empty attribute word while the commas around it are removed


def ink_levels(images: Tensor) -> Tensor:
    """Ink in [0, 1] of (N, 1, H, W) images: uint8 as x / 255; float images are taken in [-1, 1]
    (the batch contract, e.g. a model's samples) as (x + 1) / 2."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return ((images.float() + 1) / 2).clamp(0, 1)


def digit_attributes(images: Tensor) -> dict[str, Tensor]:
    """Stroke weight, slant and size of each digit in (N, 1, H, W) images (uint8, or float in [-1, 1]).

    With ink p(y, x) = `ink_levels` (row y grows downwards, zero outside the canvas) and mass m = Σ p:

    * ``weight`` = 2 Σ p / Σ |∇p| · 16 / H: stroke width as twice the ink area over its perimeter
      (a stroke of length L ≫ width k has area kL and perimeter ≈ 2L), the perimeter being the total
      variation Σ |p(y, x+1) − p(y, x)| + |p(y+1, x) − p(y, x)|; in pixels of a 16×16 canvas.
    * ``slant`` = −μ11 / μ02 with μ11 = Σ p (x − x̄)(y − ȳ) / m and μ02 = Σ p (y − ȳ)² / m: the
      shear of the ink distribution, Δx per row upwards; positive when the top leans right.
    * ``size`` = Σ_y max_x p(y, x) / H: height of the ink's bounding box as a share of the canvas,
      each row counted by its strongest ink (so a faint edge row counts in part; the digits are
      size-normalised, and a hard threshold leaves most of them at full height).

    Each is an (N,) float tensor; an image without ink has weight 0, slant 0 and size 0.
    """
    p = ink_levels(images)[:, 0]  # (N, H, W)
    _, height, width = p.shape
    padded = F.pad(p, (1, 1, 1, 1))  # (N, H+2, W+2): the canvas edge is an ink edge
    tv = padded.diff(dim=-1).abs().sum((-2, -1)) + padded.diff(dim=-2).abs().sum((-2, -1))  # (N,)
    mass = p.sum((-2, -1))  # (N,)
    weight = 2 * mass / tv.clamp_min(1e-8) * (16 / height)
    ys = torch.arange(height, dtype=p.dtype)[:, None]  # (H, 1)
    xs = torch.arange(width, dtype=p.dtype)[None, :]  # (1, W)
    m = mass.clamp_min(1e-8)  # (N,)
    y_bar = (p * ys).sum((-2, -1)) / m  # (N,)
    x_bar = (p * xs).sum((-2, -1)) / m
    dy, dx = ys - y_bar[:, None, None], xs - x_bar[:, None, None]  # (N, H, 1), (N, 1, W)
    mu11 = (p * dx * dy).sum((-2, -1)) / m
    mu02 = (p * dy**2).sum((-2, -1)) / m
    slant = -mu11 / mu02.clamp_min(1e-8)
    size = p.amax(-1).sum(-1) / height
    return {"weight": weight, "slant": slant, "size": size}


def attribute_words(attrs: dict[str, Tensor]) -> list[dict[str, str]]:
    """Per image, the word of each attribute: the low word below the lower tertile threshold, the
    high word above the upper one, "" in between (`THRESHOLDS`, `ATTRIBUTE_WORDS`)."""
    n = len(next(iter(attrs.values())))
    out: list[dict[str, str]] = [{} for _ in range(n)]
    for name, (low_word, high_word) in ATTRIBUTE_WORDS.items():
        lo, hi = THRESHOLDS[name]
        for i, v in enumerate(attrs[name].tolist()):
            out[i][name] = low_word if v < lo else high_word if v > hi else ""
    return out


def label_templates(split: str) -> list[str]:
    """The split's templates that name only the digit ({word} or {num}): zero-shot classification
    prompts (use ``label_templates("test")``)."""
    return list(LABEL_TEMPLATES[_check_split(split)])


def caption_for(label: int, words: dict[str, str], template: str) -> str:
    """``template`` filled with digit ``label`` and attribute ``words`` (missing or "" words are
    dropped with their dangling comma; "a" becomes "an" before "eight" / "8")."""
    fill = {k: words.get(k) or _EMPTY for k in ATTRIBUTE_WORDS}
    text = template.format(word=DIGIT_WORDS[label], num=str(label), **fill)
    text = re.sub(rf"{_EMPTY}\s*,\s*|\s*,\s*{_EMPTY}", " ", text).replace(_EMPTY, " ")
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\ba (?=(eight|8)\b)", "an ", text)


def make_captions(images: Tensor, labels: Tensor, split: str, seed: int) -> list[str]:
    """One caption per image: a template of ``split`` drawn uniformly by a generator seeded by
    (seed, split), filled with the label and the words of the image's measured attributes."""
    templates = TEMPLATES[_check_split(split)]
    gen = torch.Generator().manual_seed(seed * len(SPLITS) + SPLITS.index(split))
    choice = torch.randint(len(templates), (len(labels),), generator=gen).tolist()
    words = attribute_words(digit_attributes(images))
    return [caption_for(int(y), w, templates[c]) for y, w, c in zip(labels.tolist(), words, choice, strict=True)]


_DIGIT_PATTERN = re.compile(r"\b(" + "|".join(DIGIT_WORDS) + r"|[0-9])\b")


def caption_digit(text: str) -> int | None:
    """The digit a caption names, as a word ("seven") or a numeral ("7"); None when it names none
    or more than one."""
    found = {int(m) if m.isdigit() else DIGIT_WORDS.index(m) for m in _DIGIT_PATTERN.findall(text.lower())}
    return found.pop() if len(found) == 1 else None


def caption_words(text: str) -> dict[str, str]:
    """The attribute words a caption has: {"weight": "thin" | "thick" | "", "slant": …, "size": …}
    (a "" value: none, or both words of that attribute)."""
    text = text.lower()
    out = {}
    for name, pair in ATTRIBUTE_WORDS.items():
        present = [w for w in pair if re.search(rf"\b{w}\b", text)]
        out[name] = present[0] if len(present) == 1 else ""
    return out


def write_captions(path: str | Path, keys: list[str], texts: list[str]) -> Path:
    """Write a caption file (parquet with string columns ``key`` and ``text``, one row per caption;
    missing parent folders are created) and return its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(keys) != len(texts):
        raise ValueError(f"got {len(keys)} keys and {len(texts)} texts; pass one text per key.")
    table = pa.table({"key": pa.array(map(str, keys), pa.string()), "text": pa.array(texts, pa.string())})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def read_captions(path: str | Path) -> dict[str, str]:
    """The captions of a file written by `write_captions`, as {key: text} (data only, no code run)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if not {"key", "text"} <= set(table.column_names):
        raise ValueError(
            f"{path} has columns {table.column_names}, expected string columns 'key' and 'text'; "
            "write the file with lit_genvision.data.captions.write_captions."
        )
    keys, texts = table.column("key").to_pylist(), table.column("text").to_pylist()
    return {str(k): "" if t is None else str(t) for k, t in zip(keys, texts, strict=True)}


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}.")
    return split
