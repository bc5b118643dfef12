"""DiT: shapes, the zero output of adaLN-Zero, conditioning (labels, null K, masked context, vector),
the paper's sizes, and a DiffusionModel that takes a DiT where it takes a U-Net."""

from __future__ import annotations

import pytest
import torch
from tests_helpers import randomise

from lit_genvision.nn.dit import DIT_SIZES, DiT
from lit_genvision.nn.patches import patchify, unpatchify

B, C, S, K, M, CTX = 3, 2, 8, 5, 4, 12


def tiny(**kw) -> DiT:
    torch.manual_seed(0)
    return DiT(**{"in_channels": C, "image_size": S, "patch_size": 2, "hidden": 32, "depth": 2, "heads": 2, **kw})


def inputs(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, C, S, S, generator=g), torch.randint(0, 1000, (B,), generator=g).float()


def test_output_shape_equals_input_shape():
    x, t = inputs()
    assert tiny()(x, t).shape == x.shape
    assert tiny(out_channels=5)(x, t).shape == (B, 5, S, S)


def test_output_is_exactly_zero_at_initialisation_for_any_input():
    net = tiny(num_classes=K, context_dim=CTX, cond_dim=6)
    for seed in range(3):
        x, t = inputs(seed)
        g = torch.Generator().manual_seed(seed)
        cond = {
            "label": torch.randint(0, K + 1, (B,), generator=g),
            "vector": torch.randn(B, 6, generator=g),
            "context": torch.randn(B, M, CTX, generator=g),
        }
        assert torch.equal(net(x * 10, t, cond), torch.zeros_like(x))


def test_every_block_is_the_identity_at_initialisation():
    net = tiny(num_classes=K)
    z, c = torch.randn(B, 16, 32), torch.randn(B, 32)
    for block in net.blocks:
        assert torch.equal(block(z, cond=c), z)


def test_patchify_unpatchify_roundtrip_is_identity():
    x = torch.randn(B, C, S, S)
    tokens = patchify(x, 4)
    assert tokens.shape == (B, (S // 4) ** 2, 4 * 4 * C)
    assert torch.equal(unpatchify(tokens, 4, C), x)


def test_labels_change_the_output_after_a_perturbation_and_null_label_k_is_accepted():
    net = randomise(tiny(num_classes=K))
    x, t = inputs()
    out = {y: net(x, t, {"label": torch.full((B,), y)}) for y in (0, 1, K)}
    assert not torch.allclose(out[0], out[1])
    assert torch.isfinite(out[K]).all() and not torch.allclose(out[0], out[K])
    torch.testing.assert_close(net(x, t), out[K])  # no label: the null class K


def test_changing_a_masked_context_token_leaves_the_output_unchanged():
    net = randomise(tiny(context_dim=CTX))
    x, t = inputs()
    context = torch.randn(B, M, CTX)
    mask = torch.tensor([True, True, False, False]).expand(B, M)
    base = net(x, t, {"context": context, "context_mask": mask})
    masked, kept = context.clone(), context.clone()
    masked[:, 3] += 5.0
    kept[:, 0] += 5.0
    torch.testing.assert_close(net(x, t, {"context": masked, "context_mask": mask}), base)
    assert not torch.allclose(net(x, t, {"context": kept, "context_mask": mask}), base)  # the mask is not vacuous


def test_vector_conditioning_changes_the_output_and_its_null_flag_selects_the_null_embedding():
    net = randomise(tiny(cond_dim=6))
    x, t = inputs()
    v = torch.randn(B, 6)
    assert not torch.allclose(net(x, t, {"vector": v}), net(x, t, {"vector": -v}))
    flagged = net(x, t, {"vector": v, "vector_null": torch.ones(B, dtype=torch.bool)})
    torch.testing.assert_close(flagged, net(x, t, {}))


def test_named_sizes_are_the_papers_table_and_carry_the_patch():
    assert DIT_SIZES == {"S": (384, 12, 6), "B": (768, 12, 12), "L": (1024, 24, 16), "XL": (1152, 28, 16)}
    with torch.device("meta"):
        net = DiT.named("B/4", image_size=32)
    assert (net.patch_size, len(net.blocks), net.blocks[0].heads, net.blocks[0].dim) == (4, 12, 12, 768)
    with pytest.raises(ValueError, match="unknown DiT size"):
        DiT.named("M")


def test_dit_xl2_parameter_count_is_the_papers_675m_without_learn_sigma_and_the_frozen_positions():
    # The official DiT-XL/2 (256×256 images → 32×32×4 latents, 1000 classes) counts 675,129,632 parameters,
    # which include its frozen pos_embed (256 tokens × 1152; a buffer here) and the σ half of the output
    # projection (learn_sigma: 1152 × 16 weights + 16 biases), which this network does not predict.
    with torch.device("meta"):
        net = DiT.named("XL/2", in_channels=4, image_size=32, num_classes=1000)
    pos_embed, sigma_half = 256 * 1152, 1152 * 2 * 2 * 4 + 2 * 2 * 4
    assert sum(p.numel() for p in net.parameters()) == 675_129_632 - pos_embed - sigma_half


def test_a_diffusion_model_with_a_tiny_dit_trains_a_step_and_samples_with_guidance():
    from lit_genvision.methods import DDIMSampler, LinearSchedule
    from lit_genvision.models import DiffusionModel

    torch.manual_seed(0)
    net = DiT(in_channels=1, image_size=16, patch_size=4, hidden=32, depth=2, heads=2, num_classes=10)
    model = DiffusionModel(net, LinearSchedule(10), DDIMSampler(steps=2), label_dropout=0.5, guidance_scale=2.0)
    assert model.sample_shape == (1, 16, 16) and model.conditioning.batch_keys == ("label",)
    batch = {"image": torch.rand(8, 1, 16, 16) * 2 - 1, "label": torch.randint(0, 10, (8,))}
    loss = model.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and net.final.linear.weight.grad.abs().sum() > 0
    out = model.sample(4, steps=2)
    assert out.shape == (4, 1, 16, 16) and out.abs().max() <= 1


def test_a_flow_matching_model_takes_a_dit_too():
    from lit_genvision.models import FlowMatchingModel, ODESampler

    torch.manual_seed(0)
    net = DiT(in_channels=1, image_size=16, patch_size=4, hidden=32, depth=2, heads=2, num_classes=10)
    model = FlowMatchingModel(net, sampler=ODESampler("euler", steps=2), label_dropout=0.5, guidance_scale=2.0)
    batch = {"image": torch.rand(8, 1, 16, 16) * 2 - 1, "label": torch.randint(0, 10, (8,))}
    loss = model.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and net.final.linear.weight.grad.abs().sum() > 0
    out = model.sample(4)
    assert out.shape == (4, 1, 16, 16) and out.abs().max() <= 1
