from __future__ import annotations

import itertools
import re

import pytest
import torch
from fixtures.formats import laion_samples, write_laion_tar

from lit_genvision.data import DigitsDataModule, LaionDataModule, load_digits_uint8
from lit_genvision.data.captions import (
    ATTRIBUTE_WORDS,
    DIGIT_WORDS,
    LABEL_TEMPLATES,
    TEMPLATES,
    THRESHOLDS,
    attribute_words,
    caption_digit,
    caption_for,
    caption_words,
    digit_attributes,
    label_templates,
    make_captions,
    read_captions,
    write_captions,
)

#: Every combination of attribute words, the empty word included.
ALL_WORDS = [
    dict(zip(ATTRIBUTE_WORDS, combo, strict=True))
    for combo in itertools.product(*[("", *pair) for pair in ATTRIBUTE_WORDS.values()])
]


def canvas(*boxes: tuple[int, int, int, int]) -> torch.Tensor:
    """A uint8 (1, 1, 16, 16) image with full ink in each (top, bottom, left, right) box."""
    x = torch.zeros(1, 1, 16, 16, dtype=torch.uint8)
    for top, bottom, left, right in boxes:
        x[..., top:bottom, left:right] = 255
    return x


def one_sentence(message: str) -> None:
    assert message.endswith(".") and ". " not in message and "\n" not in message, message


def test_weight_is_the_stroke_width_so_a_thick_bar_outweighs_a_thin_one():
    thin, thick = canvas((2, 14, 7, 9)), canvas((2, 14, 6, 10))  # 12 rows × 2 and × 4 columns
    w = digit_attributes(torch.cat([thin, thick]))["weight"]
    # 2 · area / perimeter = k·L / (L + k) for a k × L bar
    torch.testing.assert_close(w, torch.tensor([2 * 12 / 14, 4 * 12 / 16]))


