"""Training services end to end through `lit-genvision fit`: resume, EMA, atomic checkpoints."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from tests_helpers import tiny_diffusion_args

from lit_genvision.cli import main

STEPS_PER_EPOCH = 1258 // 64  # digits train split / batch size, drop_last


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    total = 3 * STEPS_PER_EPOCH
    main(["fit", *tiny_diffusion_args(tmp_path, "full", max_steps=total)])
    main(["fit", *tiny_diffusion_args(tmp_path, "split", max_steps=STEPS_PER_EPOCH)])
    first = tmp_path / "split" / "version_0" / "checkpoints" / "last.ckpt"
    main(["fit", *tiny_diffusion_args(tmp_path, "split", max_steps=total), "--ckpt_path", str(first)])

    full = _load(tmp_path / "full" / "version_0" / "checkpoints" / "last.ckpt")
    resumed = _load(tmp_path / "split" / "version_0" / "checkpoints" / "last.ckpt")  # same folder continued
    assert resumed["global_step"] == full["global_step"] == total
    for key, value in full["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    for key, value in full["callbacks"]["EMA"]["shadow"].items():
        torch.testing.assert_close(resumed["callbacks"]["EMA"]["shadow"][key], value, rtol=1e-5, atol=1e-6)
    assert not (tmp_path / "split" / "version_1").exists()


def test_ema_differs_from_weights_and_lags_them(tiny_checkpoint, tmp_path):
    """Ten steps past the 20-step checkpoint θ_20, the EMA sits behind the weights θ_30 on the way
    from θ_20: ‖ema − θ_20‖ < ‖θ_30 − θ_20‖, and ema ≠ θ_30."""
    before = _load(tiny_checkpoint)
    main(["fit", *tiny_diffusion_args(tmp_path, "lag", max_steps=30), "--ckpt_path", str(tiny_checkpoint)])
    after = _load(tmp_path / "lag" / "version_0" / "checkpoints" / "last.ckpt")
    ema = after["callbacks"]["EMA"]
    assert ema["num_updates"] == after["global_step"] == 30  # one update per optimiser step
    assert set(ema["shadow"]) == {k for k in after["state_dict"] if k.startswith("net.")}

    def flat(tensors: dict) -> torch.Tensor:
        return torch.cat([tensors[k].double().flatten() for k in sorted(ema["shadow"])])

    shadow, early, late = flat(ema["shadow"]), flat(before["state_dict"]), flat(after["state_dict"])
    assert (shadow - late).norm() > 0
    assert (shadow - early).norm() < (late - early).norm()


def test_resume_with_another_familys_checkpoint_is_one_clear_error(tiny_checkpoint, tmp_path, capsys):
    ckpt = _load(tiny_checkpoint)
    ckpt["lit_genvision"] = {"family": "gan", "class": "lit_genvision.models.gan.GANModel"}
    other = tmp_path / "other.ckpt"
    torch.save(ckpt, other)
    assert main(["fit", *tiny_diffusion_args(tmp_path, "x", max_steps=30), "--ckpt_path", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --ckpt_path") and "holds a lit_genvision.models.gan.GANModel" in err[-1]


def test_interrupted_save_leaves_the_previous_checkpoint_intact(tiny_checkpoint, tmp_path, monkeypatch):
    """A crash (here a KeyboardInterrupt) in the middle of writing never replaces a good checkpoint."""
    target = tmp_path / "last.ckpt"
    target.write_bytes(tiny_checkpoint.read_bytes())
    good = target.read_bytes()

    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    from lit_genvision.experiments.checkpoints import load_model

    model = load_model(tiny_checkpoint)
    trainer.strategy.connect(model)
    trainer.strategy._lightning_module = model

    import fsspec.implementations.local as local

    def broken_write(self, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(local.LocalFileOpener, "write", broken_write)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint(target)
    assert target.read_bytes() == good
    _load(target)
