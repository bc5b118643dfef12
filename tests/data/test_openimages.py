from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
import torch
from fixtures.openimages import (
    BBOX_HEADER,
    CLASSES,
    COLOURS,
    LAYOUTS,
    MID,
    write_bbox_csv,
    write_class_descriptions,
    write_openimages,
)
from torch.utils.data import DistributedSampler

from lit_genvision.data.base import ResumableSampler
from lit_genvision.data.openimages import OpenImagesDataModule, flip_layouts, render_semantic_map

ALL_NAMES = ["background", *(name for _, name in CLASSES)]


def dm_for(root, **kwargs) -> OpenImagesDataModule:
    kwargs = {"image_size": 16, "batch_size": 4, "num_workers": 0} | kwargs
    dm = OpenImagesDataModule(root=str(root), **kwargs)
    dm.setup()
    return dm


def item_of(dm: OpenImagesDataModule, split: str, image_id: str) -> dict:
    ds = dm.split(split)
    return ds[list(ds.image_ids).index(image_id)]


def expected_boxes(rows: list[dict], index: dict[str, int]) -> tuple[list[list[float]], list[int]]:
    """[xmin, ymin, xmax, ymax] and class indices of the CSV rows whose class is chosen, in file order."""
    kept = [r for r in rows if r["LabelName"] in index]
    boxes = [[float(r["XMin"]), float(r["YMin"]), float(r["XMax"]), float(r["YMax"])] for r in kept]
    return boxes, [index[r["LabelName"]] for r in kept]


def check_item(item: dict, rows: list[dict], index: dict[str, int], size: int = 16, max_boxes: int = 16) -> None:
    assert item["image"].shape == (3, size, size) and item["image"].dtype == torch.uint8
    assert item["boxes"].shape == (max_boxes, 4) and item["boxes"].dtype == torch.float32
    assert item["box_labels"].shape == (max_boxes,) and item["box_labels"].dtype == torch.int64
    assert item["semantic_map"].shape == (size, size) and item["semantic_map"].dtype == torch.int64
    boxes, labels = expected_boxes(rows, index)
    n = len(labels)
    torch.testing.assert_close(item["boxes"][:n], torch.tensor(boxes))
    assert item["box_labels"][:n].tolist() == labels
    assert item["boxes"][n:].eq(0).all() and item["box_labels"][n:].eq(-1).all()


def test_reads_the_real_layout(tmp_path):
    ann = write_openimages(tmp_path)  # 6 train, 3 validation, no test
    dm = dm_for(tmp_path)
    assert dm.class_names == ALL_NAMES and dm.num_classes == 7
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 6, "val": 3, "test": 3}
    assert dm.splits["test"] is dm.splits["val"]
    index = {mid: i for i, (mid, _) in enumerate(CLASSES, start=1)}
    first = next(iter(ann["train"]))  # LAYOUTS[0]: a dog (2) with a cat (3) in front, 40×30
    item = item_of(dm, "train", first)
    check_item(item, ann["train"][first], index)
    assert item["box_labels"][:2].tolist() == [2, 3]
    torch.testing.assert_close(item["boxes"][:2], torch.tensor([[0.125, 0.125, 0.875, 0.875], [0.5, 0.5, 0.75, 0.75]]))
    for split, folder in (("train", "train"), ("val", "validation")):
        for image_id, rows in ann[folder].items():
            check_item(item_of(dm, split, image_id), rows, index)


def test_semantic_map_matches_the_image(tmp_path):
    ann = write_openimages(tmp_path, {"train": 6})
    dm = dm_for(tmp_path, image_size=16)
    ds = dm.split("train")
    for image_id in ds.image_ids:
        k = list(ann["train"]).index(str(image_id))
        item = item_of(dm, "train", str(image_id))
        smap, image = item["semantic_map"], item["image"].float()
        assert torch.equal(smap, render_semantic_map(item["boxes"], item["box_labels"], 16))
        # resized without a crop: inside each class region (away from its edges) the image has that class's colour
        inner = smap.clone()
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            inner[smap != smap.roll((dy, dx), (0, 1))] = -1
        present = {ALL_NAMES.index(name) for name, *_ in LAYOUTS[k % len(LAYOUTS)]}
        assert set(smap.unique().tolist()) - {0} == present
        for c in present:
            mask = inner == c
            if mask.any():
                mean = image[:, mask].mean(1)
                assert (mean - torch.tensor(COLOURS[ALL_NAMES[c]], dtype=torch.float32)).abs().max() < 40, (c, mean)


