"""DigitScenesDataModule: shapes, determinism, split disjointness, boxes vs ink, captions, padding."""

from __future__ import annotations

import pytest
import torch

from lit_genvision.data.captions import caption_digit
from lit_genvision.data.scenes import INK_THRESHOLD, DigitScenesDataModule, scene_caption, scene_digits

SMALL = {"train": 300, "val": 60, "test": 120}


@pytest.fixture(scope="module")
def dm() -> DigitScenesDataModule:
    module = DigitScenesDataModule(batch_size=16, scenes_per_split=SMALL, seed=0)
    module.setup()
    return module


def fields(dm: DigitScenesDataModule, split: str = "train") -> dict:
    return dm.split(split).fields


def test_batch_shapes_and_dtypes(dm):
    batch = next(iter(dm.train_dataloader()))
    s, m, b = 32, 3, 16
    assert batch["image"].shape == (b, 1, s, s) and batch["image"].dtype == torch.uint8
    assert batch["boxes"].shape == (b, m, 4) and batch["boxes"].dtype == torch.float32
    assert batch["box_labels"].shape == (b, m) and batch["box_labels"].dtype == torch.int64
    assert batch["semantic_map"].shape == (b, s, s) and batch["semantic_map"].dtype == torch.int64
    assert batch["label"].shape == (b,) and batch["label"].dtype == torch.int64
    assert batch["id"].shape == (b,) and batch["id"].dtype == torch.int64
    assert batch["digit_ids"].shape == (b, m) and batch["digit_ids"].dtype == torch.int64
    assert isinstance(batch["text"], list) and len(batch["text"]) == b
    assert all(isinstance(t, str) for t in batch["text"])
    assert dm.image_shape == (1, s, s)
    assert set(dm.provides) <= set(batch)


def test_same_seed_gives_identical_scenes(dm):
    other = DigitScenesDataModule(batch_size=16, scenes_per_split=SMALL, seed=0)
    for split in ("train", "val", "test"):
        a, b = fields(dm, split), fields(other, split)
        assert a.keys() == b.keys()
        for key in a:
            if key == "text":
                assert a[key] == b[key]
            else:
                assert torch.equal(a[key], b[key]), key
    assert other.caption_corpus("val") == dm.caption_corpus("val")


def test_splits_use_disjoint_source_digits(dm):
    used = {}
    for split in ("train", "val", "test"):
        ids = fields(dm, split)["digit_ids"]
        used[split] = set(ids[ids >= 0].tolist())
    assert not used["test"] & used["train"]
    assert not used["val"] & used["train"]
    assert not used["val"] & used["test"]


def test_semantic_map_pixels_of_class_k_lie_inside_a_box_labelled_k(dm):
    f = fields(dm)
    s = dm.image_size
    centre = (torch.arange(s) + 0.5) / s
    for sem, boxes, labels in zip(f["semantic_map"], f["boxes"], f["box_labels"], strict=True):
        covered = torch.zeros(s, s, dtype=torch.bool)
        for box, k in zip(boxes, labels.tolist(), strict=True):
            if k < 0:
                continue
            x0, y0, x1, y1 = box.tolist()
            inside = ((centre >= y0) & (centre < y1))[:, None] & ((centre >= x0) & (centre < x1))[None, :]
            covered |= inside & (sem == k)
        assert torch.equal(covered, sem > 0)


def test_single_digit_box_is_the_tight_box_of_its_ink(dm):
    f = fields(dm)
    s = dm.image_size
    single = ((f["box_labels"] >= 0).sum(1) == 1).nonzero().flatten()
    assert len(single) > 10
    for i in single.tolist():
        ink = f["image"][i, 0] > INK_THRESHOLD
        assert torch.equal(ink, f["semantic_map"][i] > 0)
        rows, cols = ink.any(1).nonzero().flatten(), ink.any(0).nonzero().flatten()
        tight = torch.tensor([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]) / s
        assert torch.allclose(f["boxes"][i, 0], tight)
        assert f["semantic_map"][i][ink].unique().tolist() == [f["box_labels"][i, 0].item()]


