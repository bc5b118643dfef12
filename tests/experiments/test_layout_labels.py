"""Layout labels are the class a user names (issue 29, item B7): the digit for digit scenes (3, "3" or "three"),
the DisplayName or LabelName for Open Images, looked up in the class list the checkpoint records, or for an
older checkpoint in its data module rebuilt from the checkpoint's data config."""

from __future__ import annotations

import json

import pytest
import torch

from lit_genvision.callbacks.class_names import CLASSES_KEY
from lit_genvision.data.scenes import DigitScenesDataModule
from lit_genvision.experiments.checkpoints import run_classes
from lit_genvision.experiments.conditions import ClassList, read_layout
from lit_genvision.models.base import CHECKPOINT_KEY

SCENES = DigitScenesDataModule()
DIGITS = ClassList(tuple(SCENES.class_names), tuple(SCENES.class_ids))
OPEN_IMAGES = ClassList(("background", "Dog", "Cat"), ("", "/m/0bt9lr", "/m/01yrx"))


def layout(tmp_path, *labels) -> str:
    path = tmp_path / "layout.json"
    path.write_text(json.dumps([{"box": [0, 0, 8, 8], "label": label} for label in labels]))
    return str(path)


@pytest.mark.parametrize("label", [3, "3", "three", "Three", " three "])
def test_a_digit_scene_label_is_the_digit(tmp_path, label):
    _, labels = read_layout(layout(tmp_path, label), 16, DIGITS)
    assert labels.tolist() == [4]  # digit d is class d + 1 of the data module (0 is background)


def test_digit_zero_and_nine_are_the_ends_of_the_class_list(tmp_path):
    _, labels = read_layout(layout(tmp_path, 0, "nine"), 16, DIGITS)
    assert labels.tolist() == [1, 10]


@pytest.mark.parametrize("label, index", [("Dog", 1), ("cat", 2), ("/m/0bt9lr", 1), ("/m/01yrx", 2)])
def test_an_open_images_label_is_its_name_or_its_label_id(tmp_path, label, index):
    _, labels = read_layout(layout(tmp_path, label), 16, OPEN_IMAGES)
    assert labels.tolist() == [index]


@pytest.mark.parametrize(
    "classes, label, listed",
    [
        (DIGITS, "eleven", "zero (0), one (1), two (2)"),
        (DIGITS, 10, "nine (9)"),
        (OPEN_IMAGES, "Horse", "Dog (/m/0bt9lr), Cat (/m/01yrx)"),
        (OPEN_IMAGES, 1, "Dog (/m/0bt9lr)"),
    ],
)
def test_an_unknown_class_is_one_sentence_listing_the_classes(tmp_path, classes, label, listed):
    with pytest.raises(ValueError) as err:
        read_layout(layout(tmp_path, label), 16, classes)
    message = str(err.value)
    assert message.startswith(f"--layout entry 0 names class {label!r}, which this model does not know; name one of")
    assert listed in message and message.endswith(".") and "\n" not in message


def test_a_long_class_list_is_cut_in_the_message(tmp_path):
    many = ClassList(tuple(f"class{k}" for k in range(600)))
    with pytest.raises(ValueError, match=r"class11, … \(600 classes in all\)\.$"):
        read_layout(layout(tmp_path, "nope"), 16, many)


def test_without_a_class_list_a_label_is_the_class_index(tmp_path):
    _, labels = read_layout(layout(tmp_path, 3), 16, None, 11)
    assert labels.tolist() == [3]
    with pytest.raises(ValueError, match="records no class names; give the class index 0 … 10 of its data module"):
        read_layout(layout(tmp_path, "three"), 16, None, 11)


def _checkpoint(path, data: dict, classes: dict | None = None) -> str:
    info = {"family": "diffusion", "class": "lit_genvision.models.DiffusionModel", "data": data}
    ckpt = {"state_dict": {}, CHECKPOINT_KEY: info}
    if classes is not None:
        ckpt[CLASSES_KEY] = classes
    torch.save(ckpt, path)
    return str(path)


def test_the_recorded_class_list_comes_first(tmp_path):
    data = {"class_path": "lit_genvision.data.DigitScenesDataModule", "init_args": {"image_size": 16}}
    recorded = {"names": ["background", "a", "b"], "ids": ["", "1", "2"]}
    assert run_classes(_checkpoint(tmp_path / "x.ckpt", data, recorded)) == (["background", "a", "b"], ["", "1", "2"])


def test_an_older_checkpoint_takes_the_class_list_of_its_rebuilt_data_module(tmp_path):
    data = {"class_path": "lit_genvision.data.DigitScenesDataModule", "init_args": {"image_size": 16}}
    assert run_classes(_checkpoint(tmp_path / "x.ckpt", data)) == (SCENES.class_names, SCENES.class_ids)
    plain = {"class_path": "lit_genvision.data.DigitsDataModule", "init_args": {"image_size": 8}}
    assert run_classes(_checkpoint(tmp_path / "y.ckpt", plain)) is None  # the digits name no layout classes
