"""The label-conditional digits configs re-measured after conditioning became a dict of any keys
(issue 14): train each from its config, then `evaluate` (N = 500, test split) at the settings the
earlier tables used — the conditional GAN directly, DDPM-cond with DDIM 50 and FM-cond with Euler 20,
each at guidance s ∈ {0, 1, 2, 4} — recording digits-FD, recognised share, class coverage and label
agreement.

    python benchmarks/conditional.py [--run-dir runs/conditional]

Writes benchmarks/results/conditional.{json,sqlite}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, HERE)
from common import RESULTS, save, train_config  # noqa: E402

from lit_genvision.cli import main as cli  # noqa: E402
from lit_genvision.experiments.store import ResultsStore  # noqa: E402

MODELS = {  # name → (config, evaluate options per point)
    "cgan": ("configs/gan/digits_conditional.yaml", [[]]),
    "ddpm-cond": (
        "configs/diffusion/digits_conditional.yaml",
        [["--sampler", "ddim", "--steps", "50", "--guidance", str(s)] for s in (0, 1, 2, 4)],
    ),
    "fm-cond": (
        "configs/flow_matching/digits_conditional.yaml",
        [["--sampler", "euler", "--steps", "20", "--guidance", str(s)] for s in (0, 1, 2, 4)],
    ),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run-dir", type=Path, default=Path("runs/conditional"))
    p.add_argument("--only", nargs="*", default=list(MODELS))
    args = p.parse_args()
    store = RESULTS / "conditional.sqlite"
    if not ResultsStore(store).records(model="baseline:real"):
        cli(["evaluate", "--baseline", "real", "--store", str(store)])
    fit_seconds = {}
    for name in args.only:
        config, points = MODELS[name]
        start = time.perf_counter()
        ckpt = train_config(name, config, args.run_dir)
        fit_seconds[name] = time.perf_counter() - start
        for options in points:
            cli(["evaluate", "--ckpt", str(ckpt), "--name", name, "--store", str(store), *options])
    keep = ("model", "family", "sampler", "steps", "metric", "value", "num_samples", "wall_time_s")
    records = [{k: r[k] for k in keep} for r in ResultsStore(store).records()]
    save("conditional", {"fit_seconds": fit_seconds, "records": records})


if __name__ == "__main__":
    main()
