"""Lightning DDP on the CPU with two gloo processes (`strategy=ddp`, `devices=2`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

JOB = Path(__file__).resolve().parent / "ddp_job.py"


def _run(out: Path, devices: int, *extra: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(JOB), str(out), str(devices), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    ddp, single = tmp_path_factory.mktemp("ddp"), tmp_path_factory.mktemp("single")
    for out, devices in ((ddp, 2), (single, 1)):
        proc = _run(out, devices)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return (
        [torch.load(ddp / f"rank{r}.pt", weights_only=True) for r in (0, 1)],
        torch.load(single / "rank0.pt", weights_only=True),
    )


def test_ranks_end_with_identical_weights_and_ema(ddp_results):
    (r0, r1), _ = ddp_results
    for key in r0["weights"]:
        torch.testing.assert_close(r0["weights"][key], r1["weights"][key], rtol=0, atol=0, msg=key)
    for key in r0["ema"]:
        torch.testing.assert_close(r0["ema"][key], r1["ema"][key], rtol=0, atol=0, msg=key)


def test_each_sample_is_seen_once_per_epoch(ddp_results):
    (r0, r1), _ = ddp_results
    for epoch in r0["seen"]:
        a, b = r0["seen"][epoch], r1["seen"][epoch]
        assert not set(a) & set(b) and len(set(a)) == len(a) and len(set(b)) == len(b)
        # 1,258 train images, 629 per rank, 19 full batches of 32 each (drop_last): 1,216 distinct samples
        assert len(a) + len(b) == 2 * (629 // 32) * 32


def test_synchronised_metric_equals_the_single_process_value_on_the_same_data(ddp_results, tmp_path):
    """Validation accuracy of the DDP run's final EMA weights (validation runs on the EMA), computed
    by one process over the whole val split, equals the value the two ranks logged and synchronised
    (each rank saw half of the split)."""
    (r0, _), _ = ddp_results
    from lit_genvision.data import DigitsDataModule
    from lit_genvision.nn import SmallConvNet

    net = SmallConvNet(1, 10, width=32, feature_dim=64)
    net.load_state_dict({k.removeprefix("net."): v for k, v in r0["ema"].items() if k.startswith("net.")})
    dm = DigitsDataModule(image_size=16)
    val = dm.split("val")
    x = dm.device_transform({"image": val.images}, training=False)["image"]
    acc = (net.eval()(x).argmax(1) == val.labels).float().mean().item()
    assert acc == pytest.approx(r0["val_acc"], abs=1e-6)


def test_a_failing_rank_ends_the_whole_job_and_the_last_checkpoint_survives(tmp_path):
    start = time.monotonic()
    proc = _run(tmp_path, 2, "25", timeout=240)  # epoch 2; the epoch-1 checkpoint exists
    assert proc.returncode != 0 and time.monotonic() - start < 240
    assert "rank 1 fails on purpose" in proc.stderr + proc.stdout
    ckpt = tmp_path / "ddp" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 19  # 629 samples per rank / 32


def test_sharded_evaluate_equals_the_single_process_result(tiny_checkpoint, tmp_path):
    """`evaluate --devices 2` shards generation and features over two gloo processes and gathers
    them on rank 0; its scores equal the single-process run's (batch b always has seed (seed, b))."""
    from lit_genvision.experiments.store import ResultsStore

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    values = []
    for devices in (1, 2):
        store = tmp_path / f"r{devices}.sqlite"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "lit_genvision",
                "evaluate",
                "--ckpt",
                str(tiny_checkpoint),
                "--num-samples",
                "130",
                "--batch-size",
                "40",
                "--steps",
                "3",
                "--device",
                "cpu",
                "--devices",
                str(devices),
                "--store",
                str(store),
            ],
            capture_output=True,
            text=True,
            timeout=240,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        values.append({r["metric"]: r["value"] for r in ResultsStore(store).records()})
    assert set(values[0]) == set(values[1]) and "digits_fd" in values[0]
    for metric, value in values[0].items():
        assert values[1][metric] == pytest.approx(value, rel=1e-5, abs=1e-8), metric


def test_gan_manual_optimisation_under_ddp_keeps_ranks_identical(tmp_path):
    """The conditional GAN (two optimisers, toggle_optimizer, spectral norm, EMA) for one epoch on
    two gloo processes: the parameters of generator and discriminator and the EMA end identical on
    both ranks. (BatchNorm running statistics are per-rank buffers in DDP unless sync_batchnorm is on;
    DDP re-broadcasts rank 0's at the next forward.)"""
    proc = _run(tmp_path, 2, "gan")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert any(k.startswith("generator.") for k in r0["weights"])
    for key in (k for k in r0["weights"] if "running_" not in k and "num_batches_tracked" not in k):
        torch.testing.assert_close(r0["weights"][key], r1["weights"][key], rtol=0, atol=0, msg=key)
    for key in r0["ema"]:
        torch.testing.assert_close(r0["ema"][key], r1["ema"][key], rtol=0, atol=0, msg=key)
