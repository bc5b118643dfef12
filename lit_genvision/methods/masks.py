"""Synthetic inpainting masks for training latent-diffusion inpainting (LDM; LaMa's "wide masks",
Suvorov et al. 2021, arXiv 2109.07161).

Convention: a mask m is float32 (N, 1, H, W) with m = 1 where pixels are to be GENERATED (unknown)
and m = 0 where they are known. At sampling time the known pixels are composited back,

    x_out = m·x_gen + (1 − m)·x_known,

so known pixels come out exactly as given. Five kinds, each for one use:

- ``box``: 1 … max_boxes axis-aligned rectangles, as when objects are removed from a photo;
- ``brush``: free-form scribbles, random-walk polylines drawn with a round brush (LaMa's
  "irregular" masks), as when a user paints over what to replace;
- ``border``: bands along one to four image sides, for outpainting (extending the canvas);
- ``half``: the upper, lower, left or right part of the image cut at 35–65% of the side, so the
  model learns to complete an object from the half it sees (LaMa's wide masks make the same
  point: a model trained on small holes under-uses the context of a large one);
- ``large_box``: one rectangle of 40–75% of each side, anywhere in the image.

``MaskGenerator()`` draws the first three (``DEFAULT_MASK_KINDS``), as it did before the last
two existed: a generator of those kinds gives the same masks from the same seed.

Every mask has at least one pixel to generate and at least one known pixel (a border mask keeps
at least 10% of the image known, centre pixel included). All random draws go through the given
``torch.Generator``, so one seed gives one set of masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

DEFAULT_MASK_KINDS = ("box", "brush", "border")
MASK_KINDS = (*DEFAULT_MASK_KINDS, "half", "large_box")

# A brush segment is this fraction of the shorter side long (LaMa draws strokes of a few segments).
_SEGMENT_FRAC = (0.1, 0.3)
# A brush radius of at least √0.5 px reaches the nearest pixel centre from any point of the image.
_MIN_RADIUS = 0.75
# A border mask keeps a known span of at least √0.1 of each side, so ≥ 10% of the image is known.
_KNOWN_SPAN = math.sqrt(0.1)
# A half mask's unknown part spans this fraction of the side it is cut across.
HALF_FRAC = (0.35, 0.65)
# A large box spans this fraction of each side.
LARGE_BOX_FRAC = (0.4, 0.75)
HALF_SIDES = ("top", "bottom", "left", "right")


def _check_size(num: int, height: int, width: int) -> None:
    if num < 0:
        raise ValueError(f"num must be >= 0, got {num}; pass the number of masks to draw.")
    if height < 2 or width < 2:
        raise ValueError(
            f"height and width must be >= 2, got {height}x{width}; a mask needs a known and an unknown pixel."
        )


def _check_fracs(name: str, lo: float, hi: float) -> None:
    if not 0 < lo <= hi <= 1:
        raise ValueError(
            f"{name} must satisfy 0 < min <= max <= 1, got ({lo}, {hi}); pass fractions of the image side."
        )


def _uniform(shape: tuple[int, ...], lo: float, hi: float, generator: torch.Generator | None) -> Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=generator)


def box_masks(
    num: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
    *,
    max_boxes: int = 3,
    min_frac: float = 0.1,
    max_frac: float = 0.5,
) -> Tensor:
    """Unions of 1 … ``max_boxes`` axis-aligned rectangles, (num, 1, H, W) float32 on the CPU.

    Each rectangle's height is round(u·H) and width round(v·W) with u, v ~ U[min_frac, max_frac],
    clamped to [1, side − 1] so that one box never fills the image; its top-left corner is uniform
    among the positions that keep it inside. If the union of boxes covers the whole image the mask
    is replaced by its first box."""
    _check_size(num, height, width)
    if max_boxes < 1:
        raise ValueError(f"max_boxes must be >= 1, got {max_boxes}; pass how many rectangles a mask may hold.")
    _check_fracs("box (min_frac, max_frac)", min_frac, max_frac)
    shape = (num, max_boxes)
    count = torch.randint(1, max_boxes + 1, (num,), generator=generator)
    h = (_uniform(shape, min_frac, max_frac, generator) * height).round().long().clamp(1, height - 1)
    w = (_uniform(shape, min_frac, max_frac, generator) * width).round().long().clamp(1, width - 1)
    y0 = (torch.rand(shape, generator=generator) * (height - h + 1)).long().clamp(max=height - h)
    x0 = (torch.rand(shape, generator=generator) * (width - w + 1)).long().clamp(max=width - w)
    active = torch.arange(max_boxes) < count[:, None]  # (N, B)
    ys, xs = torch.arange(height), torch.arange(width)
    in_y = (ys >= y0[..., None]) & (ys < (y0 + h)[..., None])  # (N, B, H)
    in_x = (xs >= x0[..., None]) & (xs < (x0 + w)[..., None])  # (N, B, W)
    boxes = in_y[..., :, None] & in_x[..., None, :] & active[..., None, None]  # (N, B, H, W)
    masks = boxes.any(dim=1)  # (N, H, W)
    full = masks.flatten(1).all(dim=1)
    masks[full] = boxes[full, 0]
    return masks[:, None].float()


def _segment_distance(px: Tensor, py: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Distance from pixel centres (px (W,), py (H,)) to segments a → b (N, 2) as (N, H, W):
    |p − a − t·(b − a)| with t = clamp(⟨p − a, b − a⟩ / |b − a|², 0, 1)."""
    dx, dy = (b - a).unbind(-1)  # (N,)
    qx = px[None, None, :] - a[:, 0, None, None]  # (N, 1, W)
    qy = py[None, :, None] - a[:, 1, None, None]  # (N, H, 1)
    length2 = (dx * dx + dy * dy).clamp_min(1e-12)[:, None, None]
    t = ((qx * dx[:, None, None] + qy * dy[:, None, None]) / length2).clamp(0, 1)  # (N, H, W)
    return torch.hypot(qx - t * dx[:, None, None], qy - t * dy[:, None, None])


