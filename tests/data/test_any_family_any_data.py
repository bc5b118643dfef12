"""Any model trains from any data module through config alone: the DDPM configs for CIFAR-10 and
CelebA, and the CIFAR-10 config pointed at a LAION stream, each on a fixture in the real format.

Each test spies on ``DenoisingModel.training_step`` and checks that the model was fed that data
module's batches (its keys, the image shape and range, content only that fixture holds), that the
loss on them was finite, and that the optimiser moved the weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fixtures.formats import cifar_arrays, laion_samples, write_celeba, write_cifar_python, write_laion_tar
from tests_helpers import ROOT

from lit_genvision.cli import main
from lit_genvision.models import DenoisingModel

TINY_NET = [
    "--model.init_args.net.init_args.channels",
    "8",
    "--model.init_args.net.init_args.channel_mults",
    "[1, 2]",
    "--model.init_args.net.init_args.depth",
    "1",
    "--model.init_args.net.init_args.attention_at",
    "[]",
    "--model.init_args.net.init_args.norm_groups",
    "4",
    "--model.init_args.net.init_args.dropout",
    "0.0",
]


@pytest.fixture
def seen(monkeypatch) -> dict:
    """Records what ``DenoisingModel.training_step`` is given: the weights before the first step,
    each batch, each loss and the trainer's data module."""
    record: dict = {"batches": [], "losses": []}
    original = DenoisingModel.training_step

    def spy(self, batch, batch_idx):
        if not record["batches"]:
            record["before"] = {k: v.detach().clone() for k, v in self.state_dict().items()}
            record["datamodule"] = self.trainer.datamodule
        record["batches"].append({k: v.detach().clone() if torch.is_tensor(v) else v for k, v in batch.items()})
        loss = original(self, batch, batch_idx)
        record["losses"].append(loss.detach().item())
        return loss

    monkeypatch.setattr(DenoisingModel, "training_step", spy)
    return record


def _fit(tmp_path, config: str, extra: list[str]) -> dict:
    main(
        [
            "fit",
            "--config",
            str(ROOT / "configs" / config),
            *TINY_NET,
            *extra,
            "--trainer.max_steps",
            "2",
            "--trainer.precision",
            "32",
            "--trainer.val_check_interval",
            "null",
            "--trainer.check_val_every_n_epoch",
            "1",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
            "--trainer.logger.init_args.name",
            "run",
        ]
    )
    ckpt = tmp_path / "run" / "version_0" / "checkpoints" / "last.ckpt"
    return torch.load(ckpt, weights_only=True)


