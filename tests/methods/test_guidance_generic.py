"""The generic conditioning path (``Conditioning``, ``drop_condition``, CFG over any key) against the
label-only functions it generalises: on labels it must make the same draws and the same guided output."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from lit_genvision.methods.guidance import (
    Conditioning,
    CondKey,
    NullFill,
    NullLabel,
    NullText,
    NullVector,
    classifier_free_guidance,
    drop_condition,
    drop_labels,
)
from lit_genvision.nn import UNet


def _label_net(x: Tensor, t: Tensor, cond: dict) -> Tensor:
    """Output = x·(1 + label); the null label (10) acts as 'unconditional'."""
    return x * (1 + cond["label"].float().view(-1, 1))


def _vector_net(x: Tensor, t: Tensor, cond: dict) -> Tensor:
    """Output = x + Σ v, with a null of −1 where the ``vector_null`` flag is set."""
    v = cond["vector"].sum(-1)
    v = torch.where(cond["vector_null"], torch.full_like(v, -1.0), v)
    return x + v.view(-1, 1)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
def test_label_dropout_makes_the_same_draws_as_drop_labels(p):
    labels = torch.randint(0, 10, (257,), generator=torch.Generator().manual_seed(1))
    old = drop_labels(labels, p, 10, generator=torch.Generator().manual_seed(3))
    new = drop_condition({"label": labels}, Conditioning.labels(10, p), generator=torch.Generator().manual_seed(3))
    assert torch.equal(old, new["label"]) and set(new) == {"label"}


def test_label_dropout_uses_the_global_rng_as_before():
    labels = torch.arange(64) % 10
    torch.manual_seed(7)
    old = drop_labels(labels, 0.3, 10)
    after_old = torch.rand(1)
    torch.manual_seed(7)
    new = Conditioning.labels(10, 0.3).drop({"label": labels, "image": torch.zeros(64, 1)})
    assert torch.equal(old, new["label"]) and set(new) == {"label"}
    assert torch.equal(after_old, torch.rand(1))  # the same number of draws


@pytest.mark.parametrize("scale", [0.0, 1.0, 2.5])
def test_label_guidance_is_the_same_as_before(scale):
    g = torch.Generator().manual_seed(0)
    x, labels = torch.randn(5, 3, generator=g), torch.tensor([1, 4, 7, 10, 0])
    t = torch.rand(5, generator=g)
    old = classifier_free_guidance(_label_net, scale, null_label=10)(x, t, {"label": labels})
    new = classifier_free_guidance(_label_net, scale, Conditioning.labels(10))(x, t, {"label": labels})
    assert torch.equal(old, new)


@pytest.mark.parametrize("scale", [0.0, 2.0])
def test_label_guidance_through_a_unet_is_the_same_as_before(scale):
    torch.manual_seed(0)
    net = UNet(image_size=8, channels=8, channel_mults=[1, 2], norm_groups=4, num_classes=10)
    for p in net.parameters():  # zero-initialised layers would hide the label path
        torch.nn.init.normal_(p, std=0.1)
    x, t, labels = torch.randn(4, 1, 8, 8), torch.tensor([1.0, 50.0, 300.0, 999.0]), torch.tensor([0, 3, 9, 5])
    old = classifier_free_guidance(net, scale, 10)(x, t, {"label": labels})
    new = classifier_free_guidance(net, scale, Conditioning.labels(10))(x, t, {"label": labels})
    assert torch.equal(old, new)


@pytest.mark.parametrize("scale", [0.0, 1.0, 3.0])
def test_vector_guidance_nulls_the_vector(scale):
    x, v = torch.randn(4, 2), torch.randn(4, 3)
    conditioning = Conditioning((CondKey("vector", 0.5, NullVector()),))
    calls: list[int] = []

    def net(x, t, cond):
        calls.append(len(x))
        flags = cond.get("vector_null", torch.zeros(len(x), dtype=torch.bool))
        return _vector_net(x, t, {**cond, "vector_null": flags})

    guided = classifier_free_guidance(net, scale, conditioning)(x, torch.zeros(4), {"vector": v})
    c, u = x + v.sum(-1, keepdim=True), x - 1
    torch.testing.assert_close(guided, u + scale * (c - u))
    assert calls == ([4] if scale in (0.0, 1.0) else [8])  # the two branches in one batched call


def test_vector_dropout_zeroes_and_flags_each_sample_independently_of_labels():
    n = 20_000
    conditioning = Conditioning((CondKey("label", 0.1, NullLabel(10)), CondKey("vector", 0.3, NullVector())))
    cond = {"label": torch.zeros(n, dtype=torch.long), "vector": torch.ones(n, 2), "image": torch.zeros(n)}
    dropped = conditioning.drop(cond, generator=torch.Generator().manual_seed(0))
    assert set(dropped) == {"label", "vector", "vector_null"}
    flags = dropped["vector_null"]
    assert abs(flags.float().mean().item() - 0.3) < 0.02
    assert abs((dropped["label"] == 10).float().mean().item() - 0.1) < 0.01
    assert torch.equal(dropped["vector"][flags], torch.zeros(int(flags.sum()), 2))
    assert torch.equal(dropped["vector"][~flags], torch.ones(int((~flags).sum()), 2))
    # the label draws come first, so they are drop_labels's exactly
    labels = drop_labels(cond["label"], 0.1, 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(labels, dropped["label"])


def test_null_and_kept_conditions_have_the_same_entries():
    conditioning = Conditioning((CondKey("label", 0.1, NullLabel(10)), CondKey("vector", 0.3, NullVector())))
    cond = {"label": torch.tensor([1, 2]), "vector": torch.ones(2, 3), "text": ["a", "b"]}
    null, kept = conditioning.null(cond), conditioning.null(cond, keep=True)
    assert set(null) == set(kept) == {"label", "vector", "vector_null", "text"}
    assert null["label"].tolist() == [10, 10] and kept["label"].tolist() == [1, 2]
    assert null["vector_null"].all() and not kept["vector_null"].any()
    assert not Conditioning() and Conditioning().select({"image": 1}) is None


def _layout_conditioning() -> Conditioning:
    """Text, a semantic map (null class 5), box labels (null: padding −1) and an inpainting mask (null: 1)."""
    return Conditioning(
        (
            CondKey("text", 0.5, NullText()),
            CondKey("semantic_map", 0.25, NullFill(5)),
            CondKey("box_labels", 0.1, NullFill(-1)),
            CondKey("mask", 0.2, NullFill(1.0)),
        )
    )


def test_each_key_drops_with_its_own_probability_and_null():
    n = 8000
    cond = {
        "text": [f"a digit {i % 10}" for i in range(n)],
        "semantic_map": torch.randint(0, 5, (n, 4, 4), generator=torch.Generator().manual_seed(1)),
        "box_labels": torch.randint(0, 10, (n, 3), generator=torch.Generator().manual_seed(2)),
        "mask": torch.zeros(n, 1, 4, 4),
    }
    dropped = _layout_conditioning().drop(cond, generator=torch.Generator().manual_seed(0))
    text_null = torch.tensor([t == "" for t in dropped["text"]])
    map_null = (dropped["semantic_map"] == 5).flatten(1).all(1)
    box_null = (dropped["box_labels"] == -1).all(1)
    mask_null = (dropped["mask"] == 1).flatten(1).all(1)
    for flags, p in ((text_null, 0.5), (map_null, 0.25), (box_null, 0.1), (mask_null, 0.2)):
        assert abs(flags.float().mean().item() - p) < 0.02
    # a sample not dropped keeps its value exactly
    kept = ~map_null
    assert torch.equal(dropped["semantic_map"][kept], cond["semantic_map"][kept])
    assert [t for t, d in zip(dropped["text"], text_null.tolist(), strict=True) if not d] == [
        t for t, d in zip(cond["text"], text_null.tolist(), strict=True) if not d
    ]
    # the keys drop independently: the joint rate of two is the product of their rates
    assert abs((text_null & map_null).float().mean().item() - 0.5 * 0.25) < 0.02


@pytest.mark.parametrize("scale", [0.0, 1.0, 2.0])
def test_guidance_nulls_text_and_maps_in_the_unconditional_branch(scale):
    seen: list[dict] = []

    def net(x: Tensor, t: Tensor, cond: dict) -> Tensor:
        """Output = x + (number of characters of the prompt) + (mean of the map)."""
        seen.append(cond)
        chars = torch.tensor([float(len(s)) for s in cond["text"]]).view(-1, 1)
        return x + chars + cond["semantic_map"].float().mean((1, 2)).view(-1, 1)

    conditioning = Conditioning((CondKey("text", 0.1, NullText()), CondKey("semantic_map", 0.1, NullFill(5))))
    x, cond = torch.zeros(2, 1), {"text": ["a seven", "a thick one"], "semantic_map": torch.zeros(2, 3, 3)}
    out = classifier_free_guidance(net, scale, conditioning)(x, torch.zeros(2), cond)
    c, u = torch.tensor([[7.0], [11.0]]), torch.tensor([[5.0], [5.0]])  # unconditional: "" and the all-5 map
    torch.testing.assert_close(out, u + scale * (c - u))
    if scale == 2.0:  # both branches in one call of 2B, prompts concatenated as lists
        assert len(seen) == 1 and seen[0]["text"] == ["a seven", "a thick one", "", ""]
