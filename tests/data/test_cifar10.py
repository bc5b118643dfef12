from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from fixtures.formats import cifar_arrays, write_cifar_parquet, write_cifar_python, write_cifar_tarball

from lit_genvision.data import CIFAR10DataModule, load_cifar10


def test_python_batches_round_trip(tmp_path):
    write_cifar_python(tmp_path, per_batch=6)
    data = load_cifar10(tmp_path)
    x, y = data["train"]
    assert x.shape == (30, 3, 32, 32) and x.dtype == torch.uint8 and y.shape == (30,)
    raw, labels = cifar_arrays(6, 0)  # data_batch_1
    np.testing.assert_array_equal(x[:6].numpy(), raw.reshape(6, 3, 32, 32))  # official row layout: R, G, B planes
    assert y[:6].tolist() == labels
    assert data["test"][0].shape == (6, 3, 32, 32)


def test_tarball_equals_folder(tmp_path):
    write_cifar_tarball(tmp_path / "t", per_batch=4)
    write_cifar_python(tmp_path / "f", per_batch=4)
    a, b = load_cifar10(tmp_path / "t"), load_cifar10(tmp_path / "f")
    for split in ("train", "test"):
        assert torch.equal(a[split][0], b[split][0]) and torch.equal(a[split][1], b[split][1])


def test_hugging_face_parquet(tmp_path):
    write_cifar_parquet(tmp_path, n=5)
    data = load_cifar10(tmp_path)
    raw, labels = cifar_arrays(5, 10)
    np.testing.assert_array_equal(data["train"][0].numpy(), raw.reshape(5, 3, 32, 32))
    assert data["train"][1].tolist() == labels


def test_missing_dataset_names_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py/ with data_batch_1..5"):
        load_cifar10(tmp_path)


def test_missing_batch_is_named(tmp_path):
    folder = write_cifar_python(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="lacks data_batch_3"):
        load_cifar10(tmp_path)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    folder = write_cifar_python(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(ValueError, match="data_batch_2 is not a valid python batch"):
        load_cifar10(tmp_path)


def test_wrong_shape_is_a_clear_error(tmp_path):
    folder = write_cifar_python(tmp_path)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}, f)
    with pytest.raises(ValueError, match="expected N×3072"):
        load_cifar10(tmp_path)


def test_datamodule_splits_and_device_augmentation(tmp_path):
    write_cifar_python(tmp_path, per_batch=10)
    dm = CIFAR10DataModule(root=str(tmp_path), batch_size=8, val_size=10, augment_crop=4, augment_flip=True)
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 40, "val": 10, "test": 10}
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (8, 3, 32, 32)
    out = dm.on_after_batch_transfer(dict(batch), 0)  # no trainer: no augmentation
    torch.testing.assert_close(out["image"], batch["image"].float() / 127.5 - 1)
