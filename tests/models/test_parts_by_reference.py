"""Frozen parts by reference: a model built on another can keep the part's path, SHA-256, class and config
instead of its weights; loading then checks the file and says in one sentence which file changed or is gone.
Embedding the weights stays the default (one self-contained checkpoint)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from lit_genvision.checkpoint_io import CheckpointError
from lit_genvision.cli import main
from lit_genvision.models import load_model
from lit_genvision.models.pretrained import PRETRAINED_KEY, by_reference

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
ROOT = LEGACY.parents[2]


def fit_prior(root: Path, tokenizer: Path, embed: bool) -> Path:
    args = [
        "fit", "--config", str(ROOT / "configs" / "token_prior" / "digits.yaml"),
        "--model.init_args.tokenizer", str(tokenizer), "--model.init_args.embed_parts", str(embed).lower(),
        "--model.init_args.net.init_args.dim", "16", "--model.init_args.net.init_args.depth", "1",
        "--model.init_args.net.init_args.heads", "2", "--trainer.max_steps", "2",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.default_root_dir", str(root), "--trainer.logger.init_args.save_dir", str(root),
    ]  # fmt: skip
    assert main(args) == 0
    return next(root.rglob("last.ckpt"))


@pytest.fixture(scope="module")
def by_ref(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ref")
    tokenizer = root / "tokenizer.ckpt"
    shutil.copy(LEGACY / "tokenizer_fsq.ckpt", tokenizer)
    return fit_prior(root / "runs", tokenizer, embed=False), tokenizer


def test_a_part_held_by_reference_leaves_its_weights_out_and_records_its_file(by_ref):
    ckpt, tokenizer = by_ref
    saved = torch.load(ckpt, weights_only=True)
    assert not any(k.startswith("tokenizer.") for k in saved["state_dict"])
    assert any(k.startswith("net.") for k in saved["state_dict"])
    record = saved["hyper_parameters"][PRETRAINED_KEY]["tokenizer"]
    assert record["embedded"] is False and record["path"] == str(tokenizer)
    assert record["class"].endswith("VQModel") and len(record["sha256"]) == 64


def test_a_part_held_by_reference_loads_from_its_file_and_samples_the_same(by_ref):
    ckpt, tokenizer = by_ref
    model = load_model(ckpt)
    original = load_model(tokenizer)
    for name, value in original.state_dict().items():
        assert torch.equal(model.tokenizer.state_dict()[name], value), name
    a = model.sample(2, generator=torch.Generator().manual_seed(0))
    b = load_model(ckpt).sample(2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_a_changed_part_file_is_named_in_one_sentence(by_ref, tmp_path):
    ckpt, tokenizer = by_ref
    kept = tmp_path / "kept.ckpt"
    shutil.copy(tokenizer, kept)
    try:
        shutil.copy(LEGACY / "tokenizer_kl.ckpt", tokenizer)  # another tokenizer at the recorded path
        with pytest.raises(CheckpointError, match=r"changed since it was trained") as err:
            load_model(ckpt)
        assert str(tokenizer) in str(err.value) and str(err.value).count(". ") == 0
        tokenizer.unlink()
        with pytest.raises(CheckpointError, match=r"which is gone; put back the file"):
            load_model(ckpt)
    finally:
        shutil.copy(kept, tokenizer)


def test_an_embedded_part_is_rebuilt_from_its_record_whatever_its_file_became(tmp_path):
    tokenizer = tmp_path / "tokenizer.ckpt"
    shutil.copy(LEGACY / "tokenizer_fsq.ckpt", tokenizer)
    ckpt = fit_prior(tmp_path / "runs", tokenizer, embed=True)
    before = load_model(ckpt).sample(2, generator=torch.Generator().manual_seed(0))
    shutil.copy(LEGACY / "tokenizer_kl.ckpt", tokenizer)  # the file is not read: the weights are in the checkpoint
    assert torch.equal(load_model(ckpt).sample(2, generator=torch.Generator().manual_seed(0)), before)
    tokenizer.unlink()
    assert torch.equal(load_model(ckpt).sample(2, generator=torch.Generator().manual_seed(0)), before)


def test_by_reference_drops_a_submodule_from_state_dicts_and_lets_them_load_strictly():
    owner = nn.ModuleDict({"part": nn.Linear(2, 2), "own": nn.Linear(2, 1)})
    by_reference(owner["part"])
    state = owner.state_dict()
    assert set(state) == {"own.weight", "own.bias"}
    owner.load_state_dict(state)  # strict: the part's keys are not missing
    owner.load_state_dict(state | {"part.weight": torch.zeros(2, 2)})  # an embedded copy is not read
    assert not torch.equal(owner["part"].weight, torch.zeros(2, 2))


def test_a_text_encoder_held_by_reference_leaves_the_clip_out_of_the_denoiser():
    from lit_genvision.models import CLIPTextEncoder, DenoisingModel
    from lit_genvision.nn import ConditionedNet, UNet

    backbone = UNet(in_channels=1, image_size=8, channels=8, channel_mults=[1, 2], norm_groups=4, context_dim=16)
    for embed in (True, False):
        net = ConditionedNet(backbone, text_encoder=CLIPTextEncoder(str(LEGACY / "clip.ckpt"), embed=embed))
        model = DenoisingModel(net)
        clip_keys = [k for k in model.state_dict() if ".encoder.clip." in k]
        assert bool(clip_keys) is embed
        assert model.hparams[PRETRAINED_KEY]["text_encoder"]["embedded"] is embed
        model.load_state_dict(model.state_dict())  # strict
