"""RePaint (Lugmayr et al. 2022): the jump schedule, the known region at every step, r = 1 as plain
composite-each-step sampling, and the option through a model's ``inpaint``."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from lit_genvision.methods import DDIMSampler, DDPMSampler, DiffusionMethod, LinearSchedule, RePaint
from lit_genvision.methods.diffusion import q_sample, to_x0_eps
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.models import DiffusionModel, FlowMatchingModel, ODESampler
from lit_genvision.nn import ConditionedNet, UNet


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Spy:
    """A tiny fixed network ε̂ = conv(x)·(1 + t/T) that records what it is called with."""

    def __init__(self, timesteps: int = 50) -> None:
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)
        self.timesteps = timesteps
        self.inputs: list[Tensor] = []
        self.times: list[int] = []

    @torch.no_grad()
    def __call__(self, x: Tensor, t: Tensor, cond: object) -> Tensor:
        self.inputs.append(x.clone())
        self.times.append(int(t[0]))
        return 0.1 * self.conv(x) * (1 + t.view(-1, 1, 1, 1) / self.timesteps)


class SilentDDIM(DDIMSampler):
    """DDIM whose noise is zero: every ε of the walk (known region, jumps) is 0, so q(x_t | x_0) is √ᾱ_t x_0."""

    @staticmethod
    def noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
        return torch.zeros_like(x)


def _setup(batch: int = 4, size: int = 8) -> tuple[Tensor, Tensor, Tensor]:
    """(noise, known, mask): the left half known, 1 = to generate."""
    noise = torch.randn(batch, 1, size, size, generator=_gen(1))
    known = torch.rand(batch, 1, size, size, generator=_gen(2)) * 2 - 1
    mask = torch.ones(batch, 1, size, size)
    mask[..., : size // 2] = 0
    return noise, known, mask


def test_the_walk_jumps_back_j_positions_r_minus_1_times_at_every_jth_position_from_the_end() -> None:
    assert RePaint(jump=2, resample=3).walk(6) == [0, 1, 2, 3, 1, 2, 3, 1, 2, 3, 4, 5, 3, 4, 5, 3, 4, 5, 6]
    assert RePaint(jump=3, resample=1).walk(5) == [0, 1, 2, 3, 4, 5]
    assert RePaint(jump=10, resample=10).nfe(250) == 250 + 24 * 9 * 10  # the paper's 250 steps, j = r = 10


@pytest.mark.parametrize(("steps", "jump", "resample"), [(50, 5, 5), (20, 1, 4), (7, 3, 2), (3, 5, 3), (1, 1, 3)])
def test_the_walk_ends_at_x0_and_costs_S_plus_floor_S_minus_1_over_j_times_r_minus_1_times_j(
    steps: int, jump: int, resample: int
) -> None:
    repaint = RePaint(jump, resample)
    walk = repaint.walk(steps)
    assert walk[0] == 0 and walk[-1] == steps and min(walk) >= 0
    assert all(b == a + 1 or b == a - jump for a, b in zip(walk, walk[1:], strict=False))
    assert repaint.nfe(steps) == steps + (steps - 1) // jump * (resample - 1) * jump


def test_the_network_sees_the_walks_timesteps() -> None:
    method = DiffusionMethod(LinearSchedule(50), sampler=DDPMSampler(steps=6))
    net, (noise, known, mask) = Spy(), _setup()
    repaint = RePaint(jump=2, resample=3)
    repaint.sample(method, net, noise, None, known, mask, generator=_gen(0))
    seq, walk = method.sampler.timesteps(method.schedule), repaint.walk(6)
    assert net.times == [seq[a] for a, b in zip(walk, walk[1:], strict=False) if b > a]


@pytest.mark.parametrize(("jump", "resample"), [(1, 1), (2, 3), (3, 2)])
def test_the_known_region_the_network_sees_is_the_forward_noised_known_image(jump: int, resample: int) -> None:
    method = DiffusionMethod(LinearSchedule(50), sampler=SilentDDIM(steps=8))
    net, (noise, known, mask) = Spy(), _setup()
    out = RePaint(jump, resample).sample(method, net, noise, None, known, mask)
    keep = mask == 0
    for x, t in list(zip(net.inputs, net.times, strict=True))[1:]:  # the first input is x_T, pure noise
        ab = method.schedule.alpha_bar(torch.tensor([t]), x)
        torch.testing.assert_close(x[keep], (ab.sqrt() * known)[keep], rtol=0, atol=1e-6)
    assert torch.equal(out[keep], known[keep])  # x_0: the known pixels themselves
    assert torch.isfinite(out).all()


def test_with_noise_the_known_region_has_the_forward_process_statistics() -> None:
    method = DiffusionMethod(LinearSchedule(50), sampler=DDPMSampler(steps=10))
    net = Spy()
    noise = torch.randn(64, 1, 16, 16, generator=_gen(3))
    known, mask = torch.full_like(noise, 0.5), torch.ones_like(noise)
    mask[..., :8] = 0
    RePaint(jump=3, resample=3).sample(method, net, noise, None, known, mask, generator=_gen(4))
    for x, t in list(zip(net.inputs, net.times, strict=True))[1:]:
        ab = method.schedule.alpha_bar(torch.tensor([t]), x).flatten()
        region = x[..., :8]  # 8,192 values of N(√ᾱ·0.5, 1 − ᾱ)
        assert abs(region.mean() - ab.sqrt() * 0.5) < 0.05
        assert abs(region.std() - (1 - ab).sqrt()) < 0.05


@pytest.mark.parametrize("sampler", [DDPMSampler(steps=7), DDIMSampler(steps=7, eta=0.5)])
@pytest.mark.parametrize("jump", [1, 3])
def test_r_1_is_plain_sampling_with_the_known_region_composited_after_every_step(sampler, jump: int) -> None:
    method = DiffusionMethod(LinearSchedule(50), sampler=sampler)
    net, (noise, known, mask) = Spy(), _setup()
    out = RePaint(jump, resample=1).sample(method, net, noise, None, known, mask, generator=_gen(5))

    g, x, seq = _gen(5), noise, sampler.timesteps(method.schedule)
    for i, t in enumerate(seq):  # the loop of Sampler.__call__, then the known region at the step reached
        t_prev = seq[i + 1] if i + 1 < len(seq) else -1
        tt = torch.full((len(x),), t)
        ab_t = method.schedule.alpha_bar(tt, x)
        ab_prev = method.schedule.alpha_bar(torch.full_like(tt, t_prev), x) if t_prev >= 0 else torch.ones_like(ab_t)
        x0, eps = to_x0_eps("eps", x, net(x, tt, None), ab_t)
        x0 = x0.clamp(-1, 1)
        eps = (x - ab_t.sqrt() * x0) / (1 - ab_t).sqrt()
        x = sampler.step(x, x0, eps, ab_t, ab_prev, g)
        if t_prev >= 0:
            x_known = q_sample(method.schedule, known, torch.full_like(tt, t_prev), torch.randn(x.shape, generator=g))
        else:
            x_known = known
        x = mask * x + (1 - mask) * x_known
    assert torch.equal(out, x)


def test_with_nothing_known_and_r_1_it_is_the_deterministic_sampler_itself() -> None:
    method = DiffusionMethod(LinearSchedule(50), sampler=DDIMSampler(steps=6, eta=0.0))
    net, (noise, known, _) = Spy(), _setup()
    out = RePaint(jump=2, resample=1).sample(method, net, noise, None, known, torch.ones_like(noise))
    assert torch.equal(out, method.sample(net, noise))


def test_jumps_change_the_sample_and_the_same_generator_repeats_it() -> None:
    method = DiffusionMethod(LinearSchedule(50), sampler=DDPMSampler(steps=6))
    noise, known, mask = _setup()
    one = RePaint(2, 1).sample(method, Spy(), noise, None, known, mask, generator=_gen(6))
    a = RePaint(2, 3).sample(method, Spy(), noise, None, known, mask, generator=_gen(6))
    b = RePaint(2, 3).sample(method, Spy(), noise, None, known, mask, generator=_gen(6))
    assert torch.equal(a, b) and not torch.equal(a, one)


def test_callback_counts_the_network_evaluations() -> None:
    method = DiffusionMethod(LinearSchedule(50), sampler=DDIMSampler(steps=5))
    calls: list[tuple[int, int]] = []
    noise, known, mask = _setup()
    RePaint(2, 2).sample(method, Spy(), noise, None, known, mask, callback=lambda i, n: calls.append((i, n)))
    nfe = RePaint(2, 2).nfe(5)
    assert calls == [(i, nfe) for i in range(1, nfe + 1)]


@pytest.mark.parametrize(("kwargs", "match"), [({"jump": 0}, "jump"), ({"resample": 0}, "resample")])
def test_repaint_rejects_bad_args(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RePaint(**kwargs)


def _inpainting_model(cls=DiffusionModel) -> DiffusionModel | FlowMatchingModel:
    torch.manual_seed(0)
    unet = UNet(in_channels=3, out_channels=1, image_size=8, channels=8, channel_mults=[1, 2], depth=1, norm_groups=4)
    extra = (LinearSchedule(20), DDIMSampler(steps=4)) if cls is DiffusionModel else (None, ODESampler("euler", 2))
    return cls(ConditionedNet(unet, inpainting=True), *extra)


def test_a_model_inpaints_with_repaint_keeping_known_pixels_and_naming_it_in_its_protocol() -> None:
    model = _inpainting_model()
    images = torch.rand(3, 1, 8, 8, generator=_gen(7)) * 2 - 1
    masks = torch.zeros(3, 8, 8)
    masks[:, 2:6, 2:6] = 1
    repaint = RePaint(jump=2, resample=2)
    plain = model.inpaint(images, masks, generator=_gen(0))
    out = model.inpaint(images, masks, generator=_gen(0), repaint=repaint)
    same = model.sample(
        3, cond={"image": images, "mask": masks}, generator=_gen(0), options=SampleOptions(repaint=repaint)
    )
    known = (masks == 0)[:, None]
    assert torch.equal(out[known], images[known]) and torch.equal(out, same)
    assert not torch.equal(out, plain)
    assert model.sampling_protocol(options=SampleOptions(repaint=repaint)) == ("ddim(eta=0)+repaint(j=2,r=2)+cfg1", 6)


def test_repaint_is_refused_without_a_known_region_with_a_start_and_for_a_flow_model() -> None:
    model, images, masks = _inpainting_model(), torch.zeros(2, 1, 8, 8), torch.ones(2, 8, 8)
    with pytest.raises(ValueError, match="resamples an inpainting"):
        model.sample(2, options=SampleOptions(repaint=RePaint()))
    from lit_genvision.methods import Start

    with pytest.raises(ValueError, match="does not take start="):
        model.inpaint(images, masks, options=SampleOptions(start=Start(images, 0.5)), repaint=RePaint())
    with pytest.raises(ValueError, match="RePaint resamples a diffusion sampler"):
        _inpainting_model(FlowMatchingModel).inpaint(images, masks, repaint=RePaint())
    with pytest.raises(ValueError, match="repaint must be a RePaint"):
        SampleOptions(repaint=(2, 2))  # type: ignore[arg-type]
