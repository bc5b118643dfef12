"""Diffusion and flow models over a ConditionedNet: which keys condition them, what dropping a key means,
the default prompts, the inpainting input and its exact compositing, and the missing-key error."""

from __future__ import annotations

import pytest
import torch

from lit_genvision.data import DigitsDataModule
from lit_genvision.methods import DDIMSampler, LinearSchedule
from lit_genvision.methods.masks import MaskGenerator
from lit_genvision.models import DiffusionModel, FlowMatchingModel, ODESampler
from lit_genvision.nn import BPETokenizer, ConditionedNet, LearnedTextEmbedding, UNet
from lit_genvision.nn.conditions import KnownRegion, known_region_input

PROMPTS = ["a zero", "a one", "a two"]


def unet(in_channels: int, **kw) -> UNet:
    args = dict(image_size=8, channels=8, channel_mults=[1, 2], depth=1, norm_groups=4, attention_at=[4], heads=2)
    return UNet(in_channels=in_channels, out_channels=1, **(args | kw))


def text_model(**kw) -> DiffusionModel:
    tok = BPETokenizer.train(PROMPTS + ["a picture of a one"], vocab_size=300, max_length=8)
    net = ConditionedNet(unet(1, context_dim=16), text_encoder=LearnedTextEmbedding(tok, 300, 8, 16))
    return DiffusionModel(net, LinearSchedule(20), DDIMSampler(steps=2), cond_dropout={"text": 0.5}, **kw)


def inpainting_model(cls=DiffusionModel) -> DiffusionModel | FlowMatchingModel:
    net = ConditionedNet(unet(3), inpainting=True)
    extra = (LinearSchedule(20), DDIMSampler(steps=2)) if cls is DiffusionModel else (None, ODESampler("euler", 2))
    return cls(net, *extra, cond_dropout={"inpaint": 0.2})


def test_each_condition_key_has_its_null_rule_and_dropout():
    net = ConditionedNet(
        unet(1 + 12 + 2, context_dim=16), text_encoder=LearnedTextEmbedding(None, 300, 8, 16), semantic="concat",
        semantic_classes=11, semantic_from="boxes", semantic_size=8, inpainting=True,
    )  # fmt: skip
    model = DiffusionModel(net, cond_dropout={"text": 0.3, "box_labels": 0.2, "inpaint": 0.1})
    keys = {k.key: k.dropout for k in model.conditioning}
    assert keys == {"text": 0.3, "boxes": 0.0, "box_labels": 0.2, "inpaint": 0.1}  # a layout drops through its labels
    nulls, drop = {k.key: k.null for k in model.conditioning}, torch.tensor([True, False])
    assert nulls["text"]("text", ["a one", "a two"], drop) == {"text": ["", "a two"]}
    boxes = torch.rand(2, 1, 4)
    assert nulls["boxes"]("boxes", boxes, drop)["boxes"] is boxes
    assert nulls["box_labels"]("box_labels", torch.tensor([[3], [4]]), drop)["box_labels"].tolist() == [[-1], [4]]
    inpaint = torch.rand(2, 2, 8, 8)
    assert torch.equal(nulls["inpaint"]("inpaint", inpaint, drop)["inpaint"][0, 0], torch.ones(8, 8))
    assert model.required_keys() == ("image", "text", "boxes", "box_labels")  # inpaint is built from the image


def test_a_semantic_map_drops_to_the_null_class():
    net = ConditionedNet(unet(1 + 4), semantic="concat", semantic_classes=3)
    model = DiffusionModel(net)
    (key,) = model.conditioning.keys
    semantic = torch.zeros(2, 4, 4, dtype=torch.long)
    nulled = key.null("semantic_map", semantic, torch.tensor([True, False]))["semantic_map"]
    assert key.key == "semantic_map" and (nulled[0] == 3).all() and (nulled[1] == 0).all()


def test_null_inpaint_knows_nothing_and_keep_value_keeps_boxes():
    value = torch.rand(3, 2, 4, 4)
    drop = torch.tensor([True, False, True])
    out = KnownRegion().null("inpaint", value, drop)["inpaint"]
    assert (out[drop, 0] == 1).all() and (out[drop, 1] == 0).all()
    assert torch.equal(out[1], value[1])
    layout = ConditionedNet(
        unet(1 + 12), semantic="concat", semantic_classes=11, semantic_from="boxes", semantic_size=8
    )
    boxes = torch.rand(3, 2, 4)
    assert layout.conditions["layout"].null("boxes", boxes, drop)["boxes"] is boxes


