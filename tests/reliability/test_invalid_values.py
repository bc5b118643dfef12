"""Issue 13, defect 8: invalid numeric values are refused when the object is built (or before the
model is loaded, for the tools), with one sentence that names the argument."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from tests_helpers import tiny_diffusion_args

from lit_genvision.checks import check_float, check_int, check_writable
from lit_genvision.cli import main


def _unet():
    from lit_genvision.nn import UNet

    return UNet(in_channels=1, image_size=8, channels=8, channel_mults=[1, 2], norm_groups=4, heads=2)


def _diffusion(**kw):
    from lit_genvision.models import DiffusionModel

    return DiffusionModel(_unet(), **kw)


def _flow(**kw):
    from lit_genvision.models import FlowMatchingModel

    return FlowMatchingModel(_unet(), **kw)


def _gan(**kw):
    from lit_genvision.models import GANModel
    from lit_genvision.nn import DCGANDiscriminator, DCGANGenerator

    return GANModel(
        DCGANGenerator(latent_dim=8, image_size=16, out_channels=1, width=8),
        DCGANDiscriminator(in_channels=1, image_size=16, width=8),
        **kw,
    )


def _vae(**kw):
    from lit_genvision.models import VAEModel
    from lit_genvision.nn import ConvDecoder, ConvEncoder

    return VAEModel(ConvEncoder(1, 16, (8, 8), out_dim=4), ConvDecoder(1, 16, (8, 8), latent_dim=2), **kw)


def _autoencoder(**kw):
    from lit_genvision.models import AutoencoderModel
    from lit_genvision.nn import ConvDecoder, ConvEncoder

    return AutoencoderModel(ConvEncoder(1, 16, (8, 8), out_dim=2), ConvDecoder(1, 16, (8, 8), latent_dim=2), **kw)


def _classifier(**kw):
    from lit_genvision.models import Classifier
    from lit_genvision.nn import SmallConvNet

    return Classifier(SmallConvNet(1, 10, width=8, feature_dim=8), **kw)


def _digits(**kw):
    from lit_genvision.data import DigitsDataModule

    return DigitsDataModule(**kw)


def _schedule(kind: str, **kw):
    from lit_genvision import methods

    return getattr(methods, kind)(**kw)


def _ddim(**kw):
    from lit_genvision.methods import DDIMSampler

    return DDIMSampler(**kw)


def _ode(**kw):
    from lit_genvision.models import ODESampler

    return ODESampler(**kw)


NAN, INF = math.nan, math.inf

CASES: list[tuple[str, Callable[[], object], str]] = [
    ("diffusion negative warmup", lambda: _diffusion(warmup_steps=-5), "warmup_steps"),
    ("diffusion negative lr", lambda: _diffusion(lr=-1.2e-3), "lr"),
    ("diffusion zero lr", lambda: _diffusion(lr=0.0), "lr"),
    ("diffusion nan lr", lambda: _diffusion(lr=NAN), "lr"),
    ("diffusion inf lr", lambda: _diffusion(lr=INF), "lr"),
    ("diffusion negative weight decay", lambda: _diffusion(weight_decay=-0.1), "weight_decay"),
    ("diffusion label dropout 1.5", lambda: _diffusion(label_dropout=1.5), "label_dropout"),
    ("diffusion nan guidance", lambda: _diffusion(guidance_scale=NAN), "guidance_scale"),
    ("diffusion unknown prediction", lambda: _diffusion(prediction="noise"), "prediction"),
    ("flow negative warmup", lambda: _flow(warmup_steps=-1), "warmup_steps"),
    ("flow nan lr", lambda: _flow(lr=NAN), "lr"),
    ("flow label dropout 1.5", lambda: _flow(label_dropout=1.5), "label_dropout"),
    ("flow inf guidance", lambda: _flow(guidance_scale=INF), "guidance_scale"),
    ("flow unknown time sampling", lambda: _flow(time_sampling="gaussian"), "time_sampling"),
    ("ode sampler zero steps", lambda: _ode(steps=0), "steps"),
    ("ode sampler negative rtol", lambda: _ode(rtol=-1e-3), "rtol"),
    ("gan negative lr_g", lambda: _gan(lr_g=-2e-4), "lr_g"),
    ("gan zero lr_d", lambda: _gan(lr_d=0.0), "lr_d"),
    ("gan beta1 of 1", lambda: _gan(betas=(1.0, 0.999)), "betas[0]"),
    ("gan negative beta2", lambda: _gan(betas=(0.5, -0.9)), "betas[1]"),
    ("gan three betas", lambda: _gan(betas=(0.5, 0.9, 0.99)), "betas"),
    ("gan negative gradient penalty", lambda: _gan(gp_weight=-10.0), "gp_weight"),
    ("gan nan r1", lambda: _gan(r1_weight=NAN), "r1_weight"),
    ("gan zero n_critic", lambda: _gan(n_critic=0), "n_critic"),
    ("gan unknown loss", lambda: _gan(loss="lsgan"), "loss"),
    ("vae negative beta", lambda: _vae(beta=-1.0), "beta"),
    ("vae negative kl warmup", lambda: _vae(kl_warmup_steps=-3), "kl_warmup_steps"),
    ("vae zero latent", lambda: _vae(latent_dim=0), "latent_dim"),
    ("vae negative prior components", lambda: _vae(prior_components=-1), "prior_components"),
    ("vae nan lr", lambda: _vae(lr=NAN), "lr"),
    ("autoencoder negative lr", lambda: _autoencoder(lr=-1e-3), "lr"),
    ("autoencoder unknown reconstruction", lambda: _autoencoder(reconstruction="l1"), "reconstruction"),
    ("classifier zero lr", lambda: _classifier(lr=0.0), "lr"),
    ("classifier label smoothing 1.5", lambda: _classifier(label_smoothing=1.5), "label_smoothing"),
    ("classifier one class", lambda: _classifier(num_classes=1), "num_classes"),
    ("digits batch size 0", lambda: _digits(batch_size=0), "batch_size"),
    ("linear schedule zero timesteps", lambda: _schedule("LinearSchedule", timesteps=0), "timesteps"),
    ("linear schedule beta_end < beta_start", lambda: _schedule("LinearSchedule", beta_end=1e-5), "beta_end"),
    ("linear schedule beta_start 0", lambda: _schedule("LinearSchedule", beta_start=0.0), "beta_start"),
    ("cosine schedule max_beta 1", lambda: _schedule("CosineSchedule", max_beta=1.0), "max_beta"),
    ("cosine schedule negative s", lambda: _schedule("CosineSchedule", s=-0.1), "s"),
    ("ddim zero steps", lambda: _ddim(steps=0), "steps"),
    ("ddim negative eta", lambda: _ddim(eta=-0.5), "eta"),
    ("ddim nan eta", lambda: _ddim(eta=NAN), "eta"),
]


@pytest.mark.parametrize("build, name", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_value_is_refused_at_construction(build, name):
    with pytest.raises(ValueError) as err:
        build()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{name} must ") or message.startswith(f"{name} ")
    assert message.endswith(".")


def test_valid_defaults_still_build():
    for build in (_diffusion, _flow, _gan, _vae, _autoencoder, _classifier, _ddim, _ode):
        build()
    _gan(betas=(0.0, 0.9), gp_weight=10.0, n_critic=5)  # the WGAN-GP settings
    _diffusion(guidance_scale=-1.0, label_dropout=1.0, warmup_steps=0)  # unusual but meaningful


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: check_float("lr", NAN, low=0, low_open=True), "lr must be a finite number greater than 0, got nan."),
        (lambda: check_float("p", 2.0, low=0, high=1, high_open=True), "p must be a finite number in [0, 1), got 2."),
        (lambda: check_float("x", "1", hint="pass a number"), "x must be a finite number, got '1'; pass a number."),
        (lambda: check_int("n", 2.5, low=1), "n must be an integer of at least 1, got 2.5."),
        (lambda: check_int("n", True, low=0), "n must be an integer of at least 0, got True."),
    ],
)
def test_check_messages(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message


def test_check_writable_creates_the_missing_parent(tmp_path):
    target = tmp_path / "new" / "deeper" / "x.png"
    assert check_writable(target, "--out") == target
    assert target.parent.is_dir() and list(target.parent.iterdir()) == []  # the probe file is gone


def _no_load(monkeypatch, module: str) -> list:
    calls: list = []

    def record(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the model was loaded although an argument was invalid")

    monkeypatch.setattr(f"lit_genvision.experiments.{module}.load_model", record)
    return calls


@pytest.mark.parametrize(
    "extra, name",
    [
        (["--guidance", "nan"], "--guidance"),
        (["--guidance", "inf"], "--guidance"),
        (["--steps", "0"], "--steps"),
        (["--eta", "-1"], "--eta"),
        (["--eta", "nan"], "--eta"),
        (["--rtol", "0"], "--rtol"),
        (["--batch-size", "0"], "--batch-size"),
        (["--num", "0"], "--num"),
        (["--interpolate", "1"], "--interpolate"),
    ],
)
def test_sample_refuses_invalid_values_before_loading(extra, name, tmp_path, monkeypatch, capsys):
    calls = _no_load(monkeypatch, "sample")
    out = tmp_path / "x.png"
    assert main(["sample", "--ckpt", str(tmp_path / "any.ckpt"), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {name} ") and err.count("\n") == 1
    assert calls == [] and not out.exists()


@pytest.mark.parametrize(
    "extra, name",
    [
        (["--guidance", "nan"], "--guidance"),
        (["--steps", "-3"], "--steps"),
        (["--batch-size", "0"], "--batch-size"),
        (["--devices", "0"], "--devices"),
        (["--repeats", "0"], "--repeats"),
    ],
)
def test_evaluate_refuses_invalid_values_before_loading(extra, name, tmp_path, monkeypatch, capsys):
    calls = _no_load(monkeypatch, "sources")  # evaluate's sources load the checkpoint
    store = tmp_path / "r.sqlite"
    argv = ["evaluate", "--ckpt", str(tmp_path / "any.ckpt"), "--num-samples", "100", "--store", str(store), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {name} ") and err.count("\n") == 1
    assert calls == [] and not store.exists()


def _fit_refused(argv: list[str], capsys) -> str:
    """Run ``fit`` and return what it said; it must not return 0."""
    try:
        rc = main(argv)
    except SystemExit as exit_:  # jsonargparse's own argument errors
        assert exit_.code not in (0, None)
        captured = capsys.readouterr()
        return captured.err + captured.out
    except ValueError as err:  # a CLI that lets the constructor error through
        return "".join(str(e) + "\n" for e in (err, err.__cause__) if e is not None)
    assert rc != 0
    return capsys.readouterr().err


def test_fit_with_negative_warmup_does_not_start(tmp_path: Path, capsys):
    argv = [
        "fit",
        *tiny_diffusion_args(tmp_path, max_steps=2),
        "--model.init_args.lr_scheduler.init_args.warmup_steps",
        "-5",
    ]
    said = _fit_refused(argv, capsys)
    assert "warmup_steps must be an integer of at least 0, got -5" in said
    assert not (tmp_path / "tiny").exists() and not list(tmp_path.rglob("*.ckpt"))


def test_fit_constructor_error_is_one_sentence(tmp_path: Path, capsys):
    """The constructor's sentence alone, not jsonargparse's report of the whole config around it
    (a literal ``nan`` never reaches the constructor: jsonargparse refuses it as a float)."""
    argv = ["fit", *tiny_diffusion_args(tmp_path, max_steps=2), "--model.init_args.optimizer.init_args.lr", "-0.5"]
    said = _fit_refused(argv, capsys).strip()
    expected = "lr must be a finite number greater than 0, got -0.5; pass a positive learning rate such as 2e-4."
    assert said == f"error: {expected}"