def test_render_semantic_map_by_hand():
    boxes = torch.tensor(
        [
            [0.5, 0.5, 0.75, 1.0],  # class 2, small: listed first but painted last
            [0.0, 0.0, 0.75, 0.75],  # class 1, large
            [0.88, 0.26, 0.92, 0.30],  # class 3, holds no pixel centre: keeps the pixel of its middle
            [0.0, 0.0, 1.0, 1.0],  # padding (label -1): ignored
        ]
    )
    labels = torch.tensor([2, 1, 3, -1])
    expected = torch.tensor(
        [
            [1, 1, 1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 1, 0, 3],
            [1, 1, 1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 2, 2, 0, 0],
            [1, 1, 1, 1, 2, 2, 0, 0],
            [0, 0, 0, 0, 2, 2, 0, 0],
            [0, 0, 0, 0, 2, 2, 0, 0],
        ]
    )
    out = render_semantic_map(boxes, labels, 8)
    assert out.dtype == torch.int64 and torch.equal(out, expected)
    assert torch.equal(render_semantic_map(boxes.flip(0), labels.flip(0), 8), expected)  # order by area, not by row
    assert render_semantic_map(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 4).eq(0).all()


def test_class_subset_filters_images_and_renumbers(tmp_path):
    ann = write_openimages(tmp_path)
    dm = dm_for(tmp_path, classes=["Cat", "Dog"])
    assert dm.class_names == ["background", "Cat", "Dog"]
    index = {MID["Cat"]: 1, MID["Dog"]: 2}
    for split, folder in (("train", "train"), ("val", "validation")):
        expected = [i for i, rows in ann[folder].items() if any(r["LabelName"] in index for r in rows)]
        assert sorted(dm.split(split).image_ids.tolist()) == sorted(expected)
        for image_id in expected:
            item = item_of(dm, split, image_id)
            check_item(item, ann[folder][image_id], index)
            assert set(item["semantic_map"].unique().tolist()) <= {0, 1, 2}
    assert len(dm.split("train")) == 4 and len(dm.split("val")) == 2  # the car-only and person-only images go
    other = sum(
        r["LabelName"] not in index for rows in (*ann["train"].values(), *ann["validation"].values()) for r in rows
    )
    assert dm.skipped_rows["other_class"] == other


@pytest.mark.parametrize("version", ["v6", "v7"])
def test_class_file_with_and_without_header(tmp_path, version):
    ann = write_openimages(tmp_path, class_file=version)
    assert (tmp_path / "oidv7-class-descriptions-boxable.csv").is_file() == (version == "v7")
    dm = dm_for(tmp_path)
    assert dm.class_names == ALL_NAMES  # the v7 header is not a class
    sub = dm_for(tmp_path, classes=["Dog"])
    first = next(iter(ann["train"]))
    assert item_of(sub, "train", first)["box_labels"][:2].tolist() == [1, -1]


def test_oidv6_names_xclick_columns_and_images_folder(tmp_path):
    a = write_openimages(tmp_path / "a", images_dir=True, oidv6_names=True)
    b = write_openimages(tmp_path / "b")
    assert (tmp_path / "a" / "images" / "train").is_dir()
    assert (tmp_path / "a" / "oidv6-train-annotations-bbox.csv").is_file()
    dma, dmb = dm_for(tmp_path / "a"), dm_for(tmp_path / "b")
    assert list(a["train"]) == list(b["train"])  # same seed, same ImageIDs
    for split in ("train", "val"):
        ia, ib = dma.split(split)[0], dmb.split(split)[0]
        assert all(torch.equal(ia[k], ib[k]) for k in ia)


def test_val_held_out_from_train_when_no_validation_folder(tmp_path):
    ann = write_openimages(tmp_path, {"train": 12})
    dm = dm_for(tmp_path, seed=3)
    train, val = set(dm.split("train").image_ids.tolist()), set(dm.split("val").image_ids.tolist())
    assert len(val) == 1 and len(train) == 11 and not train & val and train | val == set(ann["train"])
    assert dm.splits["test"] is dm.splits["val"]
    again = dm_for(tmp_path, seed=3)
    assert set(again.split("val").image_ids.tolist()) == val
    item = item_of(dm, "val", next(iter(val)))
    check_item(item, ann["train"][next(iter(val))], {mid: i for i, (mid, _) in enumerate(CLASSES, start=1)})


