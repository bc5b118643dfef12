from __future__ import annotations

import pytest
import torch
from fixtures.formats import CELEBA_ATTRIBUTES, write_celeba

from lit_genvision.data.celeba import CelebADataModule


def test_reads_official_layout(tmp_path):
    attrs = write_celeba(tmp_path, n=12)
    dm = CelebADataModule(root=str(tmp_path), image_size=32, crop=140, batch_size=4, num_workers=0)
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 8, "val": 2, "test": 2}
    assert dm.attribute_names == CELEBA_ATTRIBUTES
    item = dm.split("train")[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.uint8
    expected = torch.tensor([v > 0 for v in attrs["000001.jpg"]], dtype=torch.float32)
    torch.testing.assert_close(item["attributes"], expected)
    # the 140-pixel centre crop keeps the bright square and a little of the dark border
    assert item["image"][:, 16, 16].float().mean() > 100 and item["image"][:, 0, 0].float().mean() < 60


def test_batches_follow_the_contract(tmp_path):
    write_celeba(tmp_path)
    dm = CelebADataModule(root=str(tmp_path), image_size=16, batch_size=4, num_workers=0)
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["image"].shape == (4, 3, 16, 16) and -1 <= batch["image"].min() and batch["image"].max() <= 1
    assert batch["attributes"].shape == (4, 40)


def test_attribute_subset(tmp_path):
    attrs = write_celeba(tmp_path, n=12)
    col = CELEBA_ATTRIBUTES.index("Smiling")
    dm = CelebADataModule(root=str(tmp_path), attributes={"Smiling": True}, num_workers=0)
    dm.setup()
    kept = sum(len(s) for s in dm.splits.values())
    assert kept == sum(v[col] > 0 for v in attrs.values())
    assert all(s.attributes[:, col].eq(1).all() for s in dm.splits.values() if len(s))


def test_missing_file_names_the_layout(tmp_path):
    write_celeba(tmp_path)
    (tmp_path / "list_eval_partition.txt").unlink()
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt is missing; expected img_align_celeba"):
        CelebADataModule(root=str(tmp_path)).setup()


def test_label_rows_that_do_not_match_images(tmp_path):
    write_celeba(tmp_path)
    (tmp_path / "img_align_celeba" / "000003.jpg").unlink()
    with pytest.raises(ValueError, match="1 images listed in list_attr_celeba.txt are not in .* 000003.jpg"):
        CelebADataModule(root=str(tmp_path)).setup()


def test_malformed_attribute_row(tmp_path):
    write_celeba(tmp_path)
    path = tmp_path / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[4] = lines[4] + " 1"
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match="line 5 has 41 values; expected 40"):
        CelebADataModule(root=str(tmp_path)).setup()


def test_unknown_attribute_in_filter(tmp_path):
    write_celeba(tmp_path)
    with pytest.raises(ValueError, match="unknown CelebA attribute.*Grinning"):
        CelebADataModule(root=str(tmp_path), attributes={"Grinning": True}).setup()


def test_corrupt_image_is_skipped_counted_and_warned(tmp_path):
    write_celeba(tmp_path)
    bad = tmp_path / "img_align_celeba" / "000001.jpg"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated JPEG
    dm = CelebADataModule(root=str(tmp_path), image_size=16, batch_size=8, num_workers=0)
    dm.setup()
    with pytest.warns(UserWarning, match="skipped unreadable CelebA image .*000001.jpg"):
        batch = next(iter(dm.make_loader(dm.split("train"), shuffle=False)))
    assert batch["image"].shape[0] == 8
    assert dm.split("train").skipped.count == 1
