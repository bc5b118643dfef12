"""DALL-E 2's pipeline (``models.unclip.UnCLIPModel``): composed by reference from a CLIP, a prior and a decoder,
sampled from text like any model, refused in one sentence when a part does not fit; and the decoder's image
embedding derived from its batch and dropped at the configured rate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from tests_helpers import ROOT

from lit_genvision.checkpoint_io import CheckpointError
from lit_genvision.cli import main
from lit_genvision.experiments.checkpoints import load_model
from lit_genvision.experiments.compose import compose, save
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.nn.conditions import ImageEmbedding

CLIP_KEYS = {
    "digits_prior.yaml": (
        "--model.init_args.net.init_args.text_encoder.init_args.checkpoint",
        "--model.init_args.space.init_args.checkpoint",
    ),
    "digits_decoder.yaml": ("--model.init_args.net.init_args.conditions.init_args.encoder.init_args.checkpoint",),
    "digits_decoder_caption.yaml": (
        "--model.init_args.net.init_args.conditions.init_args.encoder.init_args.checkpoint",
        "--model.init_args.net.init_args.text_encoder.init_args.checkpoint",
    ),
}


def fit_part(root, name: str, clip_ckpt, *overrides: str) -> str:
    """Two training steps of configs/unclip/<name> on ``clip_ckpt``, at a tiny width."""
    args = ["fit", "--config", str(ROOT / "configs" / "unclip" / name), "--trainer.max_steps", "2", *overrides]
    for key in CLIP_KEYS[name]:
        args += [key, str(clip_ckpt)]
    if name.startswith("digits_decoder"):
        args += ["--model.init_args.net.init_args.backbone.init_args.channels", "8"]
    else:
        args += ["--model.init_args.net.init_args.backbone.init_args.width", "16"]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.limit_val_batches", "1"]
    args += ["--trainer.default_root_dir", str(root), "--trainer.logger.init_args.save_dir", str(root)]
    assert main(args) == 0
    return str(next(root.rglob("last.ckpt")))


@pytest.fixture(scope="module")
def parts(tmp_path_factory, clip_ckpt) -> dict[str, str]:
    prior = fit_part(tmp_path_factory.mktemp("prior"), "digits_prior.yaml", clip_ckpt)
    decoder = fit_part(tmp_path_factory.mktemp("decoder"), "digits_decoder.yaml", clip_ckpt)
    return {"clip": str(clip_ckpt), "prior": prior, "decoder": decoder}


@pytest.fixture(scope="module")
def pipe(parts, tmp_path_factory) -> Path:
    """The pipeline of ``parts`` (the prior at 4 steps), written once for the module."""
    return save(compose(**parts, prior_steps=4), tmp_path_factory.mktemp("pipe") / "pipe.ckpt")


def test_the_pipeline_checkpoint_holds_references_not_weights_and_samples_text_reproducibly(pipe):
    out = pipe
    saved = torch.load(out, weights_only=True)
    assert saved["state_dict"] == {}
    assert set(saved["hyper_parameters"]["_pretrained"]) == {"clip", "prior", "decoder"}
    assert out.stat().st_size < 100_000
    model = load_model(out, generative=True)
    assert model.family == "unclip" and model.image_shape == (1, 16, 16)
    prompts = ["a 3", "a thick seven", "zero"]
    a = model.sample(3, cond={"text": prompts}, steps=4, generator=torch.Generator().manual_seed(1))
    b = model.sample(3, cond={"text": prompts}, steps=4, generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 1, 16, 16) and torch.equal(a, b)
    name, nfe = model.sampling_protocol()
    assert name.startswith("prior ddim") and "best-of-2 → decoder ddim" in name and nfe == 2 * 4 + 2 * 50


def test_the_sample_command_draws_a_prompt_through_the_pipeline(pipe, tmp_path):
    png = tmp_path / "seven.png"
    assert main(["sample", "--ckpt", str(pipe), "--prompt", "a photo of a 7", "--num", "2", "--steps", "2",
                 "--out", str(png)]) == 0  # fmt: skip
    assert png.is_file()


def test_a_part_changed_since_composition_is_refused_on_load(parts, tmp_path):
    decoder = tmp_path / "decoder.ckpt"
    shutil.copy(parts["decoder"], decoder)
    pipe = save(compose(**{**parts, "decoder": str(decoder)}), tmp_path / "pipe.ckpt")
    state = torch.load(decoder, weights_only=True)
    state["global_step"] += 1
    torch.save(state, decoder)
    with pytest.raises(CheckpointError, match="changed since"):
        load_model(pipe, generative=True)


def test_parts_that_do_not_fit_are_refused_in_one_sentence(parts, tmp_path):
    with pytest.raises(ValueError, match="not conditioned on a CLIP image embedding"):
        compose(**{**parts, "decoder": parts["prior"]})
    with pytest.raises(ValueError, match="draws no CLIP image embeddings"):
        compose(**{**parts, "prior": parts["decoder"]})
    other = tmp_path / "other_clip.ckpt"
    state = torch.load(parts["clip"], weights_only=True)
    state["global_step"] += 1  # the same weights in another file: not the CLIP the prior was trained on
    torch.save(state, other)
    with pytest.raises(ValueError, match="another CLIP checkpoint"):
        compose(**{**parts, "clip": str(other)})
    with pytest.raises(ValueError, match="at least 1"):
        compose(**parts, candidates=0)


def test_a_noise_augmented_decoder_decodes_the_embedding_at_the_composed_level_and_other_levels_are_refused(
    parts, tmp_path, clip_ckpt
):
    """Stable unCLIP's noise augmentation through the pipeline: the level is the composition's, recorded in the
    protocol; a seed gives the same samples and another level other samples; a level the decoder was not trained
    with is refused in one sentence."""
    key = "--model.init_args.net.init_args.conditions.init_args.noise_levels"
    decoder = fit_part(tmp_path / "noised", "digits_decoder.yaml", clip_ckpt, key, "1000")
    noised = {**parts, "decoder": decoder, "prior_steps": 2}
    e = torch.nn.functional.normalize(torch.randn(2, 64, generator=torch.Generator().manual_seed(0)), dim=-1)

    def draw(model) -> torch.Tensor:
        return model.sample(2, cond={"image_embedding": e}, steps=2, generator=torch.Generator().manual_seed(5))

    at_300 = compose(**noised, noise_level=300)
    assert torch.equal(draw(at_300), draw(at_300)) and not torch.equal(draw(at_300), draw(compose(**noised)))
    assert "noise level 300" in at_300.sampling_protocol()[0]
    with pytest.raises(ValueError, match="trained with noise_levels: 1000"):
        compose(**noised, noise_level=1000)
    with pytest.raises(ValueError, match="trained with noise_levels: 0"):
        compose(**parts, noise_level=10)


def test_a_decoder_that_reads_the_caption_gets_the_prompt_beside_the_prior_embedding(parts, tmp_path, clip_ckpt):
    decoder = fit_part(tmp_path / "caption", "digits_decoder_caption.yaml", clip_ckpt)
    model = compose(**{**parts, "decoder": decoder, "prior_steps": 2})
    assert model.decoder.dropout_of("text") == 0.5 and model.decoder.dropout_of("image_embedding") == 0.1
    seen = []
    decode = model.decoder.sample
    model.decoder.sample = lambda num, cond, **kw: seen.append(cond) or decode(num, cond=cond, **kw)
    prompts = ["a 3", "seven"]
    model.sample(2, cond={"text": prompts}, steps=2, generator=torch.Generator().manual_seed(0))
    assert seen[-1]["text"] == prompts and seen[-1]["image_embedding"].shape == (2, 64)
    e = seen[-1]["image_embedding"]
    torch.manual_seed(0)
    for w in model.decoder.net.backbone.parameters():  # two steps leave the zero-initialised outputs near zero
        torch.nn.init.normal_(w, std=0.2)
    with_caption = model.sample(2, cond={"image_embedding": e, "text": prompts}, steps=2,
                                generator=torch.Generator().manual_seed(1))  # fmt: skip
    null_caption = model.sample(2, cond={"image_embedding": e}, steps=2, generator=torch.Generator().manual_seed(1))
    assert "text" not in seen[-1] and not torch.equal(with_caption, null_caption)


def test_the_decoder_derives_the_clip_embedding_of_its_images_and_drops_it_at_the_configured_rate(parts):
    decoder = load_model(parts["decoder"])
    condition = next(c for c in decoder.conditions if isinstance(c, ImageEmbedding))
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    derived = decoder.with_derived({"image": images})
    torch.testing.assert_close(derived["image_embedding"], condition.encoder(images))
    assert decoder.required_keys() == ("image",)
    torch.manual_seed(0)
    many = torch.rand(4000, 1, 16, 16) * 2 - 1
    cond = decoder.train_cond({"image": many})
    rate = cond["image_embedding_null"].float().mean().item()
    assert decoder.dropout_of("image_embedding") == 0.1
    assert 0.085 < rate < 0.115  # 4000 draws of p = 0.1: 3.3 standard deviations either side
    dropped = cond["image_embedding_null"]
    assert (cond["image_embedding"][dropped] == 0).all() and (cond["image_embedding"][~dropped] != 0).any()


def test_variations_theta_0_text_diffs_and_interpolation_decode_the_inverted_noise_under_the_right_embedding(
    pipe,
):
    """Variations at η = 0 and s = 1 and a text diff at θ = 0 both decode the image's DDIM inversion under its own
    embedding: the same images by two paths; η = 1 redraws them. (That the decode gives the image back needs a
    trained decoder: tests/methods/test_inversion.py with an exact ε, benchmarks/unclip.py with the digits one.)"""
    model = load_model(pipe, generative=True)
    images = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    same = model.variations(images, 1, eta=0.0, guidance=1.0, steps=4)
    assert same.shape == (2, 1, 16, 16)
    diff = model.text_diff(images[:1], "a 1", "a 7", [0.0, 0.5], guidance=1.0, steps=4)
    torch.testing.assert_close(diff[:1], same[:1])
    assert not torch.allclose(diff[1:], diff[:1])
    redrawn = model.variations(images, 2, eta=1.0, steps=4, generator=torch.Generator().manual_seed(0))
    assert redrawn.shape == (4, 1, 16, 16) and not torch.allclose(redrawn[::2], same)
    row = model.interpolate_images(images[:1], images[1:2], 3, steps=4, generator=torch.Generator().manual_seed(0))
    e = model.embed_images(images)
    assert row.shape == (3, 1, 16, 16)
    ends = model.decoder.sample(
        2, cond={"image_embedding": e}, steps=4, options=SampleOptions(noise=model_noise(model, 2), deterministic=True)
    )
    torch.testing.assert_close(row[[0, 2]], ends)


def model_noise(model, n: int) -> torch.Tensor:
    """The one x_T ``interpolate_images`` draws from a generator seeded 0, for ``n`` images."""
    from lit_genvision.methods.diffusion import randn_like

    noise = randn_like(torch.empty((1, *model.decoder.sample_shape)), torch.Generator().manual_seed(0))
    return noise.expand(n, *noise.shape[1:])


def test_the_variations_command_writes_num_variations_per_image_and_refuses_other_models(parts, pipe, tmp_path):
    import numpy as np

    images = (np.random.default_rng(0).random((2, 16, 16, 1)) * 255).astype(np.uint8)
    np.savez(tmp_path / "in.npz", images)
    out = tmp_path / "var.npz"
    args = ["variations", "--ckpt", str(pipe), "--images", str(tmp_path / "in.npz"), "--num", "3", "--steps", "2"]
    assert main([*args, "--out", str(out)]) == 0
    with np.load(out) as data:
        assert data["arr_0"].shape == (6, 16, 16, 1) and data["arr_0"].dtype == np.uint8
    assert main([*args, "--text-diff", "a 1", "a 7", "--out", str(tmp_path / "diff.png")]) == 0
    other = ["variations", "--ckpt", parts["decoder"], "--images", str(tmp_path / "in.npz"), "--out", str(out)]
    assert main(other) == 2
