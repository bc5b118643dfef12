"""Noise augmentation of a CLIP image embedding (``nn.ImageEmbedding(noise_levels=L)``, Stable unCLIP's
``noise_level``): the noised embedding against its formula, the levels training draws, the clean embedding in
evaluation, and the level reaching the backbone beside the embedding."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lit_genvision.nn import ImageEmbedding
from lit_genvision.nn.embeddings import sinusoidal_embedding


def condition(levels: int = 1000, **kwargs) -> ImageEmbedding:
    """The condition bound to a backbone that reads a 32-wide vector and 16-wide context tokens."""
    c = ImageEmbedding(8, tokens=2, noise_levels=levels, **kwargs)
    backbone = nn.Module()
    backbone.cond_dim, backbone.context_dim = 32, 16
    c.bind(backbone)
    return c


def unit(n: int, d: int = 8, seed: int = 0) -> torch.Tensor:
    e = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    return e / e.norm(dim=-1, keepdim=True)


def test_alpha_bar_is_the_cosine_schedule_with_level_zero_clean():
    c = condition(1000)
    levels = torch.tensor([0, 1, 250, 500, 999])
    s = 0.008
    expected = [math.cos((lv / 1000 + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
                for lv in levels.tolist()]  # fmt: skip
    torch.testing.assert_close(c.alpha_bar(levels), torch.tensor(expected), rtol=1e-6, atol=1e-7)
    assert c.alpha_bar(torch.tensor([0])).item() == 1.0


def test_augment_noises_the_sqrt_d_scaled_embedding_as_the_formula_says():
    c = condition(1000)
    e = unit(4)
    levels = torch.tensor([0, 100, 600, 999])
    out = c.augment(e, levels, torch.Generator().manual_seed(3))
    eps = torch.randn(4, 8, generator=torch.Generator().manual_seed(3))
    a = c.alpha_bar(levels)[:, None]
    expected = (a.sqrt() * math.sqrt(8) * e + (1 - a).sqrt() * eps) / math.sqrt(8)
    torch.testing.assert_close(out["image_embedding"], expected)
    assert torch.equal(out["image_embedding_level"], levels)
    torch.testing.assert_close(out["image_embedding"][0], e[0])  # level 0: the clean embedding


def test_training_draws_every_level_uniformly_and_evaluation_keeps_the_embedding_clean():
    c = condition(4)
    e = unit(4000)
    torch.manual_seed(0)
    drawn = c.train().derive({"image_embedding": e})
    counts = torch.bincount(drawn["image_embedding_level"], minlength=4).float()
    assert counts.sum() == 4000 and ((counts - 1000).abs() < 100).all()  # 4000 draws of 1/4: ±3.7 sd
    noised = drawn["image_embedding_level"] > 0
    assert not torch.allclose(drawn["image_embedding"][noised], e[noised])
    clean = c.eval().derive({"image_embedding": e})
    assert "image_embedding" not in clean  # the batch's own embedding, untouched
    assert torch.equal(clean["image_embedding_level"], torch.zeros(4000, dtype=torch.long))


def test_the_level_reaches_the_backbone_and_a_dropped_embedding_ignores_it():
    c = condition(1000)
    e = unit(2)
    like = torch.zeros(2, 1, 8, 8)
    at = {
        lv: c.encode({"image_embedding": e, "image_embedding_level": torch.full((2,), lv)}, 2, like) for lv in (0, 500)
    }
    assert not torch.allclose(at[0]["vector"], at[500]["vector"])
    assert not torch.allclose(at[0]["context"], at[500]["context"])
    torch.testing.assert_close(at[0]["vector"], c.encode({"image_embedding": e}, 2, like)["vector"])  # absent = 0
    dropped = {"image_embedding": torch.zeros(2, 8), "image_embedding_null": torch.ones(2, dtype=torch.bool)}
    nulls = [c.encode({**dropped, "image_embedding_level": torch.full((2,), lv)}, 2, like) for lv in (0, 500)]
    torch.testing.assert_close(nulls[0]["context"], nulls[1]["context"])
    assert nulls[0]["vector_null"].all()
    assert sinusoidal_embedding(torch.tensor([500]), 8).abs().sum() > 0


def test_bad_levels_are_refused_in_one_sentence():
    with pytest.raises(ValueError, match="noise_levels must be 0"):
        ImageEmbedding(8, noise_levels=-1)
    with pytest.raises(ValueError, match="one of 0 … 9"):
        condition(10).augment(unit(1), 10)
    with pytest.raises(ValueError, match="trained without noise augmentation"):
        ImageEmbedding(8, tokens=2, vector=False).augment(unit(1), 3)