def test_class_prompts_are_the_default_condition_cycled_over_samples():
    model = text_model(class_prompts=PROMPTS)
    cond = model.sample_cond(4, None, offset=2)
    assert cond["text"] == ["a two", "a zero", "a one", "a two"]
    assert cond["label"].tolist() == [2, 0, 1, 2]  # what the samples are asked to show, for scoring


def test_class_prompts_must_be_strings():
    with pytest.raises(ValueError, match="class_prompts must be a non-empty list of strings"):
        text_model(class_prompts=[])


def test_text_dropout_replaces_prompts_by_the_empty_prompt():
    model = text_model()
    torch.manual_seed(0)
    cond = model.train_cond({"image": torch.zeros(200, 1, 8, 8), "text": ["a one"] * 200})
    empty = sum(t == "" for t in cond["text"])
    assert set(cond["text"]) == {"", "a one"} and 70 < empty < 130  # p = 0.5


def test_the_inpainting_input_is_the_mask_and_the_masked_image():
    model = inpainting_model()
    images = torch.rand(2, 1, 8, 8) * 2 - 1
    masks = torch.zeros(2, 1, 8, 8)
    masks[:, :, 2:6, 2:6] = 1
    got = known_region_input(model.space.encode, images, masks)
    assert torch.equal(got[:, :1], masks)
    assert torch.equal(got[:, 1:], images * (1 - masks))  # unknown pixels are 0, the middle of [-1, 1]


def test_training_draws_masks_from_the_configured_generator():
    model = inpainting_model()
    model.inpaint_masks = MaskGenerator(kinds=("border",))
    torch.manual_seed(0)
    cond = model.val_cond({"image": torch.zeros(16, 1, 8, 8)})
    mask = cond["inpaint"][:, 0]
    assert ((mask == 0) | (mask == 1)).all() and mask.sum() > 0
    assert (mask[:, 4, 4] == 0).all()  # a border mask never reaches the centre pixel


@pytest.mark.parametrize("cls", [DiffusionModel, FlowMatchingModel])
def test_inpainting_keeps_every_known_pixel_exactly(cls):
    torch.manual_seed(0)
    model = inpainting_model(cls)
    images = torch.rand(3, 1, 8, 8) * 2 - 1
    masks = (torch.rand(3, 8, 8) > 0.5).float()
    out = model.inpaint(images, masks, generator=torch.Generator().manual_seed(0))
    known = masks[:, None] == 0
    assert torch.equal(out[known], images[known])
    assert not torch.equal(out[~known], images[~known])


def test_inpaint_refuses_a_model_without_an_inpainting_input():
    model = text_model()
    with pytest.raises(ValueError, match="was not trained to inpaint"):
        model.inpaint(torch.zeros(1, 1, 8, 8), torch.ones(1, 8, 8))


def test_inpaint_refuses_masks_that_do_not_match_the_images():
    with pytest.raises(ValueError, match="masks must be N×H×W matching the images"):
        inpainting_model().inpaint(torch.zeros(2, 1, 8, 8), torch.ones(2, 4, 4))


def test_guided_text_sampling_runs_both_branches_with_the_empty_prompt():
    model = text_model(class_prompts=PROMPTS, guidance_scale=3.0)
    seen: list[list[str]] = []
    original = model.net.text_encoder.encode
    model.net.text_encoder.encode = lambda texts: (seen.append(list(texts)), original(texts))[1]
    model.sample(2, steps=1)
    assert seen and all(t == ["a zero", "a one", "", ""] for t in seen)  # conditional, then null branch


def test_a_data_module_without_the_condition_key_is_one_clear_error():
    model = text_model()

    class Trainer:
        datamodule = DigitsDataModule(image_size=8)  # no captions: no text

    model._trainer = Trainer()
    with pytest.raises(ValueError, match=r"needs batch key\(s\) text, which DigitsDataModule does not provide"):
        model.setup("fit")


def test_a_label_asked_of_a_text_model_becomes_its_class_prompt():
    model = text_model(class_prompts=PROMPTS)
    cond = model.sample_cond(2, {"label": torch.tensor([2, 1])})
    assert cond["text"] == ["a two", "a one"] and model.label_count == 3
