"""VQModel (the tokenizer) and the token prior's network on tiny shapes: the adaptive GAN weight
against its formula, the quantizer statistics logged, the GAN term only after its start step, and
the KV-cached decoding equal to teacher forcing."""

from __future__ import annotations

import pytest
import torch
from fixtures.latent import TinyConvDecoder, TinyConvEncoder

from lit_genvision.methods.quantizers import FiniteScalarQuantizer, ResidualVectorQuantizer, VectorQuantizer
from lit_genvision.models.tokenizer import VQModel, adaptive_weight, last_layer_weight
from lit_genvision.nn.token_prior import TokenTransformer


def tokenizer(quantizer=None, discriminator=None, **kw) -> VQModel:
    torch.manual_seed(0)
    return VQModel(
        TinyConvEncoder(), TinyConvDecoder(), quantizer or VectorQuantizer(3, 16), discriminator=discriminator, **kw
    )


def test_adaptive_weight_is_the_ratio_of_gradient_norms_at_the_last_layer():
    torch.manual_seed(0)
    w = torch.randn(4, 3, requires_grad=True)
    x = torch.randn(5, 3)
    rec, gan = (x @ w.T).pow(2).mean(), (x @ w.T).sin().sum()
    g_rec = torch.autograd.grad(rec, w, retain_graph=True)[0]
    g_gan = torch.autograd.grad(gan, w, retain_graph=True)[0]
    expected = g_rec.norm() / (g_gan.norm() + 1e-4)
    torch.testing.assert_close(adaptive_weight(rec, gan, w), expected)
    assert not adaptive_weight(rec, gan, w).requires_grad


def test_last_layer_is_the_decoders_final_conv():
    model = tokenizer()
    assert last_layer_weight(model.decoder) is model.decoder.net[2].weight


@pytest.mark.parametrize(
    "quantizer, grid",
    [
        (VectorQuantizer(3, 16), (4, 4)),
        (FiniteScalarQuantizer([5, 4, 3]), (4, 4)),
        (ResidualVectorQuantizer.build(3, 8, num_stages=2), (4, 4, 2)),
    ],
)
def test_token_grid_round_trip(quantizer, grid):
    model = tokenizer(quantizer).eval()
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    indices = model.encode_indices(x)
    assert model.token_shape() == grid and indices.shape == (2, *grid)
    torch.testing.assert_close(model.decode_indices(indices), model.reconstruct(x))
    assert model.bits_per_image() == pytest.approx(16 * quantizer.bits)


def _train_steps(model: VQModel, steps: int) -> list[dict]:
    import lightning as L

    logs: list[dict] = []
    model.log = lambda name, value, **kw: logs.append({name: value})  # type: ignore[method-assign]
    model.log_dict = lambda values, **kw: logs.append(dict(values))  # type: ignore[method-assign]
    trainer = L.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    data = torch.utils.data.DataLoader([{"image": torch.rand(1, 8, 8) * 2 - 1} for _ in range(16)], batch_size=4)
    trainer.fit(model, train_dataloaders=data)
    return logs


def test_training_logs_the_codebook_statistics_every_step():
    model = tokenizer()
    logs = _train_steps(model, 3)
    stats = [entry for entry in logs if "train/quantizer/perplexity" in entry]
    assert len(stats) == 3
    assert all({"train/quantizer/utilisation", "train/quantizer/dead_codes"} <= set(s) for s in stats)
    assert int(model.tokenizer_steps) == 3


def test_the_gan_term_starts_after_its_start_step():
    disc = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 4, 2, 1), torch.nn.LeakyReLU(0.2), torch.nn.Conv2d(4, 1, 3))
    model = tokenizer(discriminator=disc, adversarial_start=2)
    before = [p.detach().clone() for p in disc.parameters()]
    logs = _train_steps(model, 6)  # max_steps counts both optimisers' steps: 1 + 1 + 2 + 2
    steps_with_gan = [entry for entry in logs if "train/adaptive_weight" in entry]
    assert int(model.tokenizer_steps) == 4 and len(steps_with_gan) == 2  # steps 2 and 3 of 0…3
    assert all(entry["train/adaptive_weight"] >= 0 for entry in steps_with_gan)
    assert any(not torch.equal(a, b) for a, b in zip(before, disc.parameters(), strict=True))


def test_kv_cached_decoding_equals_teacher_forcing():
    torch.manual_seed(0)
    net = TokenTransformer(vocab_size=7, length=6, stages=2, dim=16, depth=2, heads=2, num_classes=3).eval()
    for p in net.parameters():  # the zero-initialised head would make every logit equal
        torch.nn.init.normal_(p, std=0.3)
    codes, labels = torch.randint(0, 7, (2, 6)), torch.tensor([1, 2])
    full = net(codes, {"label": labels})  # (2, 6, 7)
    cache, x, stepped = net.new_cache(), net.prefix_tokens({"label": labels}, 2, codes.device), []
    for i in range(6):
        stepped.append(net.step(x, cache))
        x = net.embed_tokens(codes[:, i : i + 1], i)
    torch.testing.assert_close(torch.stack(stepped, 1), full, atol=1e-5, rtol=1e-5)


def test_the_prior_is_causal_and_stages_have_their_own_embeddings():
    torch.manual_seed(0)
    net = TokenTransformer(vocab_size=5, length=4, stages=2, dim=16, depth=1, heads=2).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    a = torch.tensor([[1, 2, 3, 4]])
    b = a.clone()
    b[0, 3] = 0  # changing the last code changes no logit (the last code is never an input)
    b2 = a.clone()
    b2[0, 1] = 0  # changing c_1 changes the logits of c_2 and c_3 only
    torch.testing.assert_close(net(a), net(b))
    diff = (net(a) - net(b2)).abs().sum(-1)[0]
    assert diff[:2].max() == 0 and diff[2:].min() > 0
    assert net.code_ids(torch.tensor([[1, 1, 1, 1]]), 0).tolist() == [[1, 6, 1, 6]]


def test_the_perceptual_term_adds_w_times_lpips_and_stays_out_of_the_checkpoint(tmp_path):
    from fixtures.lpips import _lin_state, _vgg_state

    from lit_genvision.nn.lpips import LPIPS

    torch.save(_vgg_state(), tmp_path / "vgg16.pth")
    torch.save(_lin_state(), tmp_path / "vgg.pth")
    files = (str(tmp_path / "vgg16.pth"), str(tmp_path / "vgg.pth"))
    plain, perceptual = tokenizer(), tokenizer(perceptual_weights=files, perceptual_weight=0.5)
    perceptual.build_perceptual()
    x, x_hat = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    expected = plain._rec_loss(x_hat, x) + 0.5 * LPIPS(*files)(x_hat, x).mean()
    torch.testing.assert_close(perceptual._rec_loss(x_hat, x), expected)
    assert not any("lpips" in k.lower() or "vgg" in k.lower() for k in perceptual.state_dict())


def test_missing_perceptual_weights_fail_before_training(tmp_path):
    model = tokenizer(perceptual_weights=(str(tmp_path / "no.pth"), str(tmp_path / "no2.pth")))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.build_perceptual()  # what fit does at setup, before the first step