def test_slant_is_positive_when_the_top_leans_right_and_zero_for_an_upright_bar():
    leaning_right = canvas(*[(y, y + 1, 3 + (13 - y) // 2, 5 + (13 - y) // 2) for y in range(2, 14)])
    upright = canvas((2, 14, 7, 9))
    images = torch.cat([leaning_right, leaning_right.flip(-1), upright])
    slant = digit_attributes(images)["slant"]
    assert slant[0] > 0.4 and slant[1] < -0.4  # two rows per column step: a shear of about 1/2
    assert slant[2].abs() < 1e-6


def test_size_is_the_ink_height_as_a_share_of_the_canvas():
    small, large = canvas((6, 10, 6, 10)), canvas((2, 14, 2, 14))
    torch.testing.assert_close(digit_attributes(torch.cat([small, large]))["size"], torch.tensor([4 / 16, 12 / 16]))


def test_float_images_in_minus_one_to_one_measure_as_their_uint8_originals():
    images = load_digits_uint8(16)[0][:64]
    a, b = digit_attributes(images), digit_attributes(images.float() / 127.5 - 1)
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_thresholds_are_the_tertiles_of_the_default_train_split():
    dm = DigitsDataModule(image_size=16, seed=0)
    attrs = digit_attributes(dm.split("train").images)
    for name, (lo, hi) in THRESHOLDS.items():
        q = torch.quantile(attrs[name], torch.tensor([1 / 3, 2 / 3])).tolist()
        assert q == pytest.approx([lo, hi], abs=1e-4), name
    words = attribute_words(attrs)
    for name, (low, high) in ATTRIBUTE_WORDS.items():  # about a third in each word
        counts = [sum(w[name] == v for w in words) / len(words) for v in (low, "", high)]
        assert all(abs(c - 1 / 3) < 0.01 for c in counts), (name, counts)


def test_template_sets_are_disjoint_and_label_templates_name_only_the_digit():
    sets = [set(TEMPLATES[s]) for s in ("train", "val", "test")]
    assert all(len(s) == len(TEMPLATES[n]) for s, n in zip(sets, TEMPLATES, strict=True))  # no repeats
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    for split in TEMPLATES:
        assert label_templates(split) == LABEL_TEMPLATES[split]
        for t in label_templates(split):
            assert set(re.findall(r"{(\w+)}", t)) in ({"word"}, {"num"}), t


def test_parsers_roundtrip_every_template_label_and_attribute_words():
    for template, label, words in itertools.product(itertools.chain(*TEMPLATES.values()), range(10), ALL_WORDS):
        text = caption_for(label, words, template)
        assert caption_digit(text) == label, text
        has = set(re.findall(r"{(\w+)}", template))
        assert caption_words(text) == {k: v if k in has else "" for k, v in words.items()}, text
    assert caption_digit("a seven and a 7") == 7 and caption_digit("a 3 or a four") is None
    assert caption_digit("someone") is None


def test_captions_read_naturally_when_attribute_words_are_empty():
    assert caption_for(8, {}, "a {size}, {weight} {num}") == "an 8"  # a template shape, not one of TEMPLATES
    assert caption_for(7, {"size": "small"}, "a {size}, {weight} {num}") == "a small 7"
    assert caption_for(7, {"weight": "thick"}, "a {size}, {weight} {num}") == "a thick 7"
    assert caption_for(8, {"size": "large", "weight": "thin"}, "a {size}, {weight} {word}") == "a large, thin eight"
    assert caption_for(3, {}, "a photo of a {weight} {word} {slant}") == "a photo of a three"


def test_captions_are_deterministic_and_each_split_uses_only_its_own_templates():
    images, labels = load_digits_uint8(16)
    images, labels = images[:200], labels[:200]
    assert make_captions(images, labels, "train", 0) == make_captions(images, labels, "train", 0)
    assert make_captions(images, labels, "train", 0) != make_captions(images, labels, "train", 1)
    possible = {
        s: {caption_for(y, w, t) for t in TEMPLATES[s] for y in range(10) for w in ALL_WORDS} for s in TEMPLATES
    }
    assert not (possible["train"] & possible["val"] or possible["train"] & possible["test"])
    assert not possible["val"] & possible["test"]
    dm = DigitsDataModule(captions="templates")
    for split in ("train", "val", "test"):
        texts = dm.split(split).fields["text"]
        assert set(texts) <= possible[split]
        assert len({t for t in texts}) > 50  # templates and attribute words vary


def test_digits_batch_with_captions_has_text_of_batch_length_naming_each_label():
    dm = DigitsDataModule(batch_size=32, captions="templates")
    assert "text" in dm.provides and "text" not in DigitsDataModule().provides
    batch = next(iter(dm.train_dataloader()))
    batch = dm.on_after_batch_transfer(dm.transfer_batch_to_device(batch, torch.device("cpu"), 0), 0)
    assert isinstance(batch["text"], list) and len(batch["text"]) == 32
    assert all(isinstance(t, str) for t in batch["text"])
    assert [caption_digit(t) for t in batch["text"]] == batch["label"].tolist()
    assert batch["image"].dtype == torch.float32
    all_images, all_labels = load_digits_uint8(16)
    assert batch["id"].dtype == torch.long
    torch.testing.assert_close(all_labels[batch["id"]], batch["label"])
    torch.testing.assert_close(all_images[batch["id"]], dm.split("train").images[batch["index"]])


def test_digits_without_captions_have_ids_and_no_text():
    dm = DigitsDataModule(batch_size=8)
    batch = next(iter(dm.val_dataloader()))
    assert "text" not in batch and batch["id"].shape == (8,)
    assert dm.provides == ("image", "label")


def test_caption_file_roundtrips_and_digits_read_it_by_sklearn_index(tmp_path):
    path = tmp_path / "captions.parquet"
    assert write_captions(path, [str(i) for i in range(1797)], [f"digit number {i}" for i in range(1797)]) == path
    assert read_captions(path) == {str(i): f"digit number {i}" for i in range(1797)}
    dm = DigitsDataModule(batch_size=16, captions=str(path))
    batch = next(iter(dm.test_dataloader()))
    assert batch["text"] == [f"digit number {i}" for i in batch["id"].tolist()]


def test_missing_caption_ids_are_a_one_sentence_error(tmp_path):
    path = tmp_path / "captions.parquet"
    write_captions(path, [str(i) for i in range(1790)], ["x"] * 1790)
    with pytest.raises(ValueError, match="no caption for 7 of the 1797 digit ids") as err:
        DigitsDataModule(captions=str(path)).setup()
    one_sentence(str(err.value))


def test_caption_file_without_key_and_text_columns_is_a_one_sentence_error(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["0"], "caption": ["x"]}), tmp_path / "c.parquet")
    with pytest.raises(ValueError, match="expected string columns 'key' and 'text'") as err:
        read_captions(tmp_path / "c.parquet")
    one_sentence(str(err.value))


def test_unknown_captions_option_is_a_one_sentence_error():
    with pytest.raises(ValueError, match="captions must be None, 'templates' or a path") as err:
        DigitsDataModule(captions="captions.csv")
    one_sentence(str(err.value))


def test_laion_caption_file_replaces_the_text_of_matching_keys_only(tmp_path):
    for k in range(2):
        write_laion_tar(tmp_path / "shards" / f"{k:05d}.tar", laion_samples(6, seed=k))
    plain = LaionDataModule(root=str(tmp_path / "shards"), val_shards=1, image_size=8, num_workers=0)
    original = {s["key"]: s["text"] for s in plain.stream("val")}
    chosen = sorted(original)[::2]
    write_captions(tmp_path / "recaptioned.parquet", chosen, [f"new caption of {k}" for k in chosen])
    dm = LaionDataModule(
        root=str(tmp_path / "shards"),
        val_shards=1,
        image_size=8,
        num_workers=0,
        captions=str(tmp_path / "recaptioned.parquet"),
    )
    got = {s["key"]: s["text"] for s in dm.stream("val")}
    assert got == {k: f"new caption of {k}" if k in chosen else t for k, t in original.items()}
    assert 0 < len(chosen) < len(original)


def test_digit_words_are_the_ten_names():
    assert DIGIT_WORDS[7] == "seven" and len(DIGIT_WORDS) == 10


def test_laion_caption_corpus_lists_the_train_captions_with_the_file_replacing_its_keys(tmp_path):
    for k in range(2):
        write_laion_tar(tmp_path / "shards" / f"{k:05d}.tar", laion_samples(6, seed=k))
    plain = LaionDataModule(root=str(tmp_path / "shards"), val_shards=1, image_size=8, num_workers=0)
    train = [s["txt"] for s in laion_samples(6, seed=0)]
    assert plain.caption_corpus("train") == train
    assert plain.caption_corpus("train", limit=2) == train[:2]
    keys = [s["key"] for s in laion_samples(6, seed=0)]
    write_captions(tmp_path / "re.parquet", keys[:1], ["a new caption"])
    dm = LaionDataModule(
        root=str(tmp_path / "shards"), val_shards=1, image_size=8, captions=str(tmp_path / "re.parquet")
    )
    assert dm.caption_corpus("train") == ["a new caption", *train[1:]]
