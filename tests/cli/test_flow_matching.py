"""Flow matching and class conditioning end to end through the CLI on tiny digits models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests_helpers import ROOT, tiny_diffusion_args

from lit_genvision.cli import main
from lit_genvision.data.base import to_unit_range
from lit_genvision.data.digits import DigitsDataModule
from lit_genvision.experiments import sources
from lit_genvision.experiments.checkpoints import load_model
from lit_genvision.experiments.store import ResultsStore
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.metrics.digits import load_digits_extractor

FLOW = ROOT / "configs" / "flow_matching"
DIFFUSION = ROOT / "configs" / "diffusion"


@pytest.fixture(scope="module")
def flow_ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow")
    main(["fit", *tiny_diffusion_args(root, "flow", max_steps=10, config=FLOW / "digits.yaml")])
    return root / "flow" / "version_0" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def conditional_ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("cond")
    out = {}
    for family, cfg in (
        ("diffusion", DIFFUSION / "digits_conditional.yaml"),
        ("flow", FLOW / "digits_conditional.yaml"),
    ):
        main(["fit", *tiny_diffusion_args(root, family, max_steps=6, config=cfg)])
        out[family] = root / family / "version_0" / "checkpoints" / "last.ckpt"
    return out


@pytest.mark.parametrize("solver, steps, nfe", [("euler", 4, 4), ("midpoint", 3, 6), ("heun", 3, 6), ("rk4", 2, 8)])
def test_sample_and_evaluate_with_each_fixed_step_solver(flow_ckpt, tmp_path, solver, steps, nfe):
    out = tmp_path / "s.npz"
    assert (
        main(
            [
                "sample",
                "--ckpt",
                str(flow_ckpt),
                "--num",
                "4",
                "--sampler",
                solver,
                "--steps",
                str(steps),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert np.load(out)["arr_0"].shape == (4, 8, 8, 1)
    store = tmp_path / "r.sqlite"
    main(
        [
            "evaluate",
            "--ckpt",
            str(flow_ckpt),
            "--num-samples",
            "70",
            "--sampler",
            solver,
            "--steps",
            str(steps),
            "--metrics",
            "digits_fd",
            "--store",
            str(store),
        ]
    )
    rec = ResultsStore(store).records(metric="digits_fd")[0]
    assert rec["family"] == "flow_matching" and rec["sampler"] == solver and rec["steps"] == nfe


def test_dopri5_records_the_nfe_it_spent(flow_ckpt, tmp_path):
    store = tmp_path / "r.sqlite"
    main(
        [
            "evaluate",
            "--ckpt",
            str(flow_ckpt),
            "--num-samples",
            "70",
            "--sampler",
            "dopri5",
            "--rtol",
            "1e-2",
            "--atol",
            "1e-2",
            "--metrics",
            "digits_fd",
            "--store",
            str(store),
        ]
    )
    rec = ResultsStore(store).records(metric="digits_fd")[0]
    assert rec["sampler"] == "dopri5(tol=0.01)" and rec["steps"] >= 7 and (rec["steps"] - 1) % 6 == 0


def test_noise_interpolation_row_is_deterministic(flow_ckpt, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for out in (a, b):
        main(["sample", "--ckpt", str(flow_ckpt), "--interpolate", "5", "--steps", "4", "--out", str(out)])
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("family", ["diffusion", "flow"])
def test_conditional_sampling_feeds_requested_labels_to_the_network_and_guidance_changes_samples(
    conditional_ckpts, family
):
    # Six training steps draw no recognisable digits, so what is checked is the conditioning itself:
    # every network call gets the requested labels (and the null label for the unguided branch),
    # and the labels reach the samples.
    model = load_model(conditional_ckpts[family])
    assert model.num_classes == 10 and "label" in model.required_keys()
    calls: list[torch.Tensor] = []
    model.net.register_forward_pre_hook(lambda net, args: calls.append(args[2]["label"].clone()))
    noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    requested, null = torch.tensor([0, 1, 2, 3]), torch.full((4,), 10)
    expected = {0.0: null, 1.0: requested, 3.0: torch.cat([requested, null])}
    outs = {}
    for s in (0.0, 1.0, 3.0):
        model.guidance_scale = s
        calls.clear()
        outs[s] = model.sample(4, cond={"label": requested}, options=SampleOptions(noise=noise.clone()), steps=3)
        assert calls and all(torch.equal(c, expected[s]) for c in calls), (s, calls)
    model.guidance_scale = 1.0
    other = model.sample(
        4, cond={"label": torch.tensor([4, 5, 6, 7])}, options=SampleOptions(noise=noise.clone()), steps=3
    )
    assert (other - outs[1.0]).abs().max() > 1e-4  # same noise, other labels: other samples
    assert (outs[0.0] - outs[3.0]).abs().max() > 1e-4
    model.guidance_scale = 3.0
    assert model.sampling_protocol(3)[0].endswith("+cfg3")


def test_guidance_flag_needs_a_conditional_model(flow_ckpt, tmp_path, capsys):
    assert main(["sample", "--ckpt", str(flow_ckpt), "--guidance", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert "--guidance needs a conditional model" in capsys.readouterr().err


def _spy_on_evaluated_model(monkeypatch, sample=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Patch the model `evaluate` loads so that every batch it scores, with the labels it asked for,
    is recorded; ``sample(num, labels)`` replaces the model's own sampling when given."""
    drawn: list[tuple[torch.Tensor, torch.Tensor]] = []

    def load(*args, **kwargs):
        model = load_model(*args, **kwargs)
        own = model.sample

        def spy(num, *, cond=None, **options):
            images = own(num, cond=cond, **options) if sample is None else sample(num, cond["label"])
            drawn.append((images.clone(), cond["label"].clone()))
            return images

        model.sample = spy
        return model

    monkeypatch.setattr(sources, "load_model", load)  # the samples source loads it
    return drawn


