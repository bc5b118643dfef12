"""``make demo``: train DDPM on the bundled digits, sample, score, and rank — end to end on a CPU.

python -m lit_genvision.demo [--run-dir runs/demo] [--max-steps 1000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lit_genvision.cli import main as cli

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "diffusion" / "digits.yaml"


def step(argv: list[str]) -> None:
    """One step of the demo; a step that fails (its sentence is printed) stops the demo there."""
    if (rc := cli(argv)) != 0:
        raise SystemExit(rc)


def run(run_dir: Path, max_steps: int | None) -> None:
    t0 = time.perf_counter()
    store = str(run_dir / "results.sqlite")
    fit = [
        "fit",
        "--config",
        str(CONFIG),
        "--trainer.default_root_dir",
        str(run_dir),
        "--trainer.logger.init_args.save_dir",
        str(run_dir),
    ]
    if max_steps:
        fit += ["--trainer.max_steps", str(max_steps)]
    step(fit)
    versions = sorted((run_dir / "diffusion-digits").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    ckpt = versions[-1] / "checkpoints" / "last.ckpt"
    grid, interp = run_dir / "samples.png", run_dir / "interpolation.png"
    step(["sample", "--ckpt", str(ckpt), "--num", "64", "--sampler", "ddim", "--steps", "50", "--out", str(grid)])
    step(["sample", "--ckpt", str(ckpt), "--interpolate", "10", "--steps", "50", "--out", str(interp)])
    for baseline in ("real", "noise", "one-class", "mean-image"):
        step(["evaluate", "--baseline", baseline, "--store", store])
    for sampler, steps in (("ddim", 20), ("ddim", 50), ("ddpm", 100)):
        step(["evaluate", "--ckpt", str(ckpt), "--sampler", sampler, "--steps", str(steps), "--store", store])
    name = "/".join(ckpt.resolve().parts[-4:-2]) + " (raw weights)"
    step(
        [
            "evaluate",
            "--ckpt",
            str(ckpt),
            "--no-ema",
            "--name",
            name,
            "--sampler",
            "ddim",
            "--steps",
            "50",
            "--store",
            store,
        ]
    )
    step(["leaderboard", "--store", store, "--metric", "digits_fd", "--out", str(run_dir / "leaderboard")])
    print(f"\nDemo finished in {time.perf_counter() - t0:.0f} s. Outputs:")
    for label, path in [
        ("run folder", versions[-1]),
        ("checkpoint", ckpt),
        ("sample grid", grid),
        ("interpolation", interp),
        ("results store", store),
        ("leaderboard", run_dir / "leaderboard.md"),
        ("leaderboard plot", run_dir / "leaderboard.png"),
    ]:
        print(f"  {label:17s} {path}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run-dir", type=Path, default=Path("runs/demo"))
    p.add_argument("--max-steps", type=int, default=None, help="override the config's training steps")
    a = p.parse_args()
    run(a.run_dir, a.max_steps)
