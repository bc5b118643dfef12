"""DALL-E 2's transformer decoder: the token prior with a CLIP image embedding as a prefix of 4 tokens."""

from __future__ import annotations

import torch

from lit_genvision.nn import ImageEmbedding, TokenTransformer


def tiny() -> TokenTransformer:
    torch.manual_seed(0)
    net = TokenTransformer(vocab_size=7, length=5, dim=16, depth=2, heads=2, conditions=[ImageEmbedding(6, 3, False)])
    torch.nn.init.normal_(net.head.weight, std=0.5)  # the head starts at zero: give the logits something to show
    return net.eval()


def test_the_embedding_prefixes_the_sequence_and_changes_the_logits_of_every_position():
    net = tiny()
    codes = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(1))
    e = torch.randn(2, 6, generator=torch.Generator().manual_seed(2))
    prefix = net.prefix_tokens({"image_embedding": e}, 2, codes.device)
    assert prefix.shape == (2, 3 + 1, 16)  # 3 embedding tokens, then START
    logits = net(codes, {"image_embedding": e})
    assert logits.shape == (2, 5, 7)
    other = net(codes, {"image_embedding": e.flip(0)})
    assert (logits - other).abs().amax(-1).min() > 0  # every position of every row sees the prefix
    dropped = net.conditions["image_embedding"].null("image_embedding", e, torch.tensor([True, False]))
    both = net(codes, dropped)
    torch.testing.assert_close(both[:1], net(codes[:1], None))  # a dropped embedding is the null prefix
    torch.testing.assert_close(both[1:], logits[1:])


def test_teacher_forcing_equals_decoding_step_by_step_with_the_cache():
    net = tiny()
    codes = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(3))
    cond = {"image_embedding": torch.randn(2, 6, generator=torch.Generator().manual_seed(4))}
    forced = net(codes, cond)
    cache = net.new_cache()
    x = net.prefix_tokens(cond, 2, codes.device)
    for i in range(5):
        torch.testing.assert_close(net.step(x, cache), forced[:, i], atol=1e-5, rtol=1e-5)
        x = net.embed_tokens(codes[:, i : i + 1], i)


def test_without_conditions_the_state_dict_keys_are_the_earlier_token_priors():
    plain = TokenTransformer(vocab_size=7, length=5, dim=16, depth=1, heads=2)
    assert not any(k.startswith("conditions.") for k in plain.state_dict())
    assert plain.prefix_tokens(None, 2, torch.device("cpu")).shape == (2, 1, 16)


def test_a_class_conditional_token_prior_keeps_its_label_beside_the_prefix_conditions():
    from lit_genvision.models.conditional import conditions_of
    from lit_genvision.nn.conditions import Label

    plain = TokenTransformer(vocab_size=7, length=5, dim=16, depth=1, heads=2, num_classes=3)
    assert [type(c) for c in conditions_of(plain)] == [Label]
    both = TokenTransformer(
        vocab_size=7, length=5, dim=16, depth=1, heads=2, num_classes=3, conditions=[ImageEmbedding(6, 2, False)]
    )
    assert [type(c) for c in conditions_of(both)] == [Label, ImageEmbedding]
    e = torch.randn(2, 6)
    one = both.prefix_tokens({"image_embedding": e, "label": torch.tensor([0, 1])}, 2, torch.device("cpu"))
    two = both.prefix_tokens({"image_embedding": e, "label": torch.tensor([2, 1])}, 2, torch.device("cpu"))
    assert one.shape == (2, 3, 16)
    assert not torch.equal(one[0, -1], two[0, -1]) and torch.equal(one[1], two[1])