def test_conditional_evaluation_records_label_agreement(conditional_ckpts, tmp_path, monkeypatch):
    """The recorded label agreement is the share of the scored samples that the digits classifier
    puts in the class they were asked for, recomputed here from those samples."""
    drawn = _spy_on_evaluated_model(monkeypatch)
    store = tmp_path / "r.sqlite"
    assert (
        main(
            [
                "evaluate",
                "--ckpt",
                str(conditional_ckpts["diffusion"]),
                "--num-samples",
                "70",
                "--steps",
                "2",
                "--guidance",
                "2",
                "--store",
                str(store),
            ]
        )
        == 0
    )
    rec = {r["metric"]: r for r in ResultsStore(store).records()}
    images, labels = (torch.cat(parts) for parts in zip(*drawn, strict=True))
    assert len(labels) == 70 and torch.equal(labels.bincount(), torch.full((10,), 7))  # balanced requests
    predicted = load_digits_extractor(16)(images)[1].argmax(1)
    assert rec["label_agreement"]["value"] == pytest.approx((predicted == labels).double().mean().item(), abs=1e-9)
    assert rec["digits_fd"]["sampler"].endswith("+cfg2") and rec["digits_fd"]["steps"] == 4  # two passes per step


@pytest.mark.parametrize("shift, low, high", [(0, 0.95, 1.0), (1, 0.0, 0.05)])
def test_label_agreement_of_real_digits_is_near_one_with_their_labels_and_near_zero_with_wrong_ones(
    conditional_ckpts, tmp_path, monkeypatch, shift, low, high
):
    """A 'model' that answers each requested label c with a real held-out digit of class c + shift:
    its agreement is the classifier's accuracy (≥ 0.95) with shift 0, and about its confusion
    between neighbouring classes (≤ 0.05) with shift 1."""
    test = DigitsDataModule(image_size=8).split("test")
    by_class = [to_unit_range(test.images[test.labels == c]) for c in range(10)]

    def real_digits(num: int, labels: torch.Tensor) -> torch.Tensor:
        seen = [0] * 10
        out = []
        for c in ((labels + shift) % 10).tolist():
            out.append(by_class[c][seen[c] % len(by_class[c])])
            seen[c] += 1
        return torch.stack(out)

    drawn = _spy_on_evaluated_model(monkeypatch, real_digits)
    store = tmp_path / "r.sqlite"
    ckpt = str(conditional_ckpts["diffusion"])
    assert main(["evaluate", "--ckpt", ckpt, "--num-samples", "70", "--store", str(store)]) == 0
    assert sum(len(labels) for _, labels in drawn) == 70
    agreement = ResultsStore(store).records(metric="label_agreement")[0]["value"]
    assert low <= agreement <= high
