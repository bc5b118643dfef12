"""VQ, RVQ, FSQ and LFQ against their formulas, brute force and hand computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lit_genvision.methods.quantizers import (
    CodebookUsage,
    FiniteScalarQuantizer,
    LookupFreeQuantizer,
    Quantizer,
    ResidualVectorQuantizer,
    VectorQuantizer,
    kmeans,
    lfq_entropy_terms,
    nearest_code,
    perplexity,
)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# -- VQ -------------------------------------------------------------------------------------------


def test_vq_nearest_code_matches_brute_force_in_both_layouts():
    vq = VectorQuantizer(6, 32, seed=1).eval()
    z = randn(3, 6, 5, 4)
    z_q, indices, _ = vq(z)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 6)
    brute = (vectors[:, None, :] - vq.codebook[None]).pow(2).sum(-1).argmin(1)
    assert torch.equal(indices.reshape(-1), brute)
    assert torch.equal(nearest_code(vectors, vq.codebook.detach()), brute)
    torch.testing.assert_close(z_q.permute(0, 2, 3, 1).reshape(-1, 6), vq.codebook[brute].detach())
    torch.testing.assert_close(vq.indices_to_codes(indices), z_q)
    # the same vectors as a (B, N, C) token sequence with channel_dim=-1
    tokens = VectorQuantizer(6, 32, seed=1, channel_dim=-1).eval()
    t_q, t_indices, _ = tokens(vectors.reshape(3, 20, 6))
    assert t_indices.shape == (3, 20) and torch.equal(t_indices.reshape(-1), brute)
    torch.testing.assert_close(t_q.reshape(-1, 6), z_q.permute(0, 2, 3, 1).reshape(-1, 6))


@pytest.mark.parametrize(
    "make",
    [
        lambda: VectorQuantizer(4, 16),
        lambda: VectorQuantizer(4, 16, ema=True),
        lambda: ResidualVectorQuantizer.build(4, 16, 3),
        lambda: LookupFreeQuantizer(4),
    ],
    ids=["vq", "vq_ema", "rvq", "lfq"],
)
def test_straight_through_gradient_is_the_identity(make):
    quantizer: Quantizer = make().eval()
    z = randn(2, 4, 3, 3).requires_grad_(True)
    weight = randn(2, 4, 3, 3, seed=5)
    z_q, _, _ = quantizer(z)
    (grad,) = torch.autograd.grad((z_q * weight).sum(), z)
    torch.testing.assert_close(grad, weight)  # ∂(w·z_q)/∂z = w  ⇔  ∂z_q/∂z = I


def test_fsq_rounding_is_straight_through_the_bound():
    fsq = FiniteScalarQuantizer([5, 4], channel_dim=-1)
    z = randn(7, 2).requires_grad_(True)
    (grad,) = torch.autograd.grad(fsq(z).z_q.sum(), z)
    bounded = fsq.bound(z)
    (expected,) = torch.autograd.grad((bounded / fsq.half_width).sum(), z)  # round's Jacobian = I
    torch.testing.assert_close(grad, expected)


def test_vq_losses_match_the_vq_vae_formulas():
    vq = VectorQuantizer(4, 8, beta=0.3, channel_dim=-1)
    z = randn(10, 4).requires_grad_(True)
    _, indices, aux = vq(z)
    e = vq.codebook[indices]
    codebook = ((z.detach() - e) ** 2).mean()
    commitment = 0.3 * ((z - e.detach()) ** 2).mean()
    torch.testing.assert_close(aux.losses["codebook"], codebook)
    torch.testing.assert_close(aux.losses["commitment"], commitment)
    torch.testing.assert_close(aux.loss, codebook + commitment)
    # sg[·] routes each term to one side: the codebook loss trains e, the commitment trains z
    (g_code_z,) = torch.autograd.grad(aux.losses["codebook"], z, retain_graph=True, allow_unused=True)
    (g_commit_e,) = torch.autograd.grad(aux.losses["commitment"], vq.codebook, retain_graph=True, allow_unused=True)
    assert g_code_z is None and g_commit_e is None


def test_ema_update_equals_its_formula_on_a_hand_made_batch():
    vq = VectorQuantizer(2, 2, ema=True, decay=0.5, eps=0.0, channel_dim=-1)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    vq.embed_sum.copy_(vq.codebook)
    vq.cluster_size.fill_(1.0)
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]])
    _, indices, aux = vq.train()(z)
    assert indices.tolist() == [0, 0, 1]
    assert set(aux.losses) == {"commitment"}  # the EMA replaces the codebook loss
    # N = ½·1 + ½·(2, 1) = (1.5, 1);  m = ½·e + ½·Σz = ((0.5, 0.5), (9.5, 9.5));  ε = 0: e = m / N
    torch.testing.assert_close(vq.cluster_size, torch.tensor([1.5, 1.0]))
    torch.testing.assert_close(vq.embed_sum, torch.tensor([[0.5, 0.5], [9.5, 9.5]]))
    torch.testing.assert_close(vq.codebook, torch.tensor([[1 / 3, 1 / 3], [9.5, 9.5]]))


def test_ema_laplace_smoothing_equals_its_formula():
    vq = VectorQuantizer(2, 3, ema=True, decay=0.9, eps=0.1, channel_dim=-1)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [5.0, 5.0], [50.0, 50.0]]))
    vq.embed_sum.copy_(vq.codebook)
    vq.cluster_size.fill_(1.0)
    z = torch.tensor([[1.0, 1.0], [4.0, 6.0], [6.0, 4.0]])
    vq.train()(z)
    n = torch.tensor([0.9 + 0.1 * 1, 0.9 + 0.1 * 2, 0.9])
    m = torch.tensor([[0.1, 0.1], [0.9 * 5 + 0.1 * 10, 0.9 * 5 + 0.1 * 10], [45.0, 45.0]])
    smoothed = (n + 0.1) / (n.sum() + 3 * 0.1) * n.sum()
    torch.testing.assert_close(vq.codebook, m / smoothed[:, None])


def test_eval_mode_leaves_every_buffer_unchanged():
    vq = VectorQuantizer(4, 8, ema=True, kmeans_init=True, restart_dead=True, usage_window=1, channel_dim=-1)
    before = {k: v.clone() for k, v in vq.state_dict().items() if isinstance(v, torch.Tensor)}
    vq.eval()(randn(20, 4))
    after = vq.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_kmeans_init_lowers_the_first_batch_distortion_against_random_init():
    centres = randn(8, 4, seed=3) * 4
    x = (centres[torch.arange(256) % 8] + 0.3 * randn(256, 4, seed=4)).reshape(16, 16, 4)

    def distortion(vq: VectorQuantizer) -> float:
        z_q, _, _ = vq(x)
        return (z_q - x).pow(2).sum(-1).mean().item()

    random_init = VectorQuantizer(4, 8, channel_dim=-1, seed=0).eval()
    kmeans_init = VectorQuantizer(4, 8, channel_dim=-1, seed=0, kmeans_init=True, kmeans_iters=5).train()
    first = distortion(kmeans_init)  # the first training batch initialises, then quantises
    assert bool(kmeans_init.initialised)
    assert first < 0.5 * distortion(random_init)
    # Lloyd iterations never raise the k-means objective
    flat = x.reshape(-1, 4)
    costs = []
    for iters in range(4):
        c = kmeans(flat, 8, iters, torch.Generator().manual_seed(0))
        costs.append((flat - c[nearest_code(flat, c)]).pow(2).sum().item())
    assert all(b <= a + 1e-4 for a, b in zip(costs, costs[1:], strict=False)), costs


def test_dead_code_restart_reseeds_exactly_the_unused_codes():
    vq = VectorQuantizer(2, 8, restart_dead=True, usage_window=2, channel_dim=-1, seed=0)
    live = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with torch.no_grad():
        vq.codebook[:4] = live
        vq.codebook[4:] = 100.0  # forced collapse: codes 4..7 are never the nearest
    batch = live.repeat(8, 1) + 0.01 * randn(32, 2)
    vq.train()
    vq(batch)
    assert torch.equal(vq.codebook[4:].detach(), torch.full((4, 2), 100.0))  # not yet dead after 1 pass
    _, _, aux = vq(batch)
    assert aux.utilisation.item() == 0.5 and aux.dead_codes.item() == 4  # collapse visible in the stats
    assert torch.equal(vq.codebook[:4].detach(), live)  # used codes untouched
    reseeded = vq.codebook[4:].detach()
    assert all(any(torch.equal(row, b) for b in batch) for row in reseeded)  # from the recent encoder outputs
    assert len({tuple(r.tolist()) for r in reseeded}) == 4
    assert vq.usage.dead_mask().sum().item() == 0
    _, _, aux = vq(batch)  # the revived codes now win some vectors
    assert aux.used_codes.item() > 4


# -- RVQ ------------------------------------------------------------------------------------------


def test_rvq_residuals_telescope_and_error_falls_with_each_stage():
    rvq = ResidualVectorQuantizer.build(4, 8, 4, kmeans_init=True, kmeans_iters=5, channel_dim=-1)
    x = randn(128, 4)
    rvq.train()(x)  # each stage k-means-initialises on its own residual
    rvq.eval()
    x_hat, indices, _, _, residuals = rvq.quantize_stages(x, 4)
    errors = [x.pow(2).sum().item()] + [r.pow(2).sum().item() for r in residuals]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    torch.testing.assert_close(x - x_hat, residuals[-1])  # x − x̂ = r_N
    stage_codes = [stage.codes_flat(indices[:, i]) for i, stage in enumerate(rvq.stages)]
    torch.testing.assert_close(x_hat, torch.stack(stage_codes).sum(0))  # x̂ = Σ q_i
    z_q, out_indices, _ = rvq(x)
    assert out_indices.shape == (128, 4)
    torch.testing.assert_close(rvq.indices_to_codes(out_indices), z_q)
    for n in range(1, 5):  # fewer stages, the same recursion cut short
        z_n, idx_n, aux = rvq(x, num_stages=n)
        assert idx_n.shape == (128, n) and aux.perplexity.shape == (n,)
        torch.testing.assert_close((x - z_n).pow(2).sum().item(), errors[n], rtol=1e-5, atol=1e-4)


def test_quantizer_dropout_trains_on_fewer_stages():
    rvq = ResidualVectorQuantizer.build(4, 8, 4, quantizer_dropout=True, seed=3).train()
    x = randn(2, 4, 3, 3)
    stages = [rvq(x).indices.shape[-1] for _ in range(30)]
    assert set(stages) <= {1, 2, 3, 4} and min(stages) < 4 and len(set(stages)) > 1
    assert rvq.eval()(x).indices.shape == (2, 3, 3, 4)  # inference: every stage unless told
    plain = ResidualVectorQuantizer.build(4, 8, 4, seed=3).train()
    assert {plain(x).indices.shape[-1] for _ in range(5)} == {4}


# -- FSQ ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [3, 4, 2]])
def test_fsq_index_code_bijection_over_the_whole_codebook(levels):
    fsq = FiniteScalarQuantizer(levels, channel_dim=-1)
    size = math.prod(levels)
    assert fsq.codebook_size == size
    every = torch.arange(size)
    codes = fsq.indices_to_codes(every)  # (size, d)
    assert torch.equal(fsq.codes_to_indices(codes), every)
    assert torch.unique(codes, dim=0).shape[0] == size
    for i, level in enumerate(levels):  # channel i takes exactly L_i values
        assert torch.unique(codes[:, i]).numel() == level
    # quantising any input lands on the grid, and its index maps back to the code
    z = 3 * randn(500, len(levels))
    z_q, indices, aux = fsq.eval()(z)
    torch.testing.assert_close(fsq.indices_to_codes(indices), z_q)
    assert aux.loss.item() == 0.0 and aux.losses == {}


# -- LFQ ------------------------------------------------------------------------------------------


def test_lfq_indices_are_the_bits_and_codes_are_the_signs():
    lfq = LookupFreeQuantizer(6, channel_dim=-1).eval()
    z = randn(50, 6)
    z_q, indices, _ = lfq(z)
    bits = (z > 0).long()
    assert torch.equal(indices, sum(bits[:, i] << i for i in range(6)))
    assert torch.equal(z_q, torch.where(z > 0, 1.0, -1.0))
    every = torch.arange(64)
    codes = lfq.indices_to_codes(every)
    assert torch.equal(lfq(codes).indices, every)  # the whole implicit codebook {−1, 1}^6 and back
    assert torch.unique(codes, dim=0).shape[0] == 64


def test_lfq_entropy_and_commitment_losses_match_a_direct_computation():
    k, tau = 4, 0.7
    z = randn(30, k)
    codes = torch.tensor([[1.0 if (c >> i) & 1 else -1.0 for i in range(k)] for c in range(2**k)])
    p = torch.softmax(-torch.cdist(z, codes).pow(2) / tau, dim=1)  # (3) as written
    per_sample = -(p * p.log()).sum(1).mean()
    avg = p.mean(0)
    codebook = -(avg * avg.log()).sum()
    got_sample, got_codebook = lfq_entropy_terms(z, tau)
    torch.testing.assert_close(got_sample, per_sample)
    torch.testing.assert_close(got_codebook, codebook)
    # the factorised fallback: per-sample entropy exact, codebook entropy an upper bound
    fact_sample, fact_codebook = lfq_entropy_terms(z, tau, exact_entropy_bits=0)
    torch.testing.assert_close(fact_sample, per_sample)
    assert fact_codebook.item() >= codebook.item() - 1e-5
    lfq = LookupFreeQuantizer(k, entropy_weight=0.2, commitment_weight=0.5, diversity_gamma=1.5, temperature=tau)
    _, _, aux = lfq.train()(z.t().reshape(1, k, 5, 6))
    flat = z.t().reshape(1, k, 5, 6).permute(0, 2, 3, 1).reshape(-1, k)
    p_flat = torch.softmax(-torch.cdist(flat, codes).pow(2) / tau, dim=1)
    h_sample = -(p_flat * p_flat.log()).sum(1).mean()
    h_codebook = -(p_flat.mean(0) * p_flat.mean(0).log()).sum()
    torch.testing.assert_close(aux.losses["entropy"], 0.2 * (h_sample - 1.5 * h_codebook))
    torch.testing.assert_close(aux.losses["commitment"], 0.5 * (flat - torch.sign(flat)).pow(2).mean())
    torch.testing.assert_close(aux.loss, aux.losses["entropy"] + aux.losses["commitment"])


# -- statistics -----------------------------------------------------------------------------------


def test_perplexity_of_known_distributions():
    assert perplexity(torch.tensor([5, 5, 5, 5])).item() == pytest.approx(4.0)
    assert perplexity(torch.tensor([0, 9, 0])).item() == pytest.approx(1.0)
    h = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert perplexity(torch.tensor([2, 1, 1, 0])).item() == pytest.approx(math.exp(h))


def test_usage_statistics_count_utilisation_and_dead_codes_over_the_window():
    usage = CodebookUsage(4, window=2)
    s = usage.observe(torch.tensor([0, 0, 1]), update=True)  # pass 0
    assert s["utilisation"].item() == 0.5 and s["dead_codes"].item() == 0
    assert s["perplexity"].item() == pytest.approx(perplexity(torch.tensor([2, 1])).item())
    s = usage.observe(torch.tensor([0]), update=True)  # pass 1: 2 and 3 unused for 2 passes
    assert s["utilisation"].item() == 0.5 and s["dead_codes"].item() == 2
    s = usage.observe(torch.tensor([0]), update=True)  # pass 2: 1 unused for 2 passes
    assert s["used_codes"].item() == 1 and s["dead_codes"].item() == 3
    frozen = usage.step.clone()
    usage.observe(torch.tensor([1, 2, 3]), update=False)  # eval: reported, not recorded
    assert torch.equal(usage.step, frozen) and usage.dead_mask().sum().item() == 3


def test_huge_implicit_codebooks_report_batch_unique_codes():
    lfq = LookupFreeQuantizer(20, entropy_weight=0.0, channel_dim=-1).train()
    assert lfq.usage is not None and lfq.usage.last_used.numel() == 0  # no 2^20 buffer
    z = torch.tensor([[1.0] * 20, [1.0] * 20, [-1.0] * 20])
    aux = lfq(z).aux
    assert aux.used_codes.item() == 2 and aux.utilisation.item() == pytest.approx(2 / 2**20)
    assert aux.perplexity.item() == pytest.approx(perplexity(torch.tensor([2, 1])).item())


# -- checkpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: VectorQuantizer(
            4, 8, ema=True, kmeans_init=True, restart_dead=True, usage_window=2, cosine=True, lookup_dim=3, seed=seed
        ),
        lambda seed: ResidualVectorQuantizer.build(
            4, 8, 3, quantizer_dropout=True, restart_dead=True, usage_window=2, kmeans_init=True, seed=seed
        ),
        lambda seed: FiniteScalarQuantizer([5, 4, 3, 3]),
        lambda seed: LookupFreeQuantizer(4),
    ],
    ids=["vq_all_options", "rvq_dropout", "fsq", "lfq"],
)
def test_state_dict_round_trip_reproduces_outputs_bitwise(make):
    torch.manual_seed(0)
    original = make(0).train()
    batches = [randn(4, 4, 3, 3, seed=s) for s in range(6)]
    for b in batches[:3]:
        original(b)
    torch.manual_seed(1)  # the copy's own initial weights differ; the state dict must override all
    resumed = make(7).train()
    resumed.load_state_dict(original.state_dict())
    for b in batches[3:]:
        a, r = original(b), resumed(b)
        assert torch.equal(a.z_q, r.z_q) and torch.equal(a.indices, r.indices)
        assert torch.equal(a.aux.loss, r.aux.loss)
    for (name, x), (_, y) in zip(original.state_dict().items(), resumed.state_dict().items(), strict=True):
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y), name


def test_vit_vqgan_options_quantise_unit_vectors_in_the_lookup_space():
    vq = VectorQuantizer(8, 16, cosine=True, lookup_dim=3, channel_dim=-1).eval()
    z = randn(20, 8)
    z_q, indices, _ = vq(z)
    h = F.normalize(vq.project_in(z), dim=1)
    codes = F.normalize(vq.codebook, dim=1)
    assert torch.equal(indices, (h @ codes.t()).argmax(1))  # nearest by l2 on unit vectors = largest cosine
    torch.testing.assert_close(z_q, vq.project_out(codes[indices]))