def brush_masks(
    num: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
    *,
    max_strokes: int = 3,
    max_vertices: int = 6,
    width_frac: tuple[float, float] = (0.06, 0.15),
) -> Tensor:
    """Free-form brush strokes (LaMa's irregular masks), (num, 1, H, W) float32 on the CPU.

    Each mask has 1 … ``max_strokes`` strokes; a stroke is a random walk of 2 … ``max_vertices``
    vertices: a uniform start in the image, then segments at uniform angles in [0, 2π) with lengths
    in ``_SEGMENT_FRAC`` of the shorter side, each vertex clipped to the image. The brush is round,
    of thickness u·min(H, W) with u ~ U[width_frac] (radius at least ``_MIN_RADIUS`` px): a pixel
    is masked when the distance from its centre to a segment is ≤ the radius. A mask that came out
    full keeps its top-left pixel known; an empty one (which the minimum radius rules out) gets
    the pixel under its first vertex."""
    _check_size(num, height, width)
    if max_strokes < 1:
        raise ValueError(f"max_strokes must be >= 1, got {max_strokes}; pass how many strokes a mask may hold.")
    if max_vertices < 2:
        raise ValueError(f"max_vertices must be >= 2, got {max_vertices}; a stroke needs two vertices for a segment.")
    _check_fracs("brush width_frac", *width_frac)
    side = min(height, width)
    segs = max_vertices - 1
    n_strokes = torch.randint(1, max_strokes + 1, (num,), generator=generator)
    n_segments = torch.randint(1, segs + 1, (num, max_strokes), generator=generator)
    start = torch.rand((num, max_strokes, 2), generator=generator) * torch.tensor([width, height])
    angle = torch.rand((num, max_strokes, segs), generator=generator) * (2 * math.pi)
    length = _uniform((num, max_strokes, segs), *_SEGMENT_FRAC, generator) * side
    radius = (_uniform((num, max_strokes), *width_frac, generator) * side / 2).clamp_min(_MIN_RADIUS)

    step = torch.stack((angle.cos(), angle.sin()), dim=-1) * length[..., None]  # (N, S, V-1, 2)
    hi = torch.tensor([float(width), float(height)])
    vertices = [start]
    for j in range(segs):  # the walk is clipped at every step, so no cumsum
        vertices.append(torch.minimum((vertices[-1] + step[:, :, j]).clamp_min(0), hi))
    active = (torch.arange(max_strokes) < n_strokes[:, None])[..., None] & (
        torch.arange(segs) < n_segments[..., None]
    )  # (N, S, V-1)

    px, py = torch.arange(width) + 0.5, torch.arange(height) + 0.5  # pixel centres
    masks = torch.zeros(num, height, width, dtype=torch.bool)
    for s in range(max_strokes):  # ≤ S·(V−1) passes of (N, H, W) each: memory stays at one mask batch
        for j in range(segs):
            dist = _segment_distance(px, py, vertices[j][:, s], vertices[j + 1][:, s])
            masks |= (dist <= radius[:, s, None, None]) & active[:, s, j, None, None]

    flat = masks.flatten(1)
    empty = ~flat.any(dim=1)
    if empty.any():
        idx = empty.nonzero().squeeze(1)
        x = start[idx, 0, 0].long().clamp(max=width - 1)
        y = start[idx, 0, 1].long().clamp(max=height - 1)
        masks[idx, y, x] = True
    masks[flat.all(dim=1), 0, 0] = False
    return masks[:, None].float()


