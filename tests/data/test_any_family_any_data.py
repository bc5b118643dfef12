"""Any model trains from any data module through config alone: the DDPM configs for CIFAR-10 and
CelebA, and the CIFAR-10 config pointed at a LAION stream, each on a fixture in the real format."""

from __future__ import annotations

import pytest
import torch
from fixtures.formats import laion_samples, write_celeba, write_cifar_python, write_laion_tar
from tests_helpers import ROOT

from lit_genvision.cli import main

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


def test_ddpm_on_cifar10_python_batches(tmp_path):
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
    assert ckpt["global_step"] == 2


def test_ddpm_on_celeba(tmp_path):
    write_celeba(tmp_path / "data", n=12)
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
    assert ckpt["global_step"] == 2


@pytest.mark.parametrize("workers", [0])
def test_ddpm_on_a_laion_stream(tmp_path, workers):
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
    assert ckpt["global_step"] == 2


def test_ddpm_on_open_images(tmp_path):
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
    assert ckpt["global_step"] == 2
