"""Does a generated scene obey its layout? Two measures for layout- and map-conditioned generators.

- **Box accuracy**: each requested box is cut out of the image, padded to a square (centred, no
  margin: a bundled digit's ink spans its 8×8 frame, and a margin costs the classifier 13 points of
  accuracy on real scenes), resized to the digits classifier's input, and classified; the share
  of boxes whose class is the requested digit. Labels follow the scenes' convention (class d + 1
  is digit d, 0 the background, −1 padding).
- **Ink outside boxes**: of all the ink in the image (pixels brighter than ``INK_THRESHOLD`` of 255,
  the threshold the scenes' boxes and maps are drawn with), the share that falls outside every
  requested box. The scenes' boxes are ink boxes, so a real scene has none outside.

Both are computed on real test scenes too (the ceiling a generator is held against).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_genvision.data.scenes import INK_THRESHOLD
from lit_genvision.nn.conditions import layout_to_map

#: Margin added around a tight ink box on each side, as a share of the box's longer side.
MARGIN = 0.0


def box_crops(images: Tensor, boxes: Tensor, labels: Tensor, size: int = 16) -> tuple[Tensor, Tensor]:
    """Square crops (N_boxes, C, size, size) of every real box (label ≥ 1) and their digits (N_boxes,).

    images (B, C, S, S) in [-1, 1]; boxes (B, M, 4) fractions [x0, y0, x1, y1]; labels (B, M).
    """
    side = images.shape[-1]
    crops, digits = [], []
    for img, bxs, lbs in zip(images, boxes, labels, strict=True):
        for (x0, y0, x1, y1), k in zip(bxs.tolist(), lbs.tolist(), strict=True):
            if k < 1:
                continue
            c0, r0, c1, r1 = round(x0 * side), round(y0 * side), round(x1 * side), round(y1 * side)
            h, w = max(r1 - r0, 1), max(c1 - c0, 1)
            square = max(h, w) + 2 * round(MARGIN * max(h, w))
            canvas = torch.full((img.shape[0], square, square), -1.0, dtype=img.dtype)  # background ink
            top, left = (square - h) // 2, (square - w) // 2
            canvas[:, top : top + h, left : left + w] = img[:, r0 : r0 + h, c0 : c0 + w]
            crops.append(F.interpolate(canvas[None], size=(size, size), mode="bilinear", antialias=True)[0])
            digits.append(k - 1)
    if not crops:
        return torch.empty(0, images.shape[1], size, size), torch.empty(0, dtype=torch.long)
    return torch.stack(crops), torch.tensor(digits, dtype=torch.long)


def box_accuracy(images: Tensor, boxes: Tensor, labels: Tensor, classify) -> float:
    """The share of requested boxes whose crop ``classify`` (images → class probabilities, as the
    digits extractor returns them second) calls the requested digit."""
    crops, digits = box_crops(images, boxes, labels)
    if not len(crops):
        raise ValueError("the layouts hold no box (every label is background or padding); pass scenes with digits.")
    probs = classify(crops)[1]
    return (probs.argmax(1) == digits).double().mean().item()


def ink_outside_boxes(images: Tensor, boxes: Tensor, labels: Tensor) -> float:
    """Σ ink outside every box / Σ ink, over all images (ink: pixels above ``INK_THRESHOLD``)."""
    ink = ((images[:, 0] + 1) * 127.5) > INK_THRESHOLD  # (B, S, S)
    inside = layout_to_map(boxes, labels.clamp(max=1), images.shape[-1], null_class=0) > 0  # any box
    total = ink.sum().item()
    return (ink & ~inside).sum().item() / max(total, 1)
