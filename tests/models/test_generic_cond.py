"""A model conditioned through the generic ``cond`` path: a diffusion model trained on digits with a
made-up per-sample condition vector (a rotated one-hot of the label), with per-key dropout, sampled
with classifier-free guidance over the vector; a GAN conditioned on the same vector through the same
path; and the label path unchanged."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from lit_genvision.data import load_digits_uint8
from lit_genvision.methods import DDIMSampler, LinearSchedule
from lit_genvision.methods.guidance import classifier_free_guidance, drop_labels
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.models import DiffusionModel, FlowMatchingModel, GANModel
from lit_genvision.models.flow_matching import ODESampler
from lit_genvision.nn import UNet
from lit_genvision.nn.gan import DCGANDiscriminator, DCGANGenerator

DIM = 10


def unet(**kw) -> UNet:
    return UNet(image_size=8, channels=8, channel_mults=[1, 2], norm_groups=4, attention_at=[], **kw)


def rotation(seed: int = 0) -> torch.Tensor:
    """A fixed random orthogonal D×D matrix: the vector carries the label, but not as a one-hot."""
    q, _ = torch.linalg.qr(torch.randn(DIM, DIM, generator=torch.Generator().manual_seed(seed)))
    return q


class VectorDigits(Dataset):
    """Digits 8×8 in [-1, 1] with ``vector`` = one_hot(label) · R."""

    def __init__(self, n: int = 256) -> None:
        images, labels = load_digits_uint8(image_size=8)
        self.images = images[:n].float() / 127.5 - 1
        self.vectors = torch.nn.functional.one_hot(labels[:n], DIM).float() @ rotation()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i], "vector": self.vectors[i]}


class VectorDigitsModule(L.LightningDataModule):
    provides = ("image", "vector")

    def train_dataloader(self) -> DataLoader:
        return DataLoader(VectorDigits(), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))


def fit(model: L.LightningModule, datamodule: L.LightningDataModule, steps: int) -> None:
    L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(model, datamodule=datamodule)


def test_default_unet_keeps_todays_parameters():
    names = {n for n, _ in unet(num_classes=10).named_parameters()}
    assert not any(n.startswith("vector_") for n in names)
    assert {"vector_embed.proj.weight", "vector_embed.null"} <= {n for n, _ in unet(cond_dim=DIM).named_parameters()}


def test_vector_conditional_diffusion_trains_and_samples_with_guidance():
    torch.manual_seed(0)
    model = DiffusionModel(
        unet(cond_dim=DIM), LinearSchedule(50), DDIMSampler(steps=4), lr=2e-3, cond_dropout={"vector": 0.25}
    )
    assert model.required_keys() == ("image", "vector") and model.conditioning.batch_keys == ("vector",)
    seen: list[dict] = []
    hook = model.net.register_forward_pre_hook(lambda m, args: seen.append(args[2]))
    fit(model, VectorDigitsModule(), steps=20)
    flags = torch.cat([c["vector_null"] for c in seen])
    assert 0.1 < flags.float().mean().item() < 0.4  # the vector was dropped for about p = 0.25 of samples
    assert all(c["vector"][c["vector_null"]].abs().sum() == 0 for c in seen)  # dropped vectors are zeros

    seen.clear()
    cond = {"vector": torch.eye(DIM)[[3, 7]] @ rotation()}
    samples = {
        s: model.sample(2, cond=cond, options=SampleOptions(guidance=s), generator=torch.Generator().manual_seed(1))
        for s in (1, 2)
    }
    hook.remove()
    guided_calls = seen[len(seen) // 2 :]  # the guided run: one call of 2B per step
    assert len(guided_calls) == 4 and all(len(c["vector"]) == 4 for c in guided_calls)
    assert all(c["vector_null"].tolist() == [False, False, True, True] for c in guided_calls)  # the null branch
    assert samples[1].shape == (2, 1, 8, 8) and not torch.allclose(samples[1], samples[2])
    assert model.sampling_protocol() == ("ddim(eta=0)+cfg1", 4)

    # s = 0 is the unconditional model: the learned null embedding, as when no vector is given
    g = torch.Generator
    torch.testing.assert_close(
        model.sample(2, cond=cond, options=SampleOptions(guidance=0), generator=g().manual_seed(1)),
        model.sample(2, generator=g().manual_seed(1)),
    )


def test_vector_conditional_flow_matching_samples_with_guidance():
    torch.manual_seed(0)
    model = FlowMatchingModel(unet(cond_dim=DIM), sampler=ODESampler(steps=3), cond_dropout={"vector": 0.2})
    for p in model.net.parameters():  # zero-initialised layers would hide the condition
        torch.nn.init.normal_(p, std=0.1)
    cond = {"vector": torch.randn(2, DIM)}
    a, b = (
        model.sample(2, cond=cond, options=SampleOptions(guidance=s), generator=torch.Generator().manual_seed(0))
        for s in (1, 3)
    )
    assert not torch.allclose(a, b)


def test_missing_vector_key_fails_at_setup():
    class LabelsOnly(VectorDigitsModule):
        provides = ("image", "label")

    model = DiffusionModel(unet(cond_dim=DIM), LinearSchedule(10), DDIMSampler(steps=2))
    with pytest.raises(ValueError, match="needs batch key\\(s\\) vector"):
        fit(model, LabelsOnly(), steps=1)


@pytest.mark.parametrize("family", ["diffusion", "flow"])
def test_label_conditional_models_drop_and_guide_as_before(family):
    torch.manual_seed(0)
    net = unet(num_classes=10)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    model = (
        DiffusionModel(net, LinearSchedule(10), label_dropout=0.3)
        if family == "diffusion"
        else FlowMatchingModel(net, label_dropout=0.3)
    )
    batch = {"image": torch.zeros(64, 1, 8, 8), "label": torch.arange(64) % 10}
    torch.manual_seed(5)
    new = model.train_cond(batch)
    torch.manual_seed(5)
    assert new.keys() == {"label"} and torch.equal(new["label"], drop_labels(batch["label"], 0.3, 10))
    assert model.val_cond(batch)["label"] is batch["label"]
    assert model.required_keys() == ("image", "label")
    x, t, cond = torch.randn(4, 1, 8, 8), torch.tensor([1.0, 50.0, 300.0, 900.0]), model.sample_cond(4, None)
    assert cond["label"].tolist() == [0, 1, 2, 3]
    for s in (0.0, 1.0, 2.0):
        guided, encoded = model.guided_net(cond, x, s)  # the branches built (and encoded) once per sample()
        assert torch.equal(guided(x, t, encoded), classifier_free_guidance(net, s, 10)(x, t, cond))


def gan(**kw) -> GANModel:
    return GANModel(
        DCGANGenerator(latent_dim=8, image_size=8, out_channels=1, width=8, **kw),
        DCGANDiscriminator(in_channels=1, image_size=8, width=8, **kw),
    )


def test_vector_conditional_gan_trains_on_the_vector_through_both_networks():
    torch.manual_seed(0)
    model = gan(cond_dim=DIM)
    assert model.required_keys() == ("image", "vector") and model.conditioning.batch_keys == ("vector",)
    seen = {"generator": [], "discriminator": []}
    hooks = [
        getattr(model, name).register_forward_pre_hook(lambda m, args, name=name: seen[name].append(args[1]))
        for name in seen
    ]
    fit(model, VectorDigitsModule(), steps=6)
    for hook in hooks:
        hook.remove()
    for name, conds in seen.items():  # every call got the batch's vectors, none dropped (a GAN has no null)
        assert conds and all(set(c) == {"vector"} and c["vector"].shape[1] == DIM for c in conds), name
    vectors = torch.eye(DIM)[[2, 2, 5]] @ rotation()
    z = torch.randn(1, 8, generator=torch.Generator().manual_seed(0)).expand(3, 8)  # one z, three conditions
    images = model.sample(3, cond={"vector": vectors}, options=SampleOptions(noise=z))
    torch.testing.assert_close(images[0], images[1])  # same z, same vector
    assert (images[0] - images[2]).abs().max() > 100 * (images[0] - images[1]).abs().max()  # another vector


def test_gan_without_its_condition_fails_with_one_sentence():
    model = gan(cond_dim=DIM)
    with pytest.raises(ValueError, match="conditioned on 'vector': pass cond="):
        model.sample(2)


def test_gan_networks_must_share_their_conditioning():
    with pytest.raises(ValueError, match="generator has num_classes=10 but the discriminator num_classes=None"):
        GANModel(DCGANGenerator(8, 8, 1, width=8, num_classes=10), DCGANDiscriminator(1, 8, width=8))


def test_label_conditional_gan_sees_the_batch_labels_and_balanced_labels_when_sampling():
    torch.manual_seed(0)
    model = gan(num_classes=10)
    seen: list[dict] = []
    model.generator.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    batch = {"image": torch.zeros(4, 1, 8, 8), "label": torch.tensor([3, 1, 4, 1])}
    model.validation_step(batch, 0)
    assert seen[-1]["label"] is batch["label"]
    model.sample(12)
    assert seen[-1]["label"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
