"""DALL-E 2's prior network (``nn.prior``), its x₀ objective, best-of-K reranking and the prior's figures."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lit_genvision.methods import CosineSchedule, DiffusionMethod
from lit_genvision.methods.rerank import best_of
from lit_genvision.metrics.prior import derangement, prior_figures, zero_shot_accuracy
from lit_genvision.nn import PriorTransformer


def tiny(**kwargs) -> PriorTransformer:
    torch.manual_seed(0)
    return PriorTransformer(embed_dim=8, width=16, depth=2, heads=2, context_dim=6, **kwargs).eval()


def inputs(b: int = 3, m: int = 5, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, dict]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 8, generator=g)
    t = torch.randint(0, 1000, (b,), generator=g)
    cond = {
        "vector": F.normalize(torch.randn(b, 8, generator=g), dim=-1),
        "context": torch.randn(b, m, 6, generator=g),
        "context_mask": torch.ones(b, m, dtype=torch.bool),
    }
    return x, t, cond


def test_prior_maps_a_noised_embedding_and_caption_to_an_embedding_that_depends_on_both():
    net = tiny()
    x, t, cond = inputs()
    out = net(x, t, cond)
    assert out.shape == (3, 8)
    other_text = {**cond, "context": cond["context"].flip(0)}
    assert not torch.allclose(net(x, t, other_text), out)
    assert not torch.allclose(net(x.flip(0), t, cond), out)
    assert not torch.allclose(net(x, t, {**cond, "vector": cond["vector"].flip(0)}), out)


def test_padding_tokens_of_the_caption_do_not_change_the_prediction():
    net = tiny()
    x, t, cond = inputs(m=4)
    padded = {
        **cond,
        "context": torch.cat([cond["context"], torch.randn(3, 3, 6) * 10], dim=1),
        "context_mask": torch.cat([cond["context_mask"], torch.zeros(3, 3, dtype=torch.bool)], dim=1),
    }
    torch.testing.assert_close(net(x, t, padded), net(x, t, cond), atol=1e-5, rtol=1e-5)


def test_causal_prior_the_caption_tokens_do_not_see_the_noised_embedding():
    """With the causal mask, token i attends to tokens ≤ i: the text tokens' states ignore what follows them,
    and only the final query reads the whole sequence (the changed embedding changes the output)."""
    net = tiny()
    seen = {}
    net.transformer.blocks[0].register_forward_hook(lambda m, a, out: seen.setdefault(len(seen), out))
    x, t, cond = inputs()
    net(x, t, cond)
    net(x + 1.0, t, cond)
    m = cond["context"].shape[1]
    torch.testing.assert_close(seen[0][:, : 2 + m], seen[1][:, : 2 + m])
    assert not torch.allclose(seen[0][:, -2:], seen[1][:, -2:])


def test_the_prior_refuses_a_missing_caption_and_too_long_captions():
    net = tiny()
    x, t, cond = inputs()
    with pytest.raises(ValueError, match="reads the caption"):
        net(x, t, {"vector": cond["vector"]})
    with pytest.raises(ValueError, match="up to 64 tokens"):
        net(x, t, {**cond, "context": torch.zeros(3, 65, 6), "context_mask": torch.ones(3, 65, dtype=torch.bool)})


def test_the_x0_objective_is_the_mean_squared_error_to_the_clean_embedding():
    """L = E‖z_i − f(√ᾱ_t z_i + √(1 − ᾱ_t) ε, t, y)‖², with t and ε drawn in that order from the generator."""
    net = tiny()
    method = DiffusionMethod(CosineSchedule(1000), prediction="x0")
    x0, _, cond = inputs(b=4)
    x0 = F.normalize(x0, dim=-1) * math.sqrt(8)
    loss = method.loss(net, x0, cond, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    t = torch.randint(0, 1000, (4,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    alpha_bar = CosineSchedule(1000).alpha_bar(t, x0)
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps
    expected = (x0 - net(x_t, t, cond)).square().mean()
    torch.testing.assert_close(loss, expected)


def test_best_of_picks_the_candidate_with_the_higher_cosine_whatever_its_norm():
    reference = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    candidates = torch.tensor(
        [
            [[0.9, 0.1], [5.0, 1.0]],  # candidate 0: cos 0.994 to row 0; cos 0.196 to row 1 (but larger norm)
            [[0.1, 9.0], [0.2, 0.9]],  # candidate 1: cos 0.011 to row 0; cos 0.976 to row 1
        ]
    )
    chosen, k = best_of(candidates, reference)
    assert k.tolist() == [0, 1]
    torch.testing.assert_close(chosen, torch.tensor([[0.9, 0.1], [0.2, 0.9]]))
    with pytest.raises(ValueError, match=r"\(K, B, D\)"):
        best_of(candidates[0], reference)


def test_derangement_moves_every_index_and_is_a_permutation():
    for n in (2, 3, 17):
        pi = derangement(n, torch.Generator().manual_seed(n))
        assert sorted(pi.tolist()) == list(range(n))
        assert (pi != torch.arange(n)).all()


def test_prior_figures_match_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    image = F.normalize(torch.randn(6, 4, generator=g), dim=-1)
    text = F.normalize(image + 0.5 * torch.randn(6, 4, generator=g), dim=-1)
    predicted = 3.0 * image  # the perfect prior, at another scale
    classes = torch.eye(4)
    labels = image.argmax(-1)
    out = prior_figures(predicted, image, text, labels, classes, torch.Generator().manual_seed(1))
    assert out["pred_image"] == pytest.approx(1.0)
    assert out["text_image"] == pytest.approx(float((text * image).sum(-1).mean()))
    assert out["pred_text"] == pytest.approx(out["text_image"])
    pi = derangement(6, torch.Generator().manual_seed(1))
    assert out["pred_shuffled"] == pytest.approx(float((image * image[pi]).sum(-1).mean()))
    assert out["zero_shot"] == 1.0 == out["image_zero_shot"]
    assert out["text_zero_shot"] == zero_shot_accuracy(text, classes, labels)
