"""One end-to-end fit per family on digits, with the quality the issues require."""

from __future__ import annotations

import csv

import pytest
from tests_helpers import ROOT

from lit_genvision.cli import main
from lit_genvision.experiments.store import ResultsStore


def test_classifier_reaches_97_percent(tmp_path):
    cfg = ROOT / "configs" / "classifier" / "digits.yaml"
    common = [
        "--config",
        str(cfg),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
    ]
    main(["fit", *common, "--trainer.default_root_dir", str(tmp_path)])
    ckpt = tmp_path / "classifier-digits" / "version_0" / "checkpoints" / "last.ckpt"
    main(["test", *common, "--ckpt_path", str(ckpt)])
    rows = list(csv.DictReader(open(tmp_path / "classifier-digits" / "version_1" / "metrics.csv")))
    acc = float(next(r["test/acc"] for r in rows if r.get("test/acc")))
    assert acc >= 0.97


@pytest.mark.slow
def test_demo_ddpm_is_within_2_5x_of_the_real_data_floor(tmp_path):
    """`make demo`'s model: digits-FD ≤ 2.5× the floor and every class ≥ 5% of samples (~6 min)."""
    store = str(tmp_path / "r.sqlite")
    main(
        [
            "fit",
            "--config",
            str(ROOT / "configs" / "diffusion" / "digits.yaml"),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
        ]
    )
    ckpt = tmp_path / "diffusion-digits" / "version_0" / "checkpoints" / "last.ckpt"
    main(["evaluate", "--baseline", "real", "--store", store])
    main(["evaluate", "--ckpt", str(ckpt), "--sampler", "ddim", "--steps", "50", "--store", store])
    fd = {r["model"]: r["value"] for r in ResultsStore(store).records(metric="digits_fd")}
    share = {r["model"]: r["value"] for r in ResultsStore(store).records(metric="min_class_share")}
    model = next(k for k in fd if not k.startswith("baseline"))
    assert fd[model] <= 2.5 * fd["baseline:real"]
    assert share[model] >= 0.05
