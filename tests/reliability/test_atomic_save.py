"""Defect 3: a checkpoint is written to a temporary file beside its target, fsynced and renamed,
so a kill at any moment leaves the previous checkpoint whole, whatever filesystem $TMPDIR is on."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from tests_helpers import tiny_diffusion_args

from lit_genvision.checkpoint_io import SafeCheckpointIO
from lit_genvision.cli import main


@pytest.fixture
def tmpdir_elsewhere(tmp_path, monkeypatch) -> Path:
    """$TMPDIR on another filesystem when the machine has one (/dev/shm), else a folder that does
    not exist: either way a temporary file there cannot be renamed onto the target atomically."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != tmp_path.stat().st_dev:
        elsewhere = Path(tempfile.mkdtemp(dir=shm))
    else:
        elsewhere = tmp_path / "no-such-tmp"
    monkeypatch.setenv("TMPDIR", str(elsewhere))
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
    return elsewhere


def test_the_temporary_file_is_renamed_from_beside_the_target(tmp_path, tmpdir_elsewhere, monkeypatch):
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renames.append((Path(a), Path(b))), real_replace(a, b)))
    target = tmp_path / "run" / "last.ckpt"
    SafeCheckpointIO().save_checkpoint({"w": torch.arange(3)}, target)
    assert renames == [(renames[0][0], target)] and renames[0][0].parent == target.parent
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.arange(3))
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]


def test_a_kill_mid_write_leaves_the_previous_checkpoint(tmp_path, tmpdir_elsewhere, monkeypatch):
    target = tmp_path / "last.ckpt"
    SafeCheckpointIO().save_checkpoint({"w": torch.zeros(1000)}, target)
    good = target.read_bytes()
    real_save = torch.save

    def killed_halfway(obj, f, *args, **kwargs):
        real_save({"partial": torch.ones(10)}, f)  # some bytes reach the temporary file, then the kill
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_halfway)
    with pytest.raises(KeyboardInterrupt):
        SafeCheckpointIO().save_checkpoint({"w": torch.ones(1000)}, target)
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left behind


class CheckpointIOSpy(Callback):
    def on_fit_start(self, trainer, pl_module) -> None:
        self.io = trainer.strategy.checkpoint_io


def test_fit_writes_its_checkpoints_through_the_atomic_writer(tmp_path, tmpdir_elsewhere):
    spy = CheckpointIOSpy()
    assert main(["fit", *tiny_diffusion_args(tmp_path, max_steps=4)], callbacks=[spy]) == 0
    assert isinstance(spy.io, SafeCheckpointIO)
    ckpt = tmp_path / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 4
