"""Conditions given on the command line: prompts, layouts (JSON boxes), semantic maps (PNG), and the
inpainting arrays, read and checked against the model before anything is sampled.

- ``--prompt TEXT`` (repeatable): sample i gets prompt i mod P.
- ``--layout layout.json``: a list of ``{"box": [x0, y0, x1, y1], "label": k}``, the box in pixels of
  the generated image (x right, y down; x1, y1 exclusive) and k the class index as the data module's
  ``box_labels`` number them (digit scenes: digit d is class d + 1, 0 is the background).
- ``--semantic-map map.png``: a single-channel PNG of the image's size whose pixel values are class
  indices (digit scenes: 0 background, d + 1 for digit d).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from lit_genvision.nn.conditions import SemanticMap


def _reads(model, key: str) -> bool:
    return key in model.conditioning.batch_keys


def _refuse(model, flag: str, key: str, config: str) -> None:
    if not _reads(model, key):
        raise ValueError(
            f"{flag} needs a model conditioned on {key}, and this checkpoint's {type(model).__name__} reads "
            f"{', '.join(model.conditioning.batch_keys) or 'no condition'}; train one with {config}."
        )


def read_layout(path: str | Path, image_size: int) -> tuple[Tensor, Tensor]:
    """A layout JSON → boxes (M, 4) as fractions of the side and labels (M,) long."""
    try:
        entries = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"--layout {path} does not exist; pass a JSON file of boxes.") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"--layout {path} is not valid JSON ({err.msg}, line {err.lineno}); fix the file.") from None
    ok = isinstance(entries, list) and entries and all(isinstance(e, dict) for e in entries)
    if not ok:
        raise ValueError(f'--layout {path} must hold a non-empty list of {{"box": [x0, y0, x1, y1], "label": k}}.')
    boxes, labels = [], []
    for i, entry in enumerate(entries):
        box, label = entry.get("box"), entry.get("label")
        valid = isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)
        if not valid or not isinstance(label, int) or label < 0:
            raise ValueError(
                f'--layout entry {i} must be {{"box": [x0, y0, x1, y1], "label": k}} with four pixel '
                f"coordinates and a class index k >= 0, got {entry!r}."
            )
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (0 <= x0 < x1 <= image_size and 0 <= y0 < y1 <= image_size):
            raise ValueError(
                f"--layout entry {i} has box {box}, outside the {image_size}×{image_size} image or empty; give "
                f"0 <= x0 < x1 <= {image_size} and 0 <= y0 < y1 <= {image_size} in pixels."
            )
        boxes.append([x0 / image_size, y0 / image_size, x1 / image_size, y1 / image_size])
        labels.append(label)
    return torch.tensor(boxes, dtype=torch.float32), torch.tensor(labels, dtype=torch.long)


def read_semantic_map(path: str | Path, size: int) -> Tensor:
    """A single-channel PNG of class indices → (size, size) long."""
    try:
        image = Image.open(path)
    except FileNotFoundError:
        raise ValueError(f"--semantic-map {path} does not exist; pass a PNG of class indices.") from None
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(
            f"--semantic-map {path} has {array.shape[-1]} channels; save it as a single-channel (L or P mode) PNG "
            "whose pixel values are class indices."
        )
    if array.shape != (size, size):
        raise ValueError(f"--semantic-map {path} is {array.shape[1]}×{array.shape[0]}; the model draws {size}×{size}.")
    return torch.from_numpy(array.astype(np.int64))


def map_classes(model) -> int:
    """K, the classes of the model's semantic map or layout condition (background included)."""
    return next(c.classes for c in model.conditions if isinstance(c, SemanticMap))


def condition_from_arguments(model, num: int, prompts: list[str] | None, layout: str | None, semantic_map: str | None):
    """The condition of every sample of the run from ``--prompt``, ``--layout`` and ``--semantic-map``
    (None when none is given), checked against what the model reads."""
    cond: dict[str, Any] = {}
    if prompts:
        _refuse(model, "--prompt", "text", "a text config such as configs/diffusion/digits_text.yaml")
        cond["text"] = [prompts[i % len(prompts)] for i in range(num)]
    if layout is not None:
        _refuse(model, "--layout", "box_labels", "a layout config such as configs/diffusion/digits_layout.yaml")
        limit = map_classes(model) - 1
        boxes, labels = read_layout(layout, model.image_shape[-1])
        if int(labels.max()) > limit:
            raise ValueError(
                f"--layout labels must be class indices 0 … {limit} for this model, got {int(labels.max())}."
            )
        cond["boxes"], cond["box_labels"] = boxes.expand(num, -1, -1), labels.expand(num, -1)
    if semantic_map is not None:
        _refuse(model, "--semantic-map", "semantic_map", "a map config such as configs/diffusion/digits_semantic.yaml")
        value = read_semantic_map(semantic_map, model.image_shape[-1])
        limit = map_classes(model) - 1
        if int(value.max()) > limit:
            raise ValueError(
                f"--semantic-map values must be class indices 0 … {limit} for this model, got {int(value.max())}."
            )
        cond["semantic_map"] = value.expand(num, -1, -1)
    return cond or None
