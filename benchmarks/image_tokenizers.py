"""The digits tokenizers side by side at matched training steps, then the token prior on one of them.

    python benchmarks/image_tokenizers.py [--run-dir runs/tokenizers] [--steps 1000] [--only vq fsq ...]
                                    [--prior fsq] [--prior-steps 2000]

Each tokenizer config (configs/tokenizer/digits_*.yaml) is trained for the same number of steps,
then `evaluate --reconstruct` scores its reconstructions of the 359 test digits: digits-FD,
MSE, bits per image, codebook utilisation and perplexity. The token prior
(configs/token_prior/digits.yaml) is then trained on the `--prior` tokenizer and scored like any
generative family (N = 500 samples: digits-FD, recognised share, class coverage, label agreement).

Writes benchmarks/results/tokenizers.{json,sqlite}, digits_tokens_<name>.png (reconstructions:
real test digits on odd rows, their reconstructions below) and digits_token_prior.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, HERE)
from common import RESULTS, save, train_config  # noqa: E402

from lit_genvision.callbacks.images import save_images, upscale_for_view  # noqa: E402
from lit_genvision.cli import main as cli  # noqa: E402
from lit_genvision.data.base import to_unit_range  # noqa: E402
from lit_genvision.experiments.checkpoints import load_model, run_datamodule  # noqa: E402
from lit_genvision.experiments.store import ResultsStore  # noqa: E402

TOKENIZERS = {  # name → config
    "vq": "configs/tokenizer/digits_vq.yaml",
    "vq-ema-restart": "configs/tokenizer/digits_vq_ema.yaml",
    "rvq": "configs/tokenizer/digits_rvq.yaml",
    "fsq": "configs/tokenizer/digits_fsq.yaml",
    "lfq": "configs/tokenizer/digits_lfq.yaml",
    "vit-vqgan": "configs/tokenizer/digits_vit_vqgan.yaml",
}


@torch.no_grad()
def reconstruction_grid(ckpt: Path, out: Path) -> None:
    """8 real test digits per odd row, their reconstructions on the row below (4 pairs of rows)."""
    model = load_model(ckpt)
    x = to_unit_range(run_datamodule(ckpt).split("test").images[:32])
    rows = [torch.cat([x[i : i + 8], model.reconstruct(x[i : i + 8])]) for i in range(0, 32, 8)]
    save_images(upscale_for_view(torch.cat(rows)), out, nrow=8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run-dir", type=Path, default=Path("runs/tokenizers"))
    p.add_argument("--steps", type=int, default=1000, help="training steps of every tokenizer (matched)")
    p.add_argument("--only", nargs="*", default=list(TOKENIZERS))
    p.add_argument("--prior", default="fsq", help="the tokenizer the token prior is trained on ('' to skip)")
    p.add_argument("--prior-steps", type=int, default=2000)
    p.add_argument("--store", type=Path, default=RESULTS / "tokenizers.sqlite")
    args = p.parse_args()
    store = args.store
    if not ResultsStore(store).records(model="baseline:real"):
        cli(["evaluate", "--baseline", "real", "--store", str(store)])  # the real-data floor
    times: dict[str, float] = {}
    for name in args.only:
        start = time.perf_counter()
        ckpt = train_config(name, TOKENIZERS[name], args.run_dir, "--trainer.max_steps", str(args.steps))
        times[name] = time.perf_counter() - start
        cli(["evaluate", "--ckpt", str(ckpt), "--reconstruct", "--name", name, "--store", str(store)])
        reconstruction_grid(ckpt, RESULTS / f"digits_tokens_{name}.png")
    if args.prior:
        tokenizer = args.run_dir / args.prior / "version_0" / "checkpoints" / "last.ckpt"
        start = time.perf_counter()
        prior = train_config(
            "token-prior",
            "configs/token_prior/digits.yaml",
            args.run_dir,
            "--model.init_args.tokenizer",
            str(tokenizer),
            "--trainer.max_steps",
            str(args.prior_steps),
        )
        times["token-prior"] = time.perf_counter() - start
        name = f"token-prior ({args.prior})"
        cli(["evaluate", "--ckpt", str(prior), "--name", name, "--store", str(store)])
        cli(["sample", "--ckpt", str(prior), "--num", "64", "--out", str(RESULTS / "digits_token_prior.png")])
    previous = RESULTS / "tokenizers.json"  # the fit times of earlier invocations on the same store
    if previous.exists():
        times = json.loads(previous.read_text()).get("fit_seconds", {}) | times
    keep = ("model", "family", "sampler", "metric", "value", "num_samples", "bits_per_image", "wall_time_s")
    records = [{k: r[k] for k in keep} for r in ResultsStore(store).records()]
    save(
        "tokenizers",
        {"steps": args.steps, "prior_steps": args.prior_steps, "fit_seconds": times, "records": records},
    )


if __name__ == "__main__":
    main()
