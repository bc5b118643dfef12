"""Conditions given on the command line: prompts, layouts (JSON boxes), semantic maps (PNG), read and checked
against the model before anything is sampled.

- ``--prompt TEXT`` (repeatable) or ``--prompt-file FILE`` (one prompt per line): sample i gets prompt i mod P.
- ``--layout layout.json``: a list of ``{"box": [x0, y0, x1, y1], "label": L}``, the box in pixels of the
  generated image (x right, y down; x1, y1 exclusive) and L the class as the user knows it, looked up in the
  class list the checkpoint records (``callbacks.ClassNames``; for an older checkpoint, the run's data module
  rebuilt from its config): a class name or a class id, case aside. Digit scenes: the digit, ``3``, ``"3"`` or
  ``"three"``; Open Images: the DisplayName (``"Dog"``) or the LabelName (``"/m/0bt9lr"``). Only when the run
  names no classes is L the class index of the data module's ``box_labels``.
- ``--semantic-map map.png``: a single-channel PNG of the image's size whose pixel values are class indices as
  the data module numbers them (digit scenes: 0 background, d + 1 for digit d).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from lit_genvision.nn.conditions import SemanticMap

#: Classes an error message lists before it says how many there are in all.
_SHOWN = 12


@dataclass(frozen=True)
class ClassList:
    """The classes of a run as a user names them: class k is ``names[k]`` and, where the data has them,
    ``ids[k]`` (a digit, an Open Images MID; "" for none)."""

    names: tuple[str, ...]
    ids: tuple[str, ...] = ()

    def shown(self) -> str:
        """The classes for an error message: ``zero (0), one (1), …``, cut after a dozen."""
        ids = self.ids or ("",) * len(self.names)
        parts = [f"{n} ({i})" if i else n for n, i in zip(self.names, ids, strict=True)]
        more = f", … ({len(parts)} classes in all)" if len(parts) > _SHOWN else ""
        return ", ".join(parts[:_SHOWN]) + more

    def index(self, label: object, where: str) -> int:
        """The class index of ``label``: a class name (any case) or a class id, given as a string or a number."""
        key = str(label).strip() if isinstance(label, (str, int)) and not isinstance(label, bool) else None
        if key:
            for k, name in enumerate(self.names):
                if key.casefold() == name.casefold() or (self.ids and key == self.ids[k]):
                    return k
        raise ValueError(f"{where} names class {label!r}, which this model does not know; name one of {self.shown()}.")


def _reads(model, key: str) -> bool:
    return key in model.conditioning.batch_keys


def _refuse(model, flag: str, key: str, config: str) -> None:
    if not _reads(model, key):
        raise ValueError(
            f"{flag} needs a model conditioned on {key}, and this checkpoint's {type(model).__name__} reads "
            f"{', '.join(model.conditioning.batch_keys) or 'no condition'}; train one with {config}."
        )


def read_prompt_file(path: str | Path) -> list[str]:
    """The prompts of ``--prompt-file``, one per non-empty line."""
    try:
        prompts = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise ValueError(f"--prompt-file {path} does not exist; pass a text file with one prompt per line.") from None
    if not prompts:
        raise ValueError(f"--prompt-file {path} has no prompt; write one prompt per line.")
    return prompts


def given_prompts(prompt: list[str] | None, prompt_file: str | Path | None) -> list[str] | None:
    """The prompts of ``--prompt`` (repeated) or ``--prompt-file``; None when neither is given."""
    if prompt and prompt_file:
        raise ValueError("--prompt and --prompt-file both give the prompts; pass one of them.")
    return read_prompt_file(prompt_file) if prompt_file else (list(prompt) if prompt else None)


def check_text_model(model, flag: str) -> None:
    """Refuse prompts for a model that reads no text, in one sentence naming ``flag``."""
    if not _reads(model, "text"):
        raise ValueError(
            f"{flag} needs a text-conditioned model, and this {model.family} model reads "
            f"{', '.join(model.conditioning.batch_keys) or 'no condition'}; omit {flag}."
        )


def read_layout(
    path: str | Path, image_size: int, classes: ClassList | None = None, num_classes: int | None = None
) -> tuple[Tensor, Tensor]:
    """A layout JSON → boxes (M, 4) as fractions of the side and class indices (M,) long.

    Each label is looked up in ``classes`` (a name or an id); without a class list it must be a class index
    below ``num_classes`` (when given)."""
    try:
        entries = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"--layout {path} does not exist; pass a JSON file of boxes.") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"--layout {path} is not valid JSON ({err.msg}, line {err.lineno}); fix the file.") from None
    ok = isinstance(entries, list) and entries and all(isinstance(e, dict) for e in entries)
    if not ok:
        raise ValueError(f'--layout {path} must hold a non-empty list of {{"box": [x0, y0, x1, y1], "label": L}}.')
    boxes, labels = [], []
    for i, entry in enumerate(entries):
        box, label = entry.get("box"), entry.get("label")
        valid = isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)
        named = isinstance(label, (int, str)) and not isinstance(label, bool)
        if not valid or not named:
            raise ValueError(
                f'--layout entry {i} must be {{"box": [x0, y0, x1, y1], "label": L}} with four pixel '
                f"coordinates and the class L by name or number, got {entry!r}."
            )
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (0 <= x0 < x1 <= image_size and 0 <= y0 < y1 <= image_size):
            raise ValueError(
                f"--layout entry {i} has box {box}, outside the {image_size}×{image_size} image or empty; give "
                f"0 <= x0 < x1 <= {image_size} and 0 <= y0 < y1 <= {image_size} in pixels."
            )
        boxes.append([x0 / image_size, y0 / image_size, x1 / image_size, y1 / image_size])
        labels.append(_class_index(label, i, classes, num_classes))
    return torch.tensor(boxes, dtype=torch.float32), torch.tensor(labels, dtype=torch.long)


def _class_index(label: int | str, i: int, classes: ClassList | None, num_classes: int | None) -> int:
    """The class index of layout entry ``i``'s label: through the class list, else the label as an index."""
    if classes is not None:
        return classes.index(label, f"--layout entry {i}")
    limit = f"0 … {num_classes - 1}" if num_classes else "0 or more"
    if not isinstance(label, int) or label < 0 or (num_classes and label >= num_classes):
        raise ValueError(
            f"--layout entry {i} has label {label!r}, and this checkpoint records no class names; give the class "
            f"index {limit} of its data module."
        )
    return label


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


