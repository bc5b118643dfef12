"""Synthetic inpainting masks: shape and values, seeding, never empty or full, the geometry of each
kind, kind probabilities, the old kinds' draws unchanged, and argument errors."""

from __future__ import annotations

import hashlib

import pytest
import torch
from torch import Tensor

from lit_genvision.methods.masks import (
    DEFAULT_MASK_KINDS,
    HALF_FRAC,
    LARGE_BOX_FRAC,
    MASK_KINDS,
    MaskGenerator,
    border_masks,
    box_masks,
    brush_masks,
    half_masks,
    large_box_masks,
)

DRAW = {
    "box": box_masks,
    "brush": brush_masks,
    "border": border_masks,
    "half": half_masks,
    "large_box": large_box_masks,
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_masks_are_binary_float32_n1hw(kind: str) -> None:
    m = DRAW[kind](7, 16, 24, _gen(0))
    assert m.shape == (7, 1, 16, 24)
    assert m.dtype == torch.float32
    assert set(m.unique().tolist()) <= {0.0, 1.0}


def test_generator_output_is_binary_float32_n1hw_on_device() -> None:
    m = MaskGenerator()(9, 16, 12, _gen(0), device="cpu")
    assert m.shape == (9, 1, 16, 12) and m.dtype == torch.float32 and m.device.type == "cpu"
    assert set(m.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("kind", [*MASK_KINDS, "mixed"])
def test_same_seed_same_masks_different_seed_different_masks(kind: str) -> None:
    draw = MaskGenerator() if kind == "mixed" else DRAW[kind]
    a, b, c = draw(32, 16, 16, _gen(1)), draw(32, 16, 16, _gen(1)), draw(32, 16, 16, _gen(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_masks_are_never_empty_nor_full(kind: str, size: int) -> None:
    area = DRAW[kind](200, size, size, _gen(3)).flatten(1).sum(1)
    assert (area > 0).all()
    assert (area < size * size).all()


def _bounding_box(m: Tensor) -> Tensor:
    """The filled bounding box of a (H, W) binary mask."""
    rows, cols = m.any(1).nonzero().squeeze(1), m.any(0).nonzero().squeeze(1)
    box = torch.zeros_like(m)
    box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = 1
    return box


def test_a_single_box_mask_equals_its_bounding_box() -> None:
    masks = box_masks(200, 16, 20, _gen(4), max_boxes=1)[:, 0]
    for m in masks:
        assert torch.equal(m, _bounding_box(m))


def test_box_sides_lie_in_the_requested_fractions() -> None:
    masks = box_masks(200, 32, 32, _gen(5), max_boxes=1, min_frac=0.25, max_frac=0.5)[:, 0]
    heights, widths = masks.any(2).sum(1), masks.any(1).sum(1)
    assert heights.min() >= 8 and heights.max() <= 16
    assert widths.min() >= 8 and widths.max() <= 16


def test_border_masks_are_bands_touching_an_edge_with_the_centre_known() -> None:
    h, w = 16, 20
    m = border_masks(200, h, w, _gen(6))[:, 0].bool()
    # A pixel is reached from an edge when every pixel between it and that edge is masked.
    from_top = m.int().cumprod(1).bool()
    from_bottom = m.flip(1).int().cumprod(1).flip(1).bool()
    from_left = m.int().cumprod(2).bool()
    from_right = m.flip(2).int().cumprod(2).flip(2).bool()
    assert torch.equal(m, from_top | from_bottom | from_left | from_right)
    assert not m[:, h // 2, w // 2].any()


@pytest.mark.parametrize("size", [16, 32])
def test_border_masks_keep_at_least_ten_percent_known(size: int) -> None:
    m = border_masks(200, size, size, _gen(7), min_frac=0.5, max_frac=1.0)
    known = 1 - m.flatten(1).mean(1)
    assert (known >= 0.1).all()


def test_brush_masks_cover_a_plausible_share() -> None:
    coverage = brush_masks(200, 32, 32, _gen(8)).mean().item()
    assert 0.02 < coverage < 0.6


def test_brush_masks_are_not_boxes() -> None:
    masks = brush_masks(200, 32, 32, _gen(9))[:, 0]
    not_box = [not torch.equal(m, _bounding_box(m)) for m in masks]
    assert sum(not_box) > 100


def test_probs_one_zero_zero_gives_only_box_masks() -> None:
    gen = MaskGenerator(probs=(1.0, 0.0, 0.0))
    assert (gen.draw_kinds(400, _gen(10)) == 0).all()
    g = _gen(11)
    gen.draw_kinds(64, g)  # the generator draws the kinds first, then the masks of each kind
    assert torch.equal(gen(64, 16, 16, _gen(11)), box_masks(64, 16, 16, g))


def test_probs_half_half_zero_draws_both_first_kinds_and_never_the_third() -> None:
    kinds = MaskGenerator(probs=(0.5, 0.5, 0.0)).draw_kinds(400, _gen(12))
    counts = torch.bincount(kinds, minlength=3)
    assert counts[0] > 150 and counts[1] > 150 and counts[2] == 0


def test_kinds_are_accepted_as_a_list_from_yaml() -> None:
    gen = MaskGenerator(kinds=["border"], probs=[2])  # type: ignore[arg-type]
    assert gen.kinds == ("border",) and gen.probs == (2.0,)
    g = _gen(13)
    gen.draw_kinds(5, g)
    assert torch.equal(gen(5, 16, 16, _gen(13)), border_masks(5, 16, 16, g))


def test_compositing_with_a_mask_keeps_known_pixels_exactly() -> None:
    m = MaskGenerator()(8, 16, 16, _gen(14))
    x_known, x_gen = torch.randn(8, 3, 16, 16, generator=_gen(15)), torch.randn(8, 3, 16, 16, generator=_gen(16))
    x_out = m * x_gen + (1 - m) * x_known
    known = (m == 0).expand_as(x_out)
    assert torch.equal(x_out[known], x_known[known])


def _digest(m: Tensor) -> str:
    return hashlib.sha256(m.to(torch.uint8).numpy().tobytes()).hexdigest()[:16]


# Computed from the code before the half and large_box kinds existed (commit e74d610): adding kinds must not
# change a single draw of the old ones, which trained checkpoints and resumed runs depend on.
OLD_DRAWS = [
    (lambda: MaskGenerator()(256, 16, 16, _gen(0)), "8488f303025476f7"),
    (
        lambda: MaskGenerator(kinds=("box", "brush", "border"), probs=(1, 2, 3))(256, 16, 20, _gen(1)),
        "8bbdb835e9c25f37",
    ),
    (lambda: box_masks(128, 16, 16, _gen(2)), "87a77ac806650318"),
    (lambda: brush_masks(128, 16, 16, _gen(3)), "14a74d8dcd957f84"),
    (lambda: border_masks(128, 16, 16, _gen(4)), "6e2e5d051908445f"),
]


@pytest.mark.parametrize(("draw", "digest"), OLD_DRAWS, ids=["mixed", "mixed_probs", "box", "brush", "border"])
def test_old_kinds_draw_bitwise_the_masks_they_drew_before(draw, digest: str) -> None:
    assert _digest(draw()) == digest


def test_the_default_generator_draws_only_the_old_kinds() -> None:
    assert MaskGenerator().kinds == DEFAULT_MASK_KINDS == ("box", "brush", "border")
    assert set(DEFAULT_MASK_KINDS) < set(MASK_KINDS)


@pytest.mark.parametrize(("h", "w"), [(16, 16), (16, 24), (2, 2)])
def test_each_half_mask_is_exactly_one_sides_half_plane(h: int, w: int) -> None:
    masks = half_masks(400, h, w, _gen(20))[:, 0].bool()
    ys, xs = torch.arange(h)[:, None].expand(h, w), torch.arange(w)[None, :].expand(h, w)
    sides = []
    for m in masks:
        rows, cols = int(m.any(1).sum()), int(m.any(0).sum())
        planes = {
            "top": ys < rows,
            "bottom": ys >= h - rows,
            "left": xs < cols,
            "right": xs >= w - cols,
        }
        matches = [side for side, plane in planes.items() if torch.equal(m, plane)]
        assert matches, "a half mask is a band of whole rows or columns at one side"
        sides.append(matches[0])
    assert set(sides) == {"top", "bottom", "left", "right"}


def test_half_masks_cut_at_35_to_65_percent_of_the_side_with_several_sizes() -> None:
    h, w = 16, 20
    masks = half_masks(400, h, w, _gen(21))[:, 0].bool()
    rows, cols = masks.any(2).sum(1), masks.any(1).sum(1)
    horizontal = cols == w  # a top or bottom part: whole rows
    depth = torch.where(horizontal, rows, cols)
    side = torch.where(horizontal, h, w)
    assert (depth >= (HALF_FRAC[0] * side).round()).all() and (depth <= (HALF_FRAC[1] * side).round()).all()
    assert len(depth[horizontal].unique()) >= 4 and len(depth[~horizontal].unique()) >= 4
    assert (depth[horizontal] == h // 2).any()  # the exact half is among the cuts
    assert abs(masks.float().mean().item() - 0.5) < 0.03


def test_large_boxes_are_one_rectangle_of_40_to_75_percent_of_each_side() -> None:
    h, w = 16, 32
    masks = large_box_masks(300, h, w, _gen(22))[:, 0]
    for m in masks:
        assert torch.equal(m, _bounding_box(m))
    heights, widths = masks.any(2).sum(1), masks.any(1).sum(1)
    assert heights.min() >= round(LARGE_BOX_FRAC[0] * h) and heights.max() <= round(LARGE_BOX_FRAC[1] * h)
    assert widths.min() >= round(LARGE_BOX_FRAC[0] * w) and widths.max() <= round(LARGE_BOX_FRAC[1] * w)


def test_a_generator_with_the_new_kinds_draws_each_kind_after_the_kinds() -> None:
    gen = MaskGenerator(kinds=["box", "half", "large_box"], probs=[1, 2, 1])  # type: ignore[arg-type]
    g = _gen(23)
    kinds = gen.draw_kinds(64, g)
    expected = torch.zeros(64, 1, 16, 16)
    for i, name in enumerate(gen.kinds):
        idx = (kinds == i).nonzero().squeeze(1)
        expected[idx] = DRAW[name](len(idx), 16, 16, g)
    assert torch.equal(gen(64, 16, 16, _gen(23)), expected)
    assert torch.bincount(kinds, minlength=3).tolist()[1] > 20


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kinds": ("box", "blob")}, "unknown mask kind"),
        ({"kinds": ()}, "at least one mask kind"),
        ({"probs": (0.5, 0.5)}, "one probability per kind"),
        ({"probs": (1.0, -0.5, 0.5)}, "non-negative"),
        ({"probs": (0.0, 0.0, 0.0)}, "sum to > 0"),
    ],
)
def test_mask_generator_rejects_bad_args(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MaskGenerator(**kwargs)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: box_masks(2, 16, 16, max_boxes=0), "max_boxes must be >= 1"),
        (lambda: box_masks(2, 16, 16, min_frac=0.6, max_frac=0.5), "0 < min <= max <= 1"),
        (lambda: brush_masks(2, 16, 16, max_vertices=1), "max_vertices must be >= 2"),
        (lambda: brush_masks(2, 16, 16, width_frac=(0.0, 0.1)), "0 < min <= max <= 1"),
        (lambda: border_masks(2, 1, 16), "height and width must be >= 2"),
        (lambda: border_masks(-1, 16, 16), "num must be >= 0"),
        (lambda: half_masks(2, 16, 16, min_frac=0.7, max_frac=0.6), "0 < min <= max <= 1"),
        (lambda: half_masks(2, 16, 1), "height and width must be >= 2"),
    ],
)
def test_mask_functions_reject_bad_args(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
