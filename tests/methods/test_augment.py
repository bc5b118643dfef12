"""Discriminator augmentation: DiffAugment and AdaptiveAugment (ADA) against their definitions, the
exact affine helper, differentiability, determinism, and ADA's p heuristic."""

from __future__ import annotations

import pytest
import torch

from lit_genvision.methods.augment import AdaptiveAugment, DiffAugment, apply_affine

FILL = -1.0
GEOMETRIC_AND_COLOUR = ("scale", "rotate", "aniso", "frac_translate", "brightness", "contrast")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(seed: int = 0, shape: tuple[int, ...] = (8, 1, 16, 16)) -> torch.Tensor:
    return torch.rand(shape, generator=gen(seed)) * 2 - 1


def framed(border: int = 2, shape: tuple[int, ...] = (8, 1, 16, 16)) -> torch.Tensor:
    """Random content in [0, 1) inside a ``border``-pixel frame of fill, so a shift of at most ``border``
    pixels equals torch.roll."""
    x = torch.full(shape, FILL)
    x[..., border:-border, border:-border] = torch.rand(shape, generator=gen(1))[..., border:-border, border:-border]
    return x


def only_translate() -> AdaptiveAugment:
    return AdaptiveAugment(p_init=1.0, **dict.fromkeys(GEOMETRIC_AND_COLOUR, False))


def test_ada_with_p_zero_is_the_identity():
    x = images()
    assert torch.equal(AdaptiveAugment(p_init=0.0)(x, gen()), x)


def test_ada_integer_translation_moves_content_by_whole_pixels():
    x = framed(border=2)
    out = only_translate()(x, gen(3))
    shifts = []
    for b in range(x.shape[0]):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(out[b], torch.roll(x[b], shifts=(dy, dx), dims=(1, 2)))
        ]
        assert len(matches) == 1, f"sample {b} is not a whole-pixel shift of its input"
        shifts.append(matches[0])
    assert any(s != (0, 0) for s in shifts)


def test_apply_affine_with_identity_theta_returns_the_input():
    x = images(shape=(2, 3, 7, 10))
    theta = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(2, 2, 3)
    torch.testing.assert_close(apply_affine(x, theta, FILL), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("side", [7, 8])
def test_apply_affine_with_quarter_turn_theta_equals_rot90_on_odd_and_even_sides(side: int):
    x = images(shape=(2, 1, side, side))
    theta = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]).expand(2, 2, 3)
    torch.testing.assert_close(apply_affine(x, theta, FILL), torch.rot90(x, 1, (2, 3)), atol=1e-4, rtol=0)


@pytest.mark.parametrize("augment", [DiffAugment(), AdaptiveAugment(p_init=1.0)], ids=["diff", "ada"])
def test_gradients_reach_the_input_through_the_augmentation(augment):
    x = images().requires_grad_(True)
    augment(x, gen()).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_update_with_positive_logits_raises_p_by_batch_times_interval_over_speed():
    aug = AdaptiveAugment(p_init=0.0, interval=4, speed_kimg=0.5)
    for _ in range(3):
        aug.update(torch.ones(8))
    assert aug.probability == 0.0 and aug.rt is None  # no adjustment before ``interval`` calls
    aug.update(torch.ones(8))
    assert aug.rt == 1.0
    assert aug.probability == pytest.approx(8 * 4 / (0.5 * 1000), rel=1e-6)  # 0.064
    for _ in range(4):
        aug.update(torch.ones(8))
    assert aug.probability == pytest.approx(2 * 0.064, rel=1e-6)


def test_update_with_negative_logits_lowers_p_and_clamps_at_zero():
    aug = AdaptiveAugment(p_init=0.1, interval=4, speed_kimg=0.5)
    for _ in range(4):
        aug.update(-torch.ones(8, 1))
    assert aug.rt == -1.0
    assert aug.probability == pytest.approx(0.1 - 0.064, rel=1e-6)
    for _ in range(4):
        aug.update(-torch.ones(8, 1))
    assert aug.probability == 0.0


def test_update_never_changes_a_fixed_p():
    aug = AdaptiveAugment(p_fixed=0.3, interval=1, speed_kimg=0.001)
    for sign in (1.0, -1.0, 1.0):
        aug.update(sign * torch.ones(8))
    assert aug.probability == pytest.approx(0.3) and float(aug.p) == pytest.approx(0.3)


def test_p_and_the_statistics_since_the_last_adjustment_are_in_the_state_dict_and_round_trip():
    source = AdaptiveAugment(p_init=0.25)
    assert set(source.state_dict()) == {"p", "stats"}
    target = AdaptiveAugment()
    target.load_state_dict(source.state_dict())
    assert float(target.p) == 0.25 and target.probability == 0.25


def test_diffaugment_translation_and_cutout_only_produce_input_values_or_fill():
    x = images()
    out = DiffAugment("translation,cutout")(x, gen())
    allowed = torch.cat([x.flatten(), torch.tensor([FILL])])
    assert torch.isin(out, allowed).all()
    assert (out == FILL).any()


def test_diffaugment_color_changes_every_per_image_mean():
    x = images()
    out = DiffAugment("color")(x, gen())
    assert (out.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3))).abs().min() > 1e-4


@pytest.mark.parametrize("make", [DiffAugment, lambda: AdaptiveAugment(p_init=0.5)], ids=["diff", "ada"])
def test_same_seed_gives_identical_output_and_different_seeds_differ(make):
    x, augment = images(), make()
    assert torch.equal(augment(x, gen(5)), augment(x, gen(5)))
    assert not torch.equal(augment(x, gen(5)), augment(x, gen(6)))


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: DiffAugment("color,flip"), "policy"),
        (lambda: DiffAugment(""), "policy"),
        (lambda: DiffAugment(translation_ratio=0.0), "translation_ratio"),
        (lambda: DiffAugment(cutout_ratio=1.5), "cutout_ratio"),
        (lambda: AdaptiveAugment(p_init=1.5), "p_init"),
        (lambda: AdaptiveAugment(p_fixed=-0.1), "p_fixed"),
        (lambda: AdaptiveAugment(target=1.0), "target"),
        (lambda: AdaptiveAugment(interval=0), "interval"),
        (lambda: AdaptiveAugment(speed_kimg=0.0), "speed_kimg"),
        (lambda: AdaptiveAugment(max_rotation_degrees=270.0), "max_rotation_degrees"),
        (lambda: AdaptiveAugment(fill=float("nan")), "fill"),
        (lambda: AdaptiveAugment(translate=False, **dict.fromkeys(GEOMETRIC_AND_COLOUR, False)), "translate"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(make, argument: str):
    with pytest.raises(ValueError, match=argument):
        make()
