"""ProGAN and StyleGAN2 on the digits at 32×32, and DCGAN / WGAN-GP with discriminator augmentation (issue 18).

    python benchmarks/advanced_gans.py [--run-dir runs/gans] [--only progan stylegan2 dcgan wgan-gp dcgan-ada ...]

Each config is trained unless its run already has a last checkpoint (fit time: from the run's
config.yaml, written at fit start, to its last checkpoint). Figures:

- every model: ``evaluate`` (N = 500 against the test split at the model's own size: digits-FD,
  recognised, smallest class share, class entropy), beside the real-data floor at 16×16 and 32×32;
- StyleGAN2: the truncation table (ψ = 1, 0.7, 0.5 through ``evaluate --truncation``); style mixing on
  500 pairs of sources (A, B): the digits classifier's class of the image with A's coarse styles and
  B's others, with B's middle styles, and with B's fine styles only, each compared with the classes of A
  and B alone; the papers' grids by ``stylemix`` (coarse and fine) under benchmarks/results/.

Writes benchmarks/results/advanced_gans.{json,sqlite} and stylemix_{coarse,fine}.png, advanced_gans_*.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, HERE)
import torch  # noqa: E402
from common import RESULTS, save, train_config  # noqa: E402

from lit_genvision.cli import main as cli  # noqa: E402
from lit_genvision.experiments.checkpoints import load_model  # noqa: E402
from lit_genvision.experiments.store import ResultsStore  # noqa: E402
from lit_genvision.metrics.digits import load_digits_extractor  # noqa: E402

STORE = RESULTS / "advanced_gans.sqlite"
ADA = ["--model.init_args.augment", "lit_genvision.methods.AdaptiveAugment"]
MODELS = {  # name → (config, overrides)
    "progan": ("configs/gan/digits_progan.yaml", []),
    "stylegan2": ("configs/gan/digits_stylegan2.yaml", []),
    "dcgan": ("configs/gan/digits.yaml", []),  # the same configs without augmentation, side by side
    "wgan-gp": ("configs/gan/digits_wgan_gp.yaml", []),
    "dcgan-ada": ("configs/gan/digits.yaml", [*ADA, "--model.init_args.augment.init_args.speed_kimg", "20"]),
    "wgan-gp-diffaug": (
        "configs/gan/digits_wgan_gp.yaml",
        ["--model.init_args.augment", "lit_genvision.methods.DiffAugment"],
    ),
}
PSIS = (1.0, 0.7, 0.5)


def fit_seconds(ckpt: Path) -> float:
    """Wall time of the run: its config.yaml (written at fit start) to its last checkpoint."""
    return ckpt.stat().st_mtime - (ckpt.parents[1] / "config.yaml").stat().st_mtime


def evaluate(ckpt: Path, name: str, *options: str) -> None:
    cli(["evaluate", "--ckpt", str(ckpt), "--name", name, "--store", str(STORE), *options])


@torch.no_grad()
def style_mixing_shares(ckpt: Path, num: int = 500, seed: int = 0) -> dict[str, dict[str, float]]:
    """For each band taken from B (the rest from A): the share of mixed images whose class (digits CNN)
    is A's class, and the share that is B's, over ``num`` source pairs whose classes differ."""
    model = load_model(ckpt, generative=True)
    judge = load_digits_extractor(16)
    g = torch.Generator().manual_seed(seed)
    z_a, z_b = torch.randn(num, *model.sample_shape, generator=g), torch.randn(num, *model.sample_shape, generator=g)
    ws_a, ws_b = model.ws(z_a), model.ws(z_b)
    classify = lambda ws: judge(model.synthesise(ws))[1].argmax(1)  # noqa: E731
    class_a, class_b = classify(ws_a), classify(ws_b)
    differ = class_a != class_b
    out: dict[str, dict[str, float]] = {"pairs_with_different_classes": {"count": int(differ.sum())}}
    for band in ("coarse", "middle", "fine"):
        c = classify(model.mix_band(ws_a, ws_b, band))[differ]
        out[f"{band}_from_B"] = {
            "agrees_with_A": (c == class_a[differ]).double().mean().item(),
            "agrees_with_B": (c == class_b[differ]).double().mean().item(),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run-dir", type=Path, default=Path("runs/gans"))
    p.add_argument("--only", nargs="*", default=list(MODELS))
    p.add_argument(
        "--fit-seconds",
        nargs="*",
        default=[],
        metavar="NAME=S",
        help="the fit time of a run trained in parts, resumed (the sum of its parts' wall times)",
    )
    args = p.parse_args()
    given_seconds = {k: float(v) for k, v in (item.split("=") for item in args.fit_seconds)}
    args.run_dir.mkdir(parents=True, exist_ok=True)
    floors = {r["image_size"] for r in ResultsStore(STORE).records(model="baseline:real")} if STORE.exists() else set()
    for size in {16, 32} - floors:
        cli(["evaluate", "--baseline", "real", "--image-size", str(size), "--store", str(STORE)])
    previous = RESULTS / "advanced_gans.json"
    header = ("benchmark", "date", "command", "git_revision", "machine", "records")
    out: dict = (
        {k: v for k, v in json.loads(previous.read_text()).items() if k not in header} if previous.is_file() else {}
    )
    for name in args.only:
        config, overrides = MODELS[name]
        ckpt = train_config(name, config, args.run_dir, *overrides)
        out.setdefault("fit_seconds", {})[name] = given_seconds.get(name) or fit_seconds(ckpt)
        out.setdefault("steps", {})[name] = int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])
        if name == "stylegan2":
            for psi in PSIS:
                evaluate(ckpt, name, "--truncation", str(psi))
            out["style_mixing"] = style_mixing_shares(ckpt)
            for band in ("coarse", "fine"):
                grid = RESULTS / f"stylemix_{band}.png"
                cli(
                    [
                        "stylemix",
                        "--ckpt",
                        str(ckpt),
                        "--rows",
                        "4",
                        "--cols",
                        "4",
                        "--crossover",
                        band,
                        "--out",
                        str(grid),
                    ]
                )
        else:
            evaluate(ckpt, name)
        cli(["sample", "--ckpt", str(ckpt), "--num", "64", "--out", str(RESULTS / f"advanced_gans_{name}.png")])
    keep = ("model", "family", "sampler", "image_size", "metric", "value", "num_samples", "wall_time_s")
    out["records"] = [{k: r[k] for k in keep} for r in ResultsStore(STORE).records()]
    save("advanced_gans", out)


if __name__ == "__main__":
    main()
