"""VAEModel with the learned mixture prior: sampling reads the prior, the prior is trained, saved in
the checkpoint (read with ``weights_only``), averaged by the EMA and resumed bitwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from tests_helpers import Killed, kill_after

from lit_genvision.callbacks.ema import averaged_names
from lit_genvision.cli import main
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.methods.vae import sample_mixture
from lit_genvision.models import VAEModel
from lit_genvision.models.pretrained import load_model
from lit_genvision.nn import ConvDecoder, ConvEncoder

ROOT = Path(__file__).resolve().parents[2]
DIGITS_VAE = ROOT / "configs" / "vae" / "digits.yaml"
BATCHES_PER_EPOCH = 1258 // 64  # digits train split / the shipped batch size: 19
TOTAL = BATCHES_PER_EPOCH + 4  # crosses an epoch boundary (and its validation)
KILL_AT = 6
PRIOR_KEYS = ("logits", "means", "log_vars")


def tiny_vae(prior_components: int) -> VAEModel:
    return VAEModel(
        ConvEncoder(in_channels=1, image_size=16, channels=[8, 8], out_dim=4),
        ConvDecoder(out_channels=1, image_size=16, channels=[8, 8], latent_dim=2),
        latent_dim=2,
        prior_components=prior_components,
    )


def fit_args(root: Path, name: str, max_steps: int) -> list[str]:
    """The shipped digits VAE with small networks and a 3-component prior, for ``max_steps`` steps."""
    overrides = {
        "model.init_args.encoder.init_args.channels": "[8, 16]",
        "model.init_args.decoder.init_args.channels": "[16, 8]",
        "model.init_args.prior_components": "3",
        "trainer.max_steps": str(max_steps),
        "trainer.enable_progress_bar": "false",
        "trainer.enable_model_summary": "false",
        "trainer.default_root_dir": str(root),
        "trainer.logger.init_args.save_dir": str(root),
        "trainer.logger.init_args.name": name,
    }
    return ["--config", str(DIGITS_VAE), *(a for k, v in overrides.items() for a in (f"--{k}", v))]


def last_ckpt(root: Path, name: str) -> Path:
    return root / name / "version_0" / "checkpoints" / "last.ckpt"


def test_standard_prior_adds_no_parameters_and_the_ema_averages_the_mixture_prior():
    plain, mixture = tiny_vae(0), tiny_vae(4)
    assert plain.prior is None and plain.ema_modules == ("encoder", "decoder")
    assert {n for n, _ in mixture.named_parameters()} - {n for n, _ in plain.named_parameters()} == {
        "prior.logits",
        "prior.means",
        "prior.log_vars",
    }
    assert mixture.ema_modules == ("encoder", "decoder", "prior")
    assert {n for n in averaged_names(mixture) if n.startswith("prior.")} == {f"prior.{k}" for k in PRIOR_KEYS}
    assert mixture.prior["means"].shape == (4, 2) and mixture.prior["log_vars"].shape == (4, 2)


def test_sample_decodes_latents_drawn_from_the_mixture_prior():
    torch.manual_seed(0)
    model = tiny_vae(3)
    with torch.no_grad():
        model.prior["means"].copy_(torch.tensor([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]]))
        model.prior["log_vars"].fill_(-4.0)
    x = model.sample(8, generator=torch.Generator().manual_seed(1))
    z = sample_mixture(
        8, model.prior["logits"], model.prior["means"], -4.0 * torch.ones(3, 2), torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(x, model.sample(8, options=SampleOptions(noise=z)), rtol=0, atol=0)
    drawn = model.sample_prior(1000, torch.Generator().manual_seed(2))
    assert torch.cdist(drawn, model.prior["means"]).min(1).values.max() < 1.0  # every draw near a mean (σ ≈ 0.14)


def test_the_learned_prior_is_trained_saved_and_reloaded_with_weights_only(tmp_path):
    assert main(["fit", *fit_args(tmp_path, "run", KILL_AT)]) == 0
    state = torch.load(last_ckpt(tmp_path, "run"), map_location="cpu", weights_only=True)["state_dict"]
    # the optimiser moved the prior away from its initial equal weights and unit variances
    assert state["prior.logits"].abs().min() > 0 and state["prior.log_vars"].abs().min() > 0
    model = load_model(last_ckpt(tmp_path, "run"), generative=True)
    for key in PRIOR_KEYS:
        assert torch.equal(model.prior[key], state[f"prior.{key}"]), key


def test_a_resumed_fit_ends_with_the_same_prior_weights_and_optimizer_state(tmp_path):
    assert main(["fit", *fit_args(tmp_path, "full", TOTAL)]) == 0
    full = torch.load(last_ckpt(tmp_path, "full"), map_location="cpu", weights_only=True)

    saves = tmp_path / "saves"
    schedule = ModelCheckpoint(dirpath=saves, filename="at", every_n_train_steps=KILL_AT, save_top_k=-1)
    with pytest.raises(Killed):
        main(["fit", *fit_args(tmp_path, "split", TOTAL)], callbacks=[schedule, kill_after(KILL_AT)])
    assert main(["fit", *fit_args(tmp_path, "split", TOTAL), "--ckpt_path", str(saves / "at.ckpt")]) == 0
    split = torch.load(last_ckpt(tmp_path, "split"), map_location="cpu", weights_only=True)

    assert full["global_step"] == split["global_step"] == TOTAL
    assert {k for k in full["state_dict"] if k.startswith("prior.")} == {
        "prior.logits",
        "prior.means",
        "prior.log_vars",
    }
    for key, value in full["state_dict"].items():
        assert torch.equal(split["state_dict"][key], value), key
    states = full["optimizer_states"][0]["state"], split["optimizer_states"][0]["state"]
    for sa, sb in zip(states[0].values(), states[1].values(), strict=True):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
