"""One ``sample()`` protocol for every family: the options are one ``SampleOptions`` object, each family
declares the options it takes, and an option a family has no use for is refused in one sentence instead of
being ignored."""

from __future__ import annotations

import inspect

import pytest
import torch

from lit_genvision.methods import DDIMSampler, LinearSchedule, SampleOptions
from lit_genvision.models import DiffusionModel, FlowMatchingModel, GANModel, VAEModel
from lit_genvision.models.base import GenerativeModel
from lit_genvision.nn import ConvDecoder, ConvEncoder, DCGANDiscriminator, DCGANGenerator, UNet

PROTOCOL = ("cond", "steps", "generator", "options")


def unet(num_classes: int | None = None) -> UNet:
    return UNet(image_size=8, channels=8, channel_mults=[1, 2], norm_groups=4, num_classes=num_classes)


def gan(num_classes: int | None = None) -> GANModel:
    return GANModel(
        DCGANGenerator(latent_dim=8, image_size=16, out_channels=1, width=8, num_classes=num_classes),
        DCGANDiscriminator(in_channels=1, image_size=16, width=8, num_classes=num_classes),
    )


def vae() -> VAEModel:
    return VAEModel(
        ConvEncoder(in_channels=1, image_size=16, channels=[8, 8], out_dim=4),
        ConvDecoder(out_channels=1, image_size=16, channels=[8, 8], latent_dim=2),
        latent_dim=2,
    )


FAMILIES = {
    "diffusion": lambda: DiffusionModel(unet(), LinearSchedule(10), DDIMSampler(steps=2)),
    "flow": lambda: FlowMatchingModel(unet()),
    "gan": gan,
    "vae": vae,
}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_declares_the_protocol_and_swallows_nothing(family):
    params = inspect.signature(type(FAMILIES[family]()).sample).parameters
    assert all(name in params for name in PROTOCOL)
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    base = inspect.signature(GenerativeModel.sample).parameters
    assert tuple(base)[2:] == PROTOCOL  # (self, num, *protocol)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_samples_with_the_protocol_defaults(family):
    model = FAMILIES[family]()
    x = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert x.shape[0] == 3 and x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("family", FAMILIES)
def test_every_option_a_family_accepts_is_a_sample_option(family):
    model = FAMILIES[family]()
    names = {f for f in SampleOptions.__dataclass_fields__} | {"steps"}
    assert "noise" in model.accepts and model.accepts <= names


def call(model, option: str, value):
    """sample() with one option: ``cond`` and ``steps`` are arguments, the rest ``SampleOptions``."""
    if option in ("cond", "steps"):
        return model.sample(2, **{option: value})
    return model.sample(2, options=SampleOptions(**{option: value}))


@pytest.mark.parametrize(
    "family, option, value, message",
    [
        ("gan", "steps", 10, "GANModel (gan family) does not take steps= in sample(); omit it."),
        ("gan", "guidance", 3.0, "does not take guidance="),
        ("gan", "temperature", 0.7, "does not take temperature="),
        ("vae", "steps", 10, "VAEModel (vae family) does not take steps="),
        ("vae", "cond", {"label": torch.zeros(2, dtype=torch.long)}, "takes no condition"),
        ("diffusion", "temperature", 0.7, "DiffusionModel (diffusion family) does not take temperature= in sample()"),
        ("diffusion", "guidance", 3.0, "does not take guidance="),  # an unconditional network
        ("flow", "temperature", 0.7, "does not take temperature="),
    ],
)
def test_an_option_a_family_has_no_use_for_is_refused(family, option, value, message):
    with pytest.raises(ValueError, match="^.*$") as err:
        call(FAMILIES[family](), option, value)
    assert message in str(err.value)
    assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")  # one sentence


def test_an_unconditional_diffusion_model_refuses_a_condition():
    with pytest.raises(ValueError, match="is not class-conditional"):
        FAMILIES["diffusion"]().sample(2, cond={"label": torch.zeros(2, dtype=torch.long)})


@pytest.mark.parametrize("cls", [DiffusionModel, FlowMatchingModel])
def test_guidance_argument_overrides_the_configured_scale(cls):
    torch.manual_seed(0)
    net = unet(num_classes=10)
    with torch.no_grad():  # an untrained U-Net ignores its label (zero-initialised output): wake it up
        for p in net.parameters():
            p.normal_(0, 0.2)
    model = cls(net, LinearSchedule(10), DDIMSampler(steps=2)) if cls is DiffusionModel else cls(net)
    noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    cond = {"label": torch.tensor([0, 1, 2, 3])}
    model.guidance_scale = 3.0
    by_attribute = model.sample(4, cond=cond, options=SampleOptions(noise=noise.clone()), steps=2)
    model.guidance_scale = 1.0
    by_argument = model.sample(4, cond=cond, steps=2, options=SampleOptions(noise=noise.clone(), guidance=3.0))
    plain = model.sample(4, cond=cond, options=SampleOptions(noise=noise.clone()), steps=2)
    torch.testing.assert_close(by_argument, by_attribute)
    assert (by_argument - plain).abs().max() > 0


def test_balanced_labels_continue_from_the_batch_offset():
    model = gan(num_classes=10)
    assert model.sample_cond(4, None, offset=256)["label"].tolist() == [6, 7, 8, 9]
    assert model.sample_cond(3, None)["label"].tolist() == [0, 1, 2]
