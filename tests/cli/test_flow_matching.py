"""Flow matching and class conditioning end to end through the CLI on tiny digits models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests_helpers import ROOT, tiny_diffusion_args

from lit_genvision.cli import main
from lit_genvision.experiments.checkpoints import load_model
from lit_genvision.experiments.store import ResultsStore

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
def test_conditional_model_generates_requested_labels_and_guidance_changes_samples(conditional_ckpts, family):
    model = load_model(conditional_ckpts[family])
    assert model.num_classes == 10 and "label" in model.required_keys()
    noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    cond = {"label": torch.tensor([0, 1, 2, 3])}
    outs = {}
    for s in (0.0, 1.0, 3.0):
        model.guidance_scale = s
        outs[s] = model.sample(4, cond=cond, noise=noise.clone(), steps=3)
    assert (outs[0.0] - outs[3.0]).abs().max() > 1e-4
    assert model.sampling_protocol(3)[0].endswith("+cfg3")


def test_guidance_flag_needs_a_conditional_model(flow_ckpt, tmp_path, capsys):
    assert main(["sample", "--ckpt", str(flow_ckpt), "--guidance", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert "--guidance needs a class-conditional model" in capsys.readouterr().err


def test_conditional_evaluation_records_label_agreement(conditional_ckpts, tmp_path):
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
    assert 0.0 <= rec["label_agreement"]["value"] <= 1.0
    assert rec["digits_fd"]["sampler"].endswith("+cfg2") and rec["digits_fd"]["steps"] == 4  # two passes per step
