"""The layout measures on real digit scenes: real boxes are classified as their digits and hold all
the ink; wrong labels or another scene's boxes are caught."""

from __future__ import annotations

import pytest
import torch

from lit_genvision.data import DigitScenesDataModule
from lit_genvision.data.base import to_unit_range
from lit_genvision.metrics.digits import load_digits_extractor
from lit_genvision.metrics.layout import box_accuracy, box_crops, ink_outside_boxes


@pytest.fixture(scope="module")
def scenes():
    dm = DigitScenesDataModule(scenes_per_split={"train": 1, "val": 1, "test": 200})
    test = dm.split("test")
    return to_unit_range(test.images), test.fields["boxes"], test.fields["box_labels"]


def test_real_boxes_are_classified_as_their_digits(scenes):
    images, boxes, labels = scenes
    assert box_accuracy(images, boxes, labels, load_digits_extractor(16)) >= 0.95


def test_wrong_labels_are_caught(scenes):
    images, boxes, labels = scenes
    wrong = torch.where(labels > 0, labels % 10 + 1, labels)  # every digit d asked as d + 1
    assert box_accuracy(images, boxes, wrong, load_digits_extractor(16)) < 0.2


def test_real_scenes_have_no_ink_outside_their_boxes(scenes):
    images, boxes, labels = scenes
    assert ink_outside_boxes(images, boxes, labels) == 0.0


def test_another_scenes_boxes_leave_ink_outside(scenes):
    images, boxes, labels = scenes
    assert ink_outside_boxes(images, boxes.roll(1, 0), labels.roll(1, 0)) > 0.3


def test_one_square_crop_per_real_box(scenes):
    images, boxes, labels = scenes
    crops, digits = box_crops(images[:10], boxes[:10], labels[:10])
    assert crops.shape == (int((labels[:10] > 0).sum()), 1, 16, 16)
    assert torch.equal(digits, labels[:10][labels[:10] > 0] - 1)


def test_a_layout_without_boxes_is_one_clear_error():
    with pytest.raises(ValueError, match="the layouts hold no box"):
        box_accuracy(torch.zeros(1, 1, 32, 32), torch.zeros(1, 2, 4), torch.full((1, 2), -1), load_digits_extractor(16))
