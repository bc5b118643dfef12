"""Defect 1: every path into a checkpoint — local or URL, fit/validate/test/sample/evaluate/export —
goes through one safe loader: a pickle that would run code is refused and never runs."""

from __future__ import annotations

import shutil

import pytest
import torch
from tests_helpers import tiny_diffusion_args

from lit_genvision.checkpoint_io import CheckpointError, load_checkpoint_file
from lit_genvision.cli import main

from .conftest import malicious_copy


def test_the_payload_runs_when_unpickled_unsafely(tiny_checkpoint, tmp_path):
    """The control: the crafted file really is malicious."""
    marker = tmp_path / "ran"
    bad = malicious_copy(tiny_checkpoint, tmp_path / "bad.ckpt", marker)
    torch.load(bad, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("command", ["fit", "validate", "test"])
def test_trainer_commands_refuse_a_malicious_local_checkpoint(tiny_checkpoint, tmp_path, capsys, command):
    marker = tmp_path / "ran"
    bad = malicious_copy(tiny_checkpoint, tmp_path / "bad.ckpt", marker)
    rc = main([command, *tiny_diffusion_args(tmp_path, max_steps=25), "--ckpt_path", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not marker.exists()
    assert err[-1].startswith("error: checkpoint") and "cannot be loaded safely" in err[-1]


def test_fit_refuses_a_malicious_checkpoint_by_url(tiny_checkpoint, tmp_path, http_root, capsys):
    folder, url = http_root
    marker = tmp_path / "ran"
    malicious_copy(tiny_checkpoint, folder / "x.ckpt", marker)
    rc = main(["fit", *tiny_diffusion_args(tmp_path, max_steps=25), "--ckpt_path", f"{url}/x.ckpt"])
    assert rc == 2 and not marker.exists()
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said.startswith(f"error: checkpoint {url}/x.ckpt holds") and "cannot be loaded safely" in said


def test_fit_resumes_from_a_url(tiny_checkpoint, tmp_path, http_root):
    folder, url = http_root
    shutil.copy(tiny_checkpoint, folder / "last.ckpt")
    assert main(["fit", *tiny_diffusion_args(tmp_path, "url", max_steps=23), "--ckpt_path", f"{url}/last.ckpt"]) == 0
    final = torch.load(tmp_path / "url" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == 23  # continued from the downloaded step-20 checkpoint


def test_urls_with_the_same_file_name_never_share_a_cache(tiny_checkpoint, tmp_path, http_root, monkeypatch):
    folder, url = http_root
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    (folder / "a").mkdir()
    (folder / "b").mkdir()
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    for name, step in (("a", 7), ("b", 11)):
        torch.save(ckpt | {"global_step": step}, folder / name / "model.ckpt")
    assert load_checkpoint_file(f"{url}/a/model.ckpt")["global_step"] == 7
    assert load_checkpoint_file(f"{url}/b/model.ckpt")["global_step"] == 11
    torch.save(ckpt | {"global_step": 13}, folder / "a" / "model.ckpt")  # the same URL, new bytes
    assert load_checkpoint_file(f"{url}/a/model.ckpt")["global_step"] == 13
    assert not (tmp_path / "hub").exists()


@pytest.mark.parametrize(
    "tool",
    [
        ["sample", "--num", "2", "--out", "{tmp}/x.png"],
        ["export", "--out", "{tmp}/x.safetensors"],
        ["evaluate", "--num-samples", "100", "--store", "{tmp}/r.sqlite"],
        ["latent", "reconstruct", "--out", "{tmp}/x.png"],
    ],
    ids=lambda t: t[0],
)
@pytest.mark.parametrize("where", ["path", "url"])
def test_tools_refuse_a_malicious_checkpoint(tiny_checkpoint, tmp_path, http_root, capsys, tool, where):
    folder, url = http_root
    marker = tmp_path / "ran"
    bad = malicious_copy(tiny_checkpoint, folder / "bad.ckpt", marker)
    source = str(bad) if where == "path" else f"{url}/bad.ckpt"
    argv = [a.format(tmp=tmp_path) for a in tool]
    if tool[0] == "latent":
        argv = argv[:2] + ["--ckpt", source] + argv[2:]
    else:
        argv = argv[:1] + ["--ckpt", source] + argv[1:]
    assert main(argv) == 2
    assert not marker.exists()
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said.startswith(f"error: checkpoint {source} holds") and "cannot be loaded safely" in said


def test_a_url_that_does_not_answer_is_one_sentence(tmp_path):
    with pytest.raises(CheckpointError, match=r"could not download the checkpoint .*; check the URL") as err:
        load_checkpoint_file("http://127.0.0.1:9/none.ckpt")
    assert "\n" not in str(err.value)
