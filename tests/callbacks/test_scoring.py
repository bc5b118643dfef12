"""QualityScore: a registered metric scored during a tiny digits fit, equal to `evaluate`'s score of
the same checkpoint, and drawn without touching training's random stream."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from tests_helpers import tiny_diffusion_args

from lit_genvision.callbacks import QualityScore
from lit_genvision.cli import main
from lit_genvision.experiments.store import ResultsStore

SEED, NUM, BATCH, EVERY, MAX_STEPS = 3, 80, 30, 4, 8


class Recording(QualityScore):
    """QualityScore that keeps (global step, values) of every score."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scores: list[tuple[int, dict[str, float]]] = []

    def score(self, trainer, pl_module):
        values = super().score(trainer, pl_module)
        self.scores.append((trainer.global_step, values))
        return values


def _fit(root: Path, name: str, callbacks: list) -> Path:
    assert main(["fit", *tiny_diffusion_args(root, name=name, max_steps=MAX_STEPS)], callbacks=callbacks) == 0
    ckpt = root / name / "version_0" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    return ckpt


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory) -> tuple[Path, Recording]:
    root = tmp_path_factory.mktemp("scored")
    callback = Recording(metrics="digits_fd", every_n_steps=EVERY, num_samples=NUM, seed=SEED, batch_size=BATCH)
    return _fit(root, "scored", [callback]), callback


def test_logs_the_metric_at_the_configured_steps(scored_run):
    ckpt, callback = scored_run
    assert [step for step, _ in callback.scores] == [4, 8]
    for _, values in callback.scores:
        assert set(values) == {"digits_fd", "recognised", "min_class_share", "class_entropy"}
        assert values["digits_fd"] > 0
    with open(ckpt.parents[1] / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/digits_fd")]
    assert [int(r["step"]) for r in rows] == [4, 8]
    assert [float(r["val/digits_fd"]) for r in rows] == pytest.approx([v["digits_fd"] for _, v in callback.scores])
    assert callback.monitor == "val/digits_fd" and callback.mode == "min"


def test_the_logged_score_is_evaluates_score_of_the_checkpoint(scored_run, tmp_path):
    ckpt, callback = scored_run
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"] == MAX_STEPS
    store = tmp_path / "r.sqlite"
    argv = ["evaluate", "--ckpt", str(ckpt), "--num-samples", str(NUM), "--batch-size", str(BATCH)]
    assert main([*argv, "--seed", str(SEED), "--metrics", "digits_fd", "--store", str(store)]) == 0
    recorded = {r["metric"]: r["value"] for r in ResultsStore(store).records()}
    step, values = callback.scores[-1]
    assert step == MAX_STEPS
    for metric, value in values.items():
        assert recorded[metric] == pytest.approx(value, rel=1e-9, abs=1e-12), metric


def test_scoring_leaves_the_training_run_bitwise_unchanged(scored_run, tmp_path):
    ckpt, _ = scored_run
    plain = _fit(tmp_path, "plain", [])
    a = torch.load(ckpt, map_location="cpu", weights_only=False)
    b = torch.load(plain, map_location="cpu", weights_only=False)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    shadow_a, shadow_b = ([v["shadow"] for v in c["callbacks"].values() if "shadow" in v][0] for c in (a, b))
    assert shadow_a.keys() == shadow_b.keys() and shadow_a
    assert all(torch.equal(shadow_a[k], shadow_b[k]) for k in shadow_a)


def test_refuses_too_few_samples_and_unknown_metrics():
    with pytest.raises(ValueError, match="too few for digits_fd"):
        QualityScore(num_samples=64)
    with pytest.raises(ValueError, match="unknown metric"):
        QualityScore(metrics="nope")
