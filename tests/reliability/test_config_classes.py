"""A checkpoint's saved config names the classes that rebuild its model and data module; building
them imports and calls them. Only the trusted modules (lit_genvision, torch.nn, and those a user adds
to LIT_GENVISION_TRUSTED_MODULES) may be named: a checkpoint that names another is refused before
anything is imported, so a module whose import runs code never runs."""

from __future__ import annotations

import sys

import pytest
import torch

from lit_genvision.checkpoint_io import CheckpointError
from lit_genvision.cli import main
from lit_genvision.models.pretrained import TRUSTED_ENV, load_model


@pytest.fixture
def evil_module(tmp_path, monkeypatch):
    """A module ``evilmod`` on sys.path whose import creates a marker file (an attacker's payload)."""
    marker = tmp_path / "ran"
    (tmp_path / "evilmod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nimport torch\nclass Net(torch.nn.Module):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "evilmod", raising=False)
    yield marker
    sys.modules.pop("evilmod", None)


def _rewritten(good, out, edit) -> str:
    ckpt = torch.load(good, map_location="cpu", weights_only=True)
    edit(ckpt)
    torch.save(ckpt, out)
    return str(out)


def test_the_module_runs_when_imported(evil_module):
    """The control: importing the module really runs its payload."""
    import importlib

    importlib.import_module("evilmod")
    assert evil_module.exists()


@pytest.mark.parametrize("where", ["model class", "nested net", "data module"])
def test_a_checkpoint_naming_an_untrusted_class_is_refused_unimported(tiny_checkpoint, tmp_path, evil_module, where):
    def edit(ckpt):
        if where == "model class":
            ckpt["lit_genvision"]["class"] = "evilmod.Net"
        elif where == "nested net":
            ckpt["hyper_parameters"]["net"] = {"class_path": "evilmod.Net", "init_args": {}}
        else:
            ckpt["lit_genvision"]["data"] = {"class_path": "evilmod.Net", "init_args": {}}

    bad = _rewritten(tiny_checkpoint, tmp_path / "bad.ckpt", edit)
    command = ["evaluate", "--ckpt", bad, "--num-samples", "65"] if where == "data module" else ["sample"]
    if command == ["sample"]:
        command += ["--ckpt", bad, "--num", "2", "--out", str(tmp_path / "x.png")]
    assert main(command) == 2
    assert not evil_module.exists()


def test_the_error_names_the_class_and_the_way_to_trust_it(tiny_checkpoint, tmp_path, evil_module):
    bad = _rewritten(
        tiny_checkpoint,
        tmp_path / "bad.ckpt",
        lambda c: c["hyper_parameters"].update(net={"class_path": "evilmod.Net"}),
    )
    with pytest.raises(CheckpointError, match=f"names the class 'evilmod.Net', outside the trusted .* {TRUSTED_ENV}"):
        load_model(bad)
    assert not evil_module.exists()


def test_a_user_can_trust_their_own_module(tiny_checkpoint, tmp_path, evil_module, monkeypatch):
    """Trusted by the user, the class is built (here it fails later, as a wrong net would)."""
    monkeypatch.setenv(TRUSTED_ENV, "somepkg, evilmod")
    bad = _rewritten(
        tiny_checkpoint,
        tmp_path / "bad.ckpt",
        lambda c: c["hyper_parameters"].update(net={"class_path": "evilmod.Net"}),
    )
    with pytest.raises(Exception):  # noqa: B017 — the point is only that the import was allowed
        load_model(bad)
    assert evil_module.exists()