def border_masks(
    num: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
    *,
    min_frac: float = 0.15,
    max_frac: float = 0.5,
) -> Tensor:
    """Outpainting bands, (num, 1, H, W) float32 on the CPU.

    A uniform non-empty subset of the four sides (top, bottom, left, right) is masked, each with a
    band of round(u·side) pixels, u ~ U[min_frac, max_frac], at least 1. Bands are capped so the
    centre pixel stays known, and opposite bands are shrunk together so the known span keeps at
    least ⌈√0.1·side⌉ pixels of each axis: at least 10% of the image stays known."""
    _check_size(num, height, width)
    _check_fracs("border (min_frac, max_frac)", min_frac, max_frac)
    subset = torch.randint(1, 16, (num,), generator=generator)  # bits: top, bottom, left, right
    chosen = (subset[:, None] >> torch.arange(4)) & 1  # (N, 4)
    sides = torch.tensor([height, height, width, width])
    band = (_uniform((num, 4), min_frac, max_frac, generator) * sides).round().long().clamp_min(1) * chosen
    # Cap so the centre pixel (H // 2, W // 2) is known: rows [0, t) and [H − b, H) must miss it.
    cap = torch.tensor([height // 2, height - 1 - height // 2, width // 2, width - 1 - width // 2])
    band = torch.minimum(band, cap)
    for a, side in ((0, height), (2, width)):  # shrink opposite bands so the known span ≥ √0.1·side
        room = side - math.ceil(_KNOWN_SPAN * side)
        total = band[:, a] + band[:, a + 1]
        over = total > room
        scale = torch.where(over, room / total.clamp_min(1), torch.ones(num))
        band[:, a : a + 2] = (band[:, a : a + 2] * scale[:, None]).floor().long()
    none = band.sum(dim=1) == 0  # only on tiny images: fall back to one row at the top
    band[none, 0] = 1
    t, b, left, r = band.unbind(1)
    ys, xs = torch.arange(height), torch.arange(width)
    rows = (ys < t[:, None]) | (ys >= (height - b)[:, None])  # (N, H)
    cols = (xs < left[:, None]) | (xs >= (width - r)[:, None])  # (N, W)
    return (rows[:, :, None] | cols[:, None, :])[:, None].float()


def half_masks(
    num: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
    *,
    min_frac: float = HALF_FRAC[0],
    max_frac: float = HALF_FRAC[1],
) -> Tensor:
    """One side's part of the image unknown, (num, 1, H, W) float32 on the CPU.

    The side s is uniform over (top, bottom, left, right) (``HALF_SIDES``); the unknown part is the
    first (top, left) or last (bottom, right) k rows or columns, k = round(u·side), u ~ U[min_frac,
    max_frac], clamped to [1, side − 1]: a half-plane y < k, y ≥ H − k, x < k or x ≥ W − k."""
    _check_size(num, height, width)
    _check_fracs("half (min_frac, max_frac)", min_frac, max_frac)
    side = torch.randint(0, 4, (num,), generator=generator)  # index into HALF_SIDES
    length = torch.where(side < 2, height, width)
    frac = _uniform((num,), min_frac, max_frac, generator)
    k = torch.minimum((frac * length).round().long().clamp_min(1), length - 1)
    ys, xs = torch.arange(height)[None, :, None], torch.arange(width)[None, None, :]
    s, k = side[:, None, None], k[:, None, None]
    masks = (
        ((s == 0) & (ys < k)) | ((s == 1) & (ys >= height - k)) | ((s == 2) & (xs < k)) | ((s == 3) & (xs >= width - k))
    )
    return masks[:, None].float()


def large_box_masks(num: int, height: int, width: int, generator: torch.Generator | None = None) -> Tensor:
    """One rectangle of ``LARGE_BOX_FRAC`` (40–75%) of each side: ``box_masks`` with one box."""
    return box_masks(num, height, width, generator, max_boxes=1, min_frac=LARGE_BOX_FRAC[0], max_frac=LARGE_BOX_FRAC[1])


_DRAW = {
    "box": box_masks,
    "brush": brush_masks,
    "border": border_masks,
    "half": half_masks,
    "large_box": large_box_masks,
}


@dataclass(frozen=True)
class MaskGenerator:
    """Draws each mask's kind with probability ``probs`` (uniform by default), then the mask.

    ``MaskGenerator()(num, H, W, generator)`` returns (num, 1, H, W) float32 on ``device``; every
    draw is made on the CPU through ``generator`` so one seed gives the same masks on any device."""

    kinds: tuple[str, ...] = DEFAULT_MASK_KINDS
    """Mask kinds to draw from, a subset of ``MASK_KINDS`` (box, brush and border by default)."""
    probs: tuple[float, ...] | None = None
    """Relative probability of each kind (normalised to sum 1); None draws the kinds uniformly."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", tuple(self.kinds))
        if not self.kinds:
            raise ValueError(f"kinds must name at least one mask kind; pick from {MASK_KINDS}.")
        unknown = [k for k in self.kinds if k not in MASK_KINDS]
        if unknown:
            raise ValueError(f"unknown mask kind(s) {unknown}; expected each of kinds to be one of {MASK_KINDS}.")
        if self.probs is None:
            return
        object.__setattr__(self, "probs", tuple(float(p) for p in self.probs))
        if len(self.probs) != len(self.kinds):
            raise ValueError(
                f"probs has {len(self.probs)} entries but kinds has {len(self.kinds)}; give one probability per kind."
            )
        if any(not math.isfinite(p) or p < 0 for p in self.probs):
            raise ValueError(f"probs must be finite and non-negative, got {self.probs}; fix the negative entries.")
        if sum(self.probs) <= 0:
            raise ValueError(f"probs must sum to > 0, got {self.probs}; give at least one kind a positive probability.")

    def draw_kinds(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """Index into ``kinds`` of each mask's kind, (num,) int64 on the CPU."""
        probs = torch.ones(len(self.kinds)) if self.probs is None else torch.tensor(self.probs)
        if num == 0:
            return torch.zeros(0, dtype=torch.long)
        return torch.multinomial(probs, num, replacement=True, generator=generator)

    def __call__(
        self,
        num: int,
        height: int,
        width: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """(num, 1, H, W) float32 masks, 1 = generate, 0 = known: kinds first, then each kind's
        masks in the order of ``kinds``, all from ``generator``."""
        _check_size(num, height, width)
        kind = self.draw_kinds(num, generator)
        masks = torch.zeros(num, 1, height, width)
        for i, name in enumerate(self.kinds):
            idx = (kind == i).nonzero().squeeze(1)
            if len(idx):
                masks[idx] = _DRAW[name](len(idx), height, width, generator)
        return masks.to(device) if device is not None else masks
