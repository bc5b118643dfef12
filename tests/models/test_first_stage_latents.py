"""VQModel as latent diffusion's first stage, with a KL bottleneck and with FSQ (tiny shapes): the
latent shapes, decode ∘ encode equal to ``reconstruct``, ``LatentSpace`` over a VQModel, a short
fit of configs/tokenizer/digits_kl.yaml through the CLI, and one clear error for tokens of a KL model."""

from __future__ import annotations

import csv

import pytest
import torch
from fixtures.latent import TinyConvDecoder, TinyConvEncoder
from tests_helpers import ROOT

from lit_genvision.cli import main
from lit_genvision.methods.quantizers import DiagonalGaussianBottleneck, FiniteScalarQuantizer
from lit_genvision.methods.space import LatentSpace
from lit_genvision.models import VQModel, load_model

KL_CONFIG = ROOT / "configs" / "tokenizer" / "digits_kl.yaml"


def first_stage(kind: str) -> VQModel:
    torch.manual_seed(0)
    quantizer = DiagonalGaussianBottleneck(3) if kind == "kl" else FiniteScalarQuantizer([5, 4, 3])
    return VQModel(TinyConvEncoder(), TinyConvDecoder(), quantizer).eval()


def images(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("kind", ["kl", "fsq"])
def test_latent_shapes_and_decoded_range(kind):
    model = first_stage(kind)
    z = model.encode_latents(images())
    assert z.shape == (2, 3, 4, 4)
    x = model.decode_latents(3 * torch.randn(2, 3, 4, 4))
    assert x.shape == (2, 1, 8, 8) and x.abs().max() <= 1


def test_the_kl_quant_conv_gives_mean_and_logvar():
    model = first_stage("kl")
    assert model.quant_conv.out_channels == 6 and model.post_quant_conv.in_channels == 3


@pytest.mark.parametrize("kind", ["kl", "fsq"])
def test_decode_of_encode_is_the_reconstruction(kind):
    model = first_stage(kind)
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(model.decode_latents(model.encode_latents(x)), model.reconstruct(x))
        torch.testing.assert_close(model.decode(model.encode(x)), model.reconstruct(x))  # the aliases


def test_kl_latents_are_the_posterior_mean():
    model = first_stage("kl")
    x = images()
    h = model.quant_conv(model.encoder(x))
    torch.testing.assert_close(model.encode_latents(x), h[:, :3])
    model.train()  # training samples z, but the first-stage latent is still μ
    torch.testing.assert_close(model.encode_latents(x), h[:, :3])


def test_fsq_latents_are_pre_quantization_and_decoding_moves_no_statistic():
    model = first_stage("fsq").train()
    x = images()
    torch.testing.assert_close(model.encode_latents(x), model.quant_conv(model.encoder(x)))
    usage = [b.clone() for b in model.quantizer.usage.buffers()]
    model.decode_latents(model.encode_latents(x))
    assert model.quantizer.training  # given back in training mode
    assert all(torch.equal(a, b) for a, b in zip(usage, model.quantizer.usage.buffers(), strict=True))


@pytest.mark.parametrize("kind", ["kl", "fsq"])
def test_latent_space_over_a_vqmodel_has_unit_variance_latents(kind):
    space = LatentSpace(first_stage(kind))
    batches = [images(16, seed) for seed in range(3)]
    space.fit_scale(batches)
    z = torch.cat([space.encode(b) for b in batches]).double()
    assert z.std(unbiased=False).item() == pytest.approx(1.0, rel=1e-6)
    assert space.sample_shape((1, 8, 8)) == (3, 4, 4) and space.image_shape((3, 4, 4)) == (1, 8, 8)
    assert space.decode(space.encode(batches[0])).shape == (16, 1, 8, 8)


def test_token_methods_of_a_kl_model_are_one_clear_error():
    model = first_stage("kl")
    sentence = "has a KL bottleneck, not a quantizer; it has no tokens"
    calls = [
        lambda: model.encode_indices(images()),
        lambda: model.decode_indices(torch.zeros(2, 4, 4, dtype=torch.long)),
        lambda: model.vocab_size,
        lambda: model.bits_per_image(),
        lambda: model.token_shape(),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=sentence):
            call()
    assert not model.has_tokens and first_stage("fsq").has_tokens


def test_a_short_fit_of_the_kl_config_logs_the_kl_and_loads_as_a_first_stage(tmp_path):
    net = (
        "{in_channels: 1, image_size: 16, channels: 8, channel_mults: [1, 2, 2], depth: 1, attention_at: [], "
        "z_channels: 8, norm_groups: 4}"
    )
    args = [
        "--config", str(KL_CONFIG),
        "--model.init_args.encoder.init_args", net,
        "--model.init_args.decoder.init_args", net.replace("in_channels", "out_channels"),
        "--trainer.max_steps", "3", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
        "--trainer.check_val_every_n_epoch", "1", "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.default_root_dir", str(tmp_path), "--trainer.logger.init_args.save_dir", str(tmp_path),
    ]  # fmt: skip
    assert main(["fit", *args]) == 0
    with open(next(tmp_path.rglob("metrics.csv")), newline="") as f:
        rows = list(csv.DictReader(f))
    kl = [float(r["train/quantizer/kl"]) for r in rows if r.get("train/quantizer/kl")]
    assert len(kl) == 3 and all(v > 0 for v in kl)
    assert any(r.get("val/quantizer/kl") for r in rows) and any(r.get("val/rec_l1") for r in rows)
    assert not any(k for k in rows[0] if "perplexity" in k or "utilisation" in k)

    model = load_model(next(tmp_path.rglob("last.ckpt")))
    assert isinstance(model, VQModel) and isinstance(model.quantizer, DiagonalGaussianBottleneck)
    space = LatentSpace(model)
    assert space.sample_shape((1, 16, 16)) == (4, 4, 4)
