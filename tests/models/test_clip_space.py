"""CLIP's image embeddings as a diffusion space (``models.clip_space``), and a prior sampled through it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lit_genvision.methods import CosineSchedule, DDIMSampler, DiffusionMethod
from lit_genvision.models import CLIPImageEncoder, CLIPImageSpace, CLIPTextEncoder, DenoisingModel
from lit_genvision.models.unclip import sample_image_embeddings, text_embeddings
from lit_genvision.nn import ConditionedNet, PriorTransformer


def images(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_sqrt_d_space_scales_unit_embeddings_by_sqrt_d_and_decodes_to_them(clip_ckpt):
    space = CLIPImageSpace(str(clip_ckpt), normalise="sqrt_d")
    x = images()
    e = space.embed(x)
    z = space.encode(x)
    torch.testing.assert_close(z.norm(dim=-1), torch.full((8,), math.sqrt(space.dim)))
    torch.testing.assert_close(space.decode(z), e)
    assert space.is_scaled and space.sample_shape((1, 16, 16)) == (space.dim,)


def test_standardise_space_measures_mean_and_std_per_dimension_and_inverts_them(clip_ckpt):
    space = CLIPImageSpace(str(clip_ckpt), normalise="standardise")
    assert not space.is_scaled
    with pytest.raises(RuntimeError, match="fit_scale"):
        space.encode(images())
    space.fit_scale([images(16, 1), images(16, 2)])
    z = space.encode(torch.cat([images(16, 1), images(16, 2)]))
    torch.testing.assert_close(z.mean(0), torch.zeros(space.dim), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(space.dim), atol=1e-4, rtol=0)
    torch.testing.assert_close(space.decode(z), space.embed(torch.cat([images(16, 1), images(16, 2)])))
    state = space.state_dict()
    assert {"mean", "std"} <= set(state)


def test_the_image_encoder_resizes_images_of_another_side_to_the_clips_and_refuses_other_channels(clip_ckpt):
    encoder = CLIPImageEncoder(str(clip_ckpt))
    big = torch.rand(3, 1, 40, 40) * 2 - 1
    small = F.interpolate(big, size=(16, 16), mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)
    torch.testing.assert_close(encoder(big), F.normalize(encoder.clip.image_tower(small), dim=-1))
    torch.testing.assert_close(encoder(small), encoder.clip.encode_image(small))
    with pytest.raises(ValueError, match="reads 1-channel images and got 3-channel"):
        encoder(torch.zeros(1, 3, 16, 16))


def test_unknown_normalisation_is_refused_with_the_choices(clip_ckpt):
    with pytest.raises(ValueError, match="sqrt_d, standardise"):
        CLIPImageSpace(str(clip_ckpt), normalise="l2")


def tiny_prior(clip_ckpt) -> DenoisingModel:
    torch.manual_seed(0)
    net = ConditionedNet(
        PriorTransformer(embed_dim=64, width=16, depth=1, heads=2, context_dim=16),
        text_encoder=CLIPTextEncoder(str(clip_ckpt)),
        text_pooled=True,
    )
    method = DiffusionMethod(CosineSchedule(100), prediction="x0", sampler=DDIMSampler(steps=4))
    return DenoisingModel(net, method, space=CLIPImageSpace(str(clip_ckpt)), image_shape=(1, 16, 16)).eval()


def test_a_prior_draws_unit_norm_embeddings_the_best_of_k_by_cosine_to_the_caption_reproducibly(clip_ckpt):
    prior = tiny_prior(clip_ckpt)
    prompts = ["a 3", "a thick seven"]
    one = sample_image_embeddings(prior, prompts, candidates=3, generator=torch.Generator().manual_seed(0))
    again = sample_image_embeddings(prior, prompts, candidates=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(one, again)
    torch.testing.assert_close(one.norm(dim=-1), torch.ones(2))
    drawn = prior.sample(6, cond={"text": prompts * 3}, generator=torch.Generator().manual_seed(0)).view(3, 2, -1)
    cos = F.cosine_similarity(drawn, text_embeddings(prior, prompts)[None], dim=-1)  # (K, B)
    torch.testing.assert_close(one, drawn[cos.argmax(0), torch.arange(2)])
    with pytest.raises(ValueError, match="at least 1"):
        sample_image_embeddings(prior, prompts, candidates=0)


def test_a_prior_trains_on_a_batch_of_captioned_images_with_the_x0_loss(clip_ckpt):
    prior = tiny_prior(clip_ckpt).train()
    batch = {"image": images(4), "text": ["a 1", "a 2", "a 3", "a 4"]}
    loss = prior.method.loss(prior.net, prior.space.encode(batch["image"]), {"text": batch["text"]})
    loss.backward()
    assert loss.item() > 0
    grads = [p.grad for p in prior.net.backbone.parameters() if p.grad is not None]
    assert grads and not any(p.requires_grad for p in prior.space.parameters())
