"""LightningDataModules, one file per dataset; batches are dicts with ``image`` in [-1, 1] NCHW."""

from lit_genvision.data.base import ImageDataModule, TensorImageDataset, to_uint8, to_unit_range
from lit_genvision.data.captions import (
    DIGIT_WORDS,
    TEMPLATES,
    caption_digit,
    caption_for,
    caption_words,
    digit_attributes,
    label_templates,
    make_captions,
    read_captions,
    write_captions,
)
from lit_genvision.data.celeba import CelebADataModule
from lit_genvision.data.cifar10 import CIFAR10DataModule, load_cifar10
from lit_genvision.data.digits import DigitsDataModule, load_digits_uint8
from lit_genvision.data.laion import LaionDataModule, LaionFilters
from lit_genvision.data.moving_digits import MovingDigitsDataModule, motion_phrases
from lit_genvision.data.openimages import OpenImagesDataModule, render_semantic_map
from lit_genvision.data.scenes import DigitScenesDataModule, scene_caption, scene_digits

__all__ = [
    "DIGIT_WORDS",
    "TEMPLATES",
    "caption_digit",
    "caption_for",
    "caption_words",
    "digit_attributes",
    "label_templates",
    "make_captions",
    "read_captions",
    "write_captions",
    "CIFAR10DataModule",
    "DigitScenesDataModule",
    "scene_caption",
    "scene_digits",
    "CelebADataModule",
    "LaionDataModule",
    "LaionFilters",
    "MovingDigitsDataModule",
    "motion_phrases",
    "OpenImagesDataModule",
    "render_semantic_map",
    "load_cifar10",
    "DigitsDataModule",
    "ImageDataModule",
    "TensorImageDataset",
    "load_digits_uint8",
    "to_uint8",
    "to_unit_range",
]