def test_two_digit_caption_relation_agrees_with_box_centres(dm):
    f = fields(dm)
    two = ((f["box_labels"] >= 0).sum(1) == 2).nonzero().flatten().tolist()
    assert len(two) > 10
    for i in two:
        (cx0, cy0), (cx1, cy1) = ((f["boxes"][i, :2, :2] + f["boxes"][i, :2, 2:]) / 2).tolist()
        text = f["text"][i]
        vertical = abs(cy1 - cy0) > abs(cx1 - cx0)
        if " above " in text:
            assert vertical and cy0 < cy1
        elif " below " in text:
            assert vertical and cy0 > cy1
        elif " to the left of " in text:
            assert not vertical and cx0 < cx1
        else:
            assert " to the right of " in text and not vertical and cx0 > cx1


def test_scene_digits_roundtrips_captions(dm):
    f = fields(dm)
    for text, labels in zip(f["text"], f["box_labels"], strict=True):
        assert scene_digits(text) == [k - 1 for k in labels.tolist() if k >= 0]
    assert scene_digits(scene_caption([8, 0, 3], [(0.1, 0.1), (0.5, 0.5), (0.9, 0.9)])) == [8, 0, 3]
    assert scene_caption([3, 7], [(0.5, 0.2), (0.5, 0.8)]) == "a 3 above a 7"
    assert scene_caption([8], [(0.5, 0.5)]) == "an 8"
    assert scene_digits("a seven to the left of a 2") == [7, 2]
    assert caption_digit("a 3 above a 7") is None  # single-digit parsing is not for scenes


def test_number_of_objects_within_min_and_max():
    module = DigitScenesDataModule(min_objects=2, max_objects=3, scenes_per_split={"train": 200, "val": 10, "test": 10})
    f = fields(module)
    n = (f["box_labels"] >= 0).sum(1)
    assert n.min() >= 2 and n.max() <= 3 and set(n.tolist()) == {2, 3}
    assert torch.equal(n, (f["digit_ids"] >= 0).sum(1))
    assert [len(scene_digits(t)) for t in f["text"]] == n.tolist()
    with pytest.raises(ValueError, match="min_objects"):
        DigitScenesDataModule(min_objects=3, max_objects=2)


def test_padding_follows_openimages_conventions(dm):
    f = fields(dm)
    pad = f["box_labels"] < 0
    assert pad.any()
    assert (f["box_labels"][pad] == -1).all()  # box_labels: -1-padded
    assert (f["boxes"][pad] == 0).all()  # boxes: zero rows
    assert (f["digit_ids"][pad] == -1).all()
    real = ~pad
    assert (f["box_labels"][real] >= 1).all() and (f["box_labels"][real] <= 10).all()  # 0 is background
    assert (f["boxes"][real] >= 0).all() and (f["boxes"][real] <= 1).all()  # fractions of the side
    assert (f["boxes"][real][:, 2:] > f["boxes"][real][:, :2]).all()
    assert (f["semantic_map"] == 0).any() and f["semantic_map"].max() <= 10
    assert torch.equal(f["label"], f["box_labels"][:, 0] - 1)  # the first (largest) digit, 0 … 9
    assert dm.num_classes == 11 and dm.class_names[0] == "background"
    # real rows are sorted largest first, so the padding sits at the end
    area = (f["boxes"][..., 2] - f["boxes"][..., 0]) * (f["boxes"][..., 3] - f["boxes"][..., 1])
    assert (area[:, :-1] >= area[:, 1:]).all()


def test_batch_passes_loader_and_device_transform_with_text_intact(dm):
    batch = next(iter(dm.val_dataloader()))
    out = dm.device_transform(batch, training=False)
    assert out["image"].dtype == torch.float32
    assert out["image"].min() >= -1 and out["image"].max() <= 1
    assert out["image"].min() == -1 and out["image"].max() > 0
    assert out["text"] == batch["text"] == dm.caption_corpus("val")[: len(batch["text"])]
    assert torch.equal(out["semantic_map"], batch["semantic_map"])