def test_own_test_split(tmp_path):
    ann = write_openimages(tmp_path, {"train": 6, "validation": 3, "test": 2})
    dm = dm_for(tmp_path)
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 6, "val": 3, "test": 2}
    assert sorted(dm.split("test").image_ids.tolist()) == sorted(ann["test"])


def test_max_boxes_keeps_the_first_rows(tmp_path):
    ann = write_openimages(tmp_path)
    dm = dm_for(tmp_path, max_boxes=1)
    third = list(ann["train"])[2]  # LAYOUTS[2]: cat, bicycle, person
    item = item_of(dm, "train", third)
    assert item["boxes"].shape == (1, 4) and item["box_labels"].tolist() == [ALL_NAMES.index("Cat")]
    extra = sum(max(len(rows) - 1, 0) for split in ann.values() for rows in split.values())
    assert dm.skipped_rows["over_max_boxes"] == extra


def test_degenerate_box_rows_are_skipped_and_counted(tmp_path):
    ann = write_openimages(tmp_path, {"train": 6})
    rows = [r for image_id in sorted(ann["train"]) for r in ann["train"][image_id]]
    rows[0] = rows[0] | {"XMax": rows[0]["XMin"]}
    write_bbox_csv(tmp_path / "train-annotations-bbox.csv", rows)
    dm = dm_for(tmp_path)
    assert dm.skipped_rows["degenerate"] == 1


def test_one_batch_through_the_loader(tmp_path):
    write_openimages(tmp_path)
    dm = OpenImagesDataModule(root=str(tmp_path), image_size=16, max_boxes=8, batch_size=4)
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, ResumableSampler)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["image"].dtype == torch.uint8
    assert batch["boxes"].shape == (4, 8, 4) and batch["box_labels"].shape == (4, 8)
    assert batch["semantic_map"].shape == (4, 16, 16) and batch["semantic_map"].dtype == torch.int64
    out = dm.on_after_batch_transfer(batch, 0)
    assert out["image"].dtype == torch.float32 and -1 <= out["image"].min() and out["image"].max() <= 1
    torch.testing.assert_close(out["image"], batch["image"].float() / 127.5 - 1)
    assert torch.equal(out["boxes"], batch["boxes"]) and torch.equal(out["semantic_map"], batch["semantic_map"])
    val = dm.val_dataloader()
    assert isinstance(val.sampler, DistributedSampler) and not val.sampler.shuffle
    assert sum(len(b["image"]) for b in val) == 3


def test_flips_keep_boxes_and_map_aligned(tmp_path):
    write_openimages(tmp_path)
    dm = OpenImagesDataModule(root=str(tmp_path), image_size=16, batch_size=6, augment_flip=True)
    batch = next(iter(dm.make_loader(dm.split("train"), shuffle=False)))
    dm.trainer = SimpleNamespace(training=True, global_rank=0, world_size=1)
    torch.manual_seed(0)
    out = dm.on_after_batch_transfer(batch, 0)
    image = batch["image"].float() / 127.5 - 1
    flipped = [not torch.equal(out["image"][i], image[i]) for i in range(6)]
    assert any(flipped) and not all(flipped)
    for i, f in enumerate(flipped):
        real = batch["box_labels"][i] >= 0
        if not f:
            assert torch.equal(out["semantic_map"][i], batch["semantic_map"][i])
            assert torch.equal(out["boxes"][i], batch["boxes"][i])
            continue
        torch.testing.assert_close(out["image"][i], image[i].flip(-1))
        b = out["boxes"][i]
        # the mirrored boxes render the mirrored map, and the padding stays zero
        assert torch.equal(render_semantic_map(b, batch["box_labels"][i], 16), batch["semantic_map"][i].flip(-1))
        assert torch.equal(out["semantic_map"][i], batch["semantic_map"][i].flip(-1))
        assert b[~real].eq(0).all() and (b[real, 2] > b[real, 0]).all()
    again = [flip_layouts(out, torch.Generator().manual_seed(1)) for _ in range(2)]  # seeded: reproducible
    assert all(torch.equal(again[0][k], again[1][k]) for k in out)