def assert_trained_on(seen: dict, ckpt: dict, module: str, batch_size: int, image_size: int) -> list[dict]:
    """Two optimiser steps, each on a batch of ``module`` (its keys; RGB images of that size in
    [-1, 1]) with a finite loss, and weights that differ from those before the first step."""
    assert ckpt["global_step"] == 2 and len(seen["batches"]) == 2
    dm = seen["datamodule"]
    assert type(dm).__name__ == module
    for batch in seen["batches"]:
        assert set(dm.provides) <= set(batch)
        image = batch["image"]
        assert image.shape == (batch_size, 3, image_size, image_size) and image.dtype == torch.float32
        assert image.min() >= -1 and image.max() <= 1 and image.std() > 0.05
    assert all(math.isfinite(loss) for loss in seen["losses"])
    after = ckpt["state_dict"]
    moved = [k for k, v in seen["before"].items() if v.is_floating_point() and not torch.equal(v, after[k])]
    assert any(k.startswith("net.") for k in moved), "no network weight changed in two optimiser steps"
    return seen["batches"]


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return ((image + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def test_ddpm_on_cifar10_python_batches(tmp_path, seen):
    write_cifar_python(tmp_path / "data", per_batch=8)
    ckpt = _fit(
        tmp_path,
        "diffusion/cifar10.yaml",
        [
            "--data.init_args.root",
            str(tmp_path / "data"),
            "--data.init_args.val_size",
            "4",
            "--data.init_args.batch_size",
            "4",
        ],
    )
    batches = assert_trained_on(seen, ckpt, "CIFAR10DataModule", 4, 32)
    # every image is one of the fixture's training images (data_batch_1..5), or its mirror (augment_flip)
    fixture = {}
    for i in range(5):  # data_batch_{i + 1} holds cifar_arrays(8, i)
        data, labels = cifar_arrays(8, i)
        for row, label in zip(data.reshape(-1, 3, 32, 32), labels, strict=True):
            fixture[row.tobytes()] = fixture[row[..., ::-1].tobytes()] = label
    for batch in batches:
        for image, label in zip(to_uint8(batch["image"]), batch["label"].tolist(), strict=True):
            assert fixture.get(image.tobytes()) == label


def test_ddpm_on_celeba(tmp_path, seen):
    attrs = write_celeba(tmp_path / "data", n=12)
    ckpt = _fit(
        tmp_path,
        "diffusion/celeba.yaml",
        [
            "--data.init_args.root",
            str(tmp_path / "data"),
            "--data.init_args.image_size",
            "16",
            "--model.init_args.net.init_args.image_size",
            "16",
            "--data.init_args.batch_size",
            "2",
            "--data.init_args.num_workers",
            "0",
        ],
    )
    batches = assert_trained_on(seen, ckpt, "CelebADataModule", 2, 16)
    rows = {tuple((v + 1) // 2 for v in values) for values in attrs.values()}
    for batch in batches:
        assert {tuple(int(v) for v in a.tolist()) for a in batch["attributes"]} <= rows
        # the fixture's faces: a bright centre square on a dark border
        assert (batch["image"][:, :, 7:9, 7:9] > 0).all() and (batch["image"][:, :, 0, 0] < -0.5).all()


@pytest.mark.parametrize("workers", [0])
def test_ddpm_on_a_laion_stream(tmp_path, workers, seen):
    samples = [s for k in range(2) for s in laion_samples(6, seed=k)]
    for k in range(2):
        write_laion_tar(tmp_path / "data" / f"{k:05d}.tar", laion_samples(6, seed=k))
    ckpt = _fit(
        tmp_path,
        "diffusion/cifar10.yaml",
        [
            "--data",
            "lit_genvision.data.LaionDataModule",
            "--data.init_args.root",
            str(tmp_path / "data"),
            "--data.init_args.image_size",
            "32",
            "--data.init_args.val_shards",
            "1",
            "--data.init_args.batch_size",
            "2",
            "--data.init_args.num_workers",
            str(workers),
        ],
    )
    batches = assert_trained_on(seen, ckpt, "LaionDataModule", 2, 32)
    captions = {s["txt"] for s in samples}
    for batch in batches:
        assert len(batch["text"]) == 2 and set(batch["text"]) <= captions


def test_ddpm_on_open_images(tmp_path, seen):
    from fixtures.openimages import write_openimages

    write_openimages(tmp_path / "data")
    ckpt = _fit(
        tmp_path,
        "diffusion/cifar10.yaml",
        [
            "--data",
            "lit_genvision.data.OpenImagesDataModule",
            "--data.init_args.root",
            str(tmp_path / "data"),
            "--data.init_args.image_size",
            "32",
            "--data.init_args.batch_size",
            "2",
        ],
    )
    batches = assert_trained_on(seen, ckpt, "OpenImagesDataModule", 2, 32)
    num_classes = len(seen["datamodule"].class_names)  # background (0) included
    for batch in batches:
        labels = batch["box_labels"]
        assert ((labels >= 1) & (labels < num_classes) | (labels == -1)).all() and (
            (labels >= 1).sum(1) >= 1
        ).all()  # ≥ 1 box each
        assert batch["semantic_map"].shape[-2:] == (32, 32) and batch["semantic_map"].max() < num_classes
