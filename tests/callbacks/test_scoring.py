"""QualityScore: a registered metric scored during a tiny digits fit, equal to `evaluate`'s score of
the same checkpoint on one process or sharded over two, and drawn without touching training's
random stream."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from tests_helpers import run_rank_job, tiny_diffusion_args

from lit_genvision.callbacks import QualityScore
from lit_genvision.cli import main
from lit_genvision.experiments.evaluate import EvaluateOptions, evaluate
from lit_genvision.experiments.store import ResultsStore

SEED, NUM, BATCH, EVERY, MAX_STEPS = 3, 80, 30, 4, 8
JOB = Path(__file__).resolve().parent / "scoring_ddp_job.py"


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


def _run_job(out: Path, devices: int, every: int, max_steps: int) -> None:
    """Run scoring_ddp_job.py (a fit with QualityScore) on ``devices`` gloo processes."""
    run_rank_job(
        [str(JOB), str(out), str(devices), *map(str, (SEED, NUM, BATCH, every, max_steps))],
        f"{devices}-rank scoring job",
    )


def test_two_ranks_score_disjoint_shards_and_log_the_single_process_score(tmp_path):
    """Under DDP (2 CPU gloo ranks) each rank generates its own batches of the one sample set
    (batch b from seed (seed, b), rank r taking every second batch: 80 samples in batches of 30
    give rank 0 batches 0 and 2, rank 1 batch 1), rank 0 scores the gathered features, and every
    rank gets the value. That value is the single-process score of the same weights:
    ``evaluate`` on one process of the step's checkpoint, which equals the single-process
    callback's (``test_the_logged_score_is_evaluates_score_of_the_checkpoint``)."""
    every, max_steps = 2, 4
    _run_job(tmp_path, 2, every, max_steps)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert [s["step"] for s in r0] == [s["step"] for s in r1] == [2, 4]
    for a, b in zip(r0, r1, strict=True):
        assert a["values"] == b["values"] and a["values"]["digits_fd"] > 0  # broadcast from rank 0
        assert a["batches"] == [0, 2] and b["batches"] == [1]  # disjoint, together the whole set
        assert sorted(a["batches"] + b["batches"]) == list(range(math.ceil(NUM / BATCH)))
    run = tmp_path / "scored" / "version_0"
    with open(run / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/digits_fd")]
    assert [int(r["step"]) for r in rows] == [2, 4]  # logged once, by rank 0
    assert [float(r["val/digits_fd"]) for r in rows] == pytest.approx([s["values"]["digits_fd"] for s in r0])

    ckpt = run / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"] == max_steps
    options = EvaluateOptions(ckpt=ckpt, metrics="digits_fd", num_samples=NUM, batch_size=BATCH, seed=SEED)
    records = evaluate(dataclasses.replace(options, device="cpu", store=tmp_path / "r.sqlite"))
    single = {r["metric"]: r["value"] for r in records}
    assert set(single) == set(r0[-1]["values"])
    for metric, value in r0[-1]["values"].items():
        # one thread per rank in the job, two here: float sums may differ in the last bits
        assert single[metric] == pytest.approx(value, rel=1e-5, abs=1e-8), metric