@pytest.mark.parametrize(
    "remove, match",
    [
        (".", "Open Images root .* does not exist; expected train/<ImageID>.jpg"),
        ("train", "no train/ image folder under .*; expected train/<ImageID>.jpg"),
        ("validation-annotations-bbox.csv", "no validation-annotations-bbox.csv .*; expected train/<ImageID>.jpg"),
        ("train-annotations-bbox.csv", "no train-annotations-bbox.csv .*; expected train/<ImageID>.jpg"),
        ("class-descriptions-boxable.csv", "no class-descriptions-boxable.csv or oidv7-.*; expected train/"),
    ],
)
def test_missing_file_names_the_layout(tmp_path, remove, match):
    root = tmp_path / "oi"
    write_openimages(root)
    path = root / remove
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    with pytest.raises(FileNotFoundError, match=match):
        dm_for(root)


def test_unexpected_csv_columns(tmp_path):
    ann = write_openimages(tmp_path, {"train": 6})
    rows = [r | {"Score": "0.5"} for rows in ann["train"].values() for r in rows]
    write_bbox_csv(tmp_path / "train-annotations-bbox.csv", rows, (*BBOX_HEADER, "Score"))
    with pytest.raises(ValueError, match=r"unexpected column\(s\) Score; expected the header ImageID,Source"):
        dm_for(tmp_path)
    header = tuple(c for c in BBOX_HEADER if c not in ("XMax", "ImageID"))
    rows = [{k: v for k, v in r.items() if k in header} for r in rows]
    write_bbox_csv(tmp_path / "train-annotations-bbox.csv", rows, header)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) ImageID, XMax"):
        dm_for(tmp_path)


def test_unknown_class_name(tmp_path):
    write_openimages(tmp_path)
    with pytest.raises(ValueError, match="unknown Open Images class.*Unicorn; choose DisplayNames from class-desc"):
        dm_for(tmp_path, classes=["Dog", "Unicorn"])


def test_rows_without_image_file(tmp_path):
    ann = write_openimages(tmp_path)
    first = next(iter(ann["train"]))  # two boxes
    (tmp_path / "train" / f"{first}.jpg").unlink()
    with pytest.raises(ValueError, match=f"2 rows of train-annotations-bbox.csv name images .*first: {first}"):
        dm_for(tmp_path)


def test_only_the_chosen_classes_need_their_images(tmp_path):
    ann = write_openimages(tmp_path)
    car_only = list(ann["train"])[1]  # LAYOUTS[1]
    (tmp_path / "train" / f"{car_only}.jpg").unlink()
    assert len(dm_for(tmp_path, classes=["Dog"]).split("train")) == 3
    with pytest.raises(ValueError, match=f"1 rows .*first: {car_only}"):
        dm_for(tmp_path, classes=["Car"])


def test_corrupt_jpeg_is_skipped_counted_and_warned(tmp_path):
    write_openimages(tmp_path)
    dm = dm_for(tmp_path)
    ds = dm.split("train")
    bad = ds.path(2)
    good = ds[3]
    bad.write_bytes(bad.read_bytes()[:300])  # truncated JPEG
    with pytest.warns(UserWarning, match=f"skipped unreadable Open Images image .*{bad.name}"):
        item = ds[2]
    assert all(torch.equal(item[k], good[k]) for k in item)  # the next image stands in
    assert ds.skipped.count == 1
    batch = next(iter(dm.make_loader(ds, shuffle=False)))  # warned once per file: no second warning
    assert batch["image"].shape == (4, 3, 16, 16) and ds.skipped.count == 2


def test_every_image_corrupt_is_a_clear_error(tmp_path):
    write_openimages(tmp_path, {"train": 6})
    for path in (tmp_path / "train").iterdir():
        path.write_bytes(b"not a jpeg")
    ds = dm_for(tmp_path).split("train")
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="all 5 Open Images images failed to decode"):
        ds[4]


def test_malformed_class_file(tmp_path):
    write_openimages(tmp_path)
    (tmp_path / "class-descriptions-boxable.csv").write_text("/m/0bt9lr,Dog,extra\n")
    with pytest.raises(ValueError, match="line 1 .* expected two columns"):
        dm_for(tmp_path)
    write_class_descriptions(tmp_path, "v6")
    dm_for(tmp_path)
