"""CLIP's symmetric InfoNCE against a loop written from the formula, its logit-scale clamp, the retrieval and
zero-shot scores against brute force, and the loss on two DDP ranks against one process on the global batch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tests_helpers import run_rank_job

from lit_genvision.methods.contrastive import (
    INIT_LOG_SCALE,
    MAX_LOG_SCALE,
    clip_loss,
    gather_features,
    logit_scale,
    retrieval_recall,
    zero_shot_logits,
)

from .contrastive_ddp_job import VARIANTS, WORLD, build, global_batch, loss_and_grads

JOB = Path(__file__).resolve().parent / "contrastive_ddp_job.py"


def features(n: int = 5, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g), dim=-1), F.normalize(torch.randn(n, d, generator=g), dim=-1)


def reference_loss(image: torch.Tensor, text: torch.Tensor, scale: float) -> float:
    """½ (−1/N Σ_i log softmax_j(s I_i·T_j)_i − 1/N Σ_j log softmax_i(s I_i·T_j)_j), one entry at a time."""
    n = len(image)
    sim = [[scale * float(image[i] @ text[j]) for j in range(n)] for i in range(n)]
    i2t = sum(-(sim[i][i] - math.log(sum(math.exp(sim[i][j]) for j in range(n)))) for i in range(n)) / n
    t2i = sum(-(sim[j][j] - math.log(sum(math.exp(sim[i][j]) for i in range(n)))) for j in range(n)) / n
    return 0.5 * (i2t + t2i)


@pytest.mark.parametrize("log_scale", [0.0, 1.3, INIT_LOG_SCALE])
def test_loss_matches_the_formula_written_as_loops(log_scale):
    image, text = features()
    loss = clip_loss(image, text, torch.tensor(log_scale))
    assert loss.item() == pytest.approx(reference_loss(image, text, math.exp(log_scale)), rel=1e-5)


def test_loss_is_symmetric_in_image_and_text():
    image, text = features(n=6, d=3, seed=1)
    s = torch.tensor(1.7)
    torch.testing.assert_close(clip_loss(image, text, s), clip_loss(text, image, s))


def test_aligned_features_and_the_largest_scale_give_nearly_zero_loss():
    image = F.normalize(torch.eye(6, 8), dim=-1)  # orthonormal, so every non-match has cosine 0
    loss = clip_loss(image, image.clone(), torch.tensor(MAX_LOG_SCALE))
    assert loss.item() < 1e-6  # log(1 + 5 e^{-100})
    misaligned = clip_loss(image, image.roll(1, dims=0), torch.tensor(MAX_LOG_SCALE))
    assert misaligned.item() > 50  # the control: the same scale punishes the wrong pairing hard


def test_scale_is_clamped_at_100_with_no_gradient_above_the_cap():
    assert logit_scale(torch.tensor(INIT_LOG_SCALE)).item() == pytest.approx(1 / 0.07)
    assert logit_scale(torch.tensor(MAX_LOG_SCALE)).item() == pytest.approx(100)
    high = torch.tensor(MAX_LOG_SCALE + 2.0, requires_grad=True)
    s = logit_scale(high)
    assert s.item() == pytest.approx(100)
    s.backward()
    assert high.grad.item() == 0.0  # a functional clamp: documented in logit_scale
    low = torch.tensor(1.0, requires_grad=True)
    logit_scale(low).backward()
    assert low.grad.item() == pytest.approx(math.e)


def test_gather_features_and_gathered_loss_are_identities_in_one_process():
    image, text = features()
    gathered_image, gathered_text = gather_features(image, text)
    assert gathered_image is image and gathered_text is text
    s = torch.tensor(2.0)
    for kwargs in VARIANTS.values():
        torch.testing.assert_close(clip_loss(image, text, s, **kwargs), clip_loss(image, text, s, gather=False))


def brute_force_recall(image: torch.Tensor, text: torch.Tensor, k: int) -> tuple[float, float]:
    n = len(image)
    sim = [[float(F.cosine_similarity(image[i], text[j], dim=0)) for j in range(n)] for i in range(n)]
    i2t = sum(i in sorted(range(n), key=lambda j: -sim[i][j])[:k] for i in range(n)) / n
    t2i = sum(j in sorted(range(n), key=lambda i: -sim[i][j])[:k] for j in range(n)) / n
    return i2t, t2i


def test_retrieval_recall_matches_brute_force():
    g = torch.Generator().manual_seed(3)
    image = torch.randn(12, 4, generator=g)
    text = image + 1.2 * torch.randn(12, 4, generator=g)  # noisy captions: recall@1 is neither 0 nor 1
    got = retrieval_recall(image, text, ks=(1, 3, 5))
    assert set(got) == {f"{w}_r{k}" for w in ("i2t", "t2i") for k in (1, 3, 5)}
    for k in (1, 3, 5):
        assert (got[f"i2t_r{k}"], got[f"t2i_r{k}"]) == pytest.approx(brute_force_recall(image, text, k))
    assert 0 < got["i2t_r1"] < 1
    assert retrieval_recall(image, 3 * image)["i2t_r1"] == 1.0  # scale-free: features are normalised inside


def test_zero_shot_logits_are_cosine_similarities():
    g = torch.Generator().manual_seed(4)
    image, classes = torch.randn(7, 5, generator=g), torch.randn(3, 5, generator=g)
    logits = zero_shot_logits(image, classes)
    assert logits.shape == (7, 3)
    for i in range(7):
        for c in range(3):
            cos = image[i] @ classes[c] / (image[i].norm() * classes[c].norm())
            assert logits[i, c].item() == pytest.approx(cos.item(), abs=1e-6)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict[str, dict[str, torch.Tensor]]]:
    out = tmp_path_factory.mktemp("contrastive_ddp")
    run_rank_job([str(JOB), str(out)], "2-rank contrastive job", timeout=120)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.fixture(scope="module")
def single() -> dict[str, torch.Tensor]:
    return loss_and_grads(build(), *global_batch())


def grads(result: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in result.items() if k.startswith("grad.")}


def test_two_ranks_with_gathered_features_equal_one_process_on_the_global_batch(ranks, single):
    for variant in ("global", "local"):
        for r in range(WORLD):  # DDP leaves both ranks with the same averaged gradient ...
            torch.testing.assert_close(grads(ranks[r][variant]), grads(single))  # the message names the key
    for r in range(WORLD):  # ... and the global loss is every rank's loss ...
        torch.testing.assert_close(ranks[r]["global"]["loss"], single["loss"])
    local = [ranks[r]["local"]["loss"] for r in range(WORLD)]  # ... or, with local_loss, the mean of the ranks'
    torch.testing.assert_close(sum(local) / WORLD, single["loss"])
    assert not torch.allclose(local[0], single["loss"])  # a rank's local loss covers its own rows only


def test_without_gathering_a_rank_sees_fewer_negatives_and_a_different_loss(ranks, single):
    """The control: the same job with gather=False does not reproduce the global batch."""
    for r in range(WORLD):
        assert not torch.allclose(ranks[r]["no_gather"]["loss"], single["loss"], atol=1e-3)
    assert not torch.allclose(ranks[0]["no_gather"]["grad.image.weight"], single["grad.image.weight"], atol=1e-4)


def test_gather_without_grad_scales_or_loses_the_tower_gradients(ranks, single):
    """gather_with_grad=False: the global loss's tower gradients come out 1/W of one process's (the scale's is
    equal); with local_loss the other ranks' gradients through this rank's negatives are lost altogether."""
    nograd = ranks[0]["global_nograd"]
    torch.testing.assert_close(nograd["loss"], single["loss"])
    expected = {name: g if name == "grad.log_scale" else g / WORLD for name, g in grads(single).items()}
    torch.testing.assert_close(grads(nograd), expected)
    lost = ranks[0]["local_nograd"]["grad.image.weight"]
    assert not torch.allclose(lost, single["grad.image.weight"], atol=1e-4)
    assert not torch.allclose(lost, single["grad.image.weight"] / WORLD, atol=1e-4)