def model_classes(names: list[str] | None, ids: list[str] | None, model) -> ClassList | None:
    """The run's class list for ``model`` when it names exactly the model's K map classes, else None."""
    if not names or len(names) != map_classes(model):
        return None
    return ClassList(tuple(names), tuple(ids) if ids and len(ids) == len(names) else ())


def condition_from_arguments(
    model,
    num: int,
    prompts: list[str] | None,
    layout: str | None,
    semantic_map: str | None,
    classes: ClassList | None = None,
    prompt_flag: str = "--prompt",
) -> dict[str, Any] | None:
    """The condition of every sample of the run from the prompts (given by ``prompt_flag``), ``--layout`` (its
    labels looked up in ``classes``) and ``--semantic-map`` (None when none is given), checked against what the
    model reads."""
    cond: dict[str, Any] = {}
    if prompts:
        _refuse(model, prompt_flag, "text", "a text config such as configs/diffusion/digits_text.yaml")
        cond["text"] = [prompts[i % len(prompts)] for i in range(num)]
    if layout is not None:
        _refuse(model, "--layout", "box_labels", "a layout config such as configs/diffusion/digits_layout.yaml")
        boxes, labels = read_layout(layout, model.image_shape[-2], classes, map_classes(model))
        cond["boxes"], cond["box_labels"] = boxes.expand(num, -1, -1), labels.expand(num, -1)
    if semantic_map is not None:
        _refuse(model, "--semantic-map", "semantic_map", "a map config such as configs/diffusion/digits_semantic.yaml")
        value = read_semantic_map(semantic_map, model.image_shape[-2])
        limit = map_classes(model) - 1
        if int(value.max()) > limit:
            raise ValueError(
                f"--semantic-map values must be class indices 0 … {limit} for this model, got {int(value.max())}."
            )
        cond["semantic_map"] = value.expand(num, -1, -1)
    return cond or None
