"""Every generative family on the bundled digits, scored the same way: train each digits config
(CPU, minutes each), then `evaluate` digits-FD, recognised share, class coverage (and label
agreement for conditional models) with N = 500 against the test split, beside the real-data floor.
For the autoencoders it also reports the test reconstruction MSE.

    python benchmarks/digits_families.py [--run-dir runs/families] [--only vae gan ...]

Writes benchmarks/results/digits_families.{json,md,png} and benchmarks/results/digits_families.sqlite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, save, train_config  # noqa: E402

from lit_genvision.cli import main as cli  # noqa: E402
from lit_genvision.experiments.checkpoints import load_model, run_datamodule  # noqa: E402
from lit_genvision.experiments.store import ResultsStore  # noqa: E402

MODELS = {  # name → (config, evaluate options)
    "ddpm": ("configs/diffusion/digits.yaml", ["--sampler", "ddim", "--steps", "50"]),
    "flow": ("configs/flow_matching/digits.yaml", ["--sampler", "euler", "--steps", "20"]),
    "vae": ("configs/vae/digits.yaml", []),
    "dcgan": ("configs/gan/digits.yaml", []),
    "wgan-gp": ("configs/gan/digits_wgan_gp.yaml", []),
    "cgan": ("configs/gan/digits_conditional.yaml", []),
}


@torch.no_grad()
def reconstruction_mse(ckpt: Path) -> float:
    model, dm = load_model(ckpt), run_datamodule(ckpt)
    x = dm.device_transform({"image": dm.split("test").images}, training=False)["image"]
    return (model.reconstruct(x) - x).pow(2).mean().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run-dir", type=Path, default=Path("runs/families"))
    p.add_argument("--only", nargs="*", default=list(MODELS))
    args = p.parse_args()
    store = RESULTS / "digits_families.sqlite"
    if not store.exists():
        cli(["evaluate", "--baseline", "real", "--store", str(store)])
    extra = {}
    for name in args.only:
        config, options = MODELS[name]
        ckpt = train_config(name, config, args.run_dir)
        cli(["evaluate", "--ckpt", str(ckpt), "--name", name, "--store", str(store), *options])
        cli(["sample", "--ckpt", str(ckpt), "--num", "64", "--out", str(RESULTS / f"digits_{name}.png"), *options])
        if name == "vae":
            extra["vae_test_reconstruction_mse"] = reconstruction_mse(ckpt)
    cli(["leaderboard", "--store", str(store), "--out", str(RESULTS / "digits_families")])
    keep = ("model", "family", "sampler", "steps", "metric", "value", "num_samples", "wall_time_s")
    save("digits_families", extra | {"records": [{k: r[k] for k in keep} for r in ResultsStore(store).records()]})


if __name__ == "__main__":
    main()
