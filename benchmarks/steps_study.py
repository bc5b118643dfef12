"""Quality against steps: diffusion (DDPM ancestral, DDIM η=0) and flow matching (Euler, Heun,
dopri5) on digits, trained at matched compute (same U-Net, optimiser, batch and 1,000 steps), each
point an `evaluate` record (digits-FD, N = 500 vs the test split); then classifier-free guidance
scale against digits-FD and class coverage for the class-conditional versions.

    python benchmarks/steps_study.py [--run-dir runs/study] [--max-steps 1000]

Writes benchmarks/results/steps_study.{json,md,png} and the records to
benchmarks/results/steps_study.sqlite (rank them with `lit-genvision leaderboard --store ...`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, save, train_config  # noqa: E402

from lit_genvision.cli import main as cli  # noqa: E402
from lit_genvision.experiments.store import ResultsStore  # noqa: E402

MODELS = {
    "ddpm": "configs/diffusion/digits.yaml",
    "fm": "configs/flow_matching/digits.yaml",
    "ddpm-cond": "configs/diffusion/digits_conditional.yaml",
    "fm-cond": "configs/flow_matching/digits_conditional.yaml",
}
GRID = {
    "ddpm": [("ddpm", s) for s in (10, 20, 50, 100, 250)] + [("ddim", s) for s in (5, 10, 20, 50, 100)],
    "fm": [("euler", s) for s in (5, 10, 20, 50)] + [("heun", s) for s in (3, 5, 10, 25)],
}
DOPRI_TOLS = (1e-1, 1e-2, 1e-3)
GUIDANCE = (0.0, 1.0, 2.0, 4.0)


def evaluate(ckpt: Path, name: str, store: Path, *extra: str) -> None:
    cli(["evaluate", "--ckpt", str(ckpt), "--name", name, "--metrics", "digits_fd", "--store", str(store), *extra])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run-dir", type=Path, default=Path("runs/study"))
    p.add_argument("--max-steps", type=int, default=1000)
    args = p.parse_args()
    store = RESULTS / "steps_study.sqlite"
    store.unlink(missing_ok=True)
    ckpts = {
        n: train_config(n, cfg, args.run_dir, "--trainer.max_steps", str(args.max_steps)) for n, cfg in MODELS.items()
    }
    cli(["evaluate", "--baseline", "real", "--store", str(store)])
    for model, points in GRID.items():
        for sampler, steps in points:
            evaluate(ckpts[model], model, store, "--sampler", sampler, "--steps", str(steps))
    for tol in DOPRI_TOLS:
        evaluate(ckpts["fm"], "fm", store, "--sampler", "dopri5", "--rtol", str(tol), "--atol", str(tol))
    for scale in GUIDANCE:
        evaluate(ckpts["ddpm-cond"], "ddpm-cond", store, "--sampler", "ddim", "--steps", "50", "--guidance", str(scale))
        evaluate(ckpts["fm-cond"], "fm-cond", store, "--sampler", "euler", "--steps", "20", "--guidance", str(scale))
    cli(["leaderboard", "--store", str(store), "--metric", "digits_fd", "--out", str(RESULTS / "steps_study")])
    rows = ResultsStore(store).records()
    keep = ("model", "sampler", "steps", "metric", "value", "num_samples", "wall_time_s")
    save("steps_study", {"max_steps": args.max_steps, "records": [{k: r[k] for k in keep} for r in rows]})
    print(json.dumps({"records": len(rows)}))


if __name__ == "__main__":
    main()
