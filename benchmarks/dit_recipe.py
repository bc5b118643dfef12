"""What closes the DiT's gap to the U-Net on the digits (issue 29): one lever at a time, then combined.

    python benchmarks/dit_recipe.py [--run-dir runs/dit_recipe] [--only unet base skips ...] [--num 500]

The reference is the label-conditional U-Net (``configs/diffusion/digits_conditional.yaml``, 0.64M
parameters, 1,000 steps); its fit time W is the wall-clock budget of every DiT variant, each trained
with ``--trainer.max_time W`` (so a faster step buys more steps). Every DiT starts from
``configs/diffusion/digits_dit.yaml`` at the U-Net's parameter count (width 64, 8 blocks, 4 heads:
0.63M) and changes one thing; ``combined`` takes the levers that helped. Each model is scored by
``lit-genvision evaluate`` (N samples, DDIM 50, guidance s = 2): digits-FD (and × the floor of this
store), recognised share, label agreement; plus parameters, steps reached, fit seconds and the
seconds to sample 100 images. Variants already trained or scored are skipped, so the script resumes.

Writes benchmarks/results/dit_recipe.{json,sqlite}.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, HERE)
import torch  # noqa: E402
from common import RESULTS, save, train_config  # noqa: E402

from lit_genvision.cli import main as cli  # noqa: E402
from lit_genvision.experiments.checkpoints import load_model  # noqa: E402
from lit_genvision.experiments.store import ResultsStore  # noqa: E402

STORE = RESULTS / "dit_recipe.sqlite"
NET = "--model.init_args.net.init_args."
METHOD = "--model.init_args.method.init_args."
MATCHED = [NET + "hidden", "64", NET + "depth", "8", NET + "heads", "4"]  # 0.63M, the U-Net's 0.64M

#: name → (config, overrides); the DiT variants run for the U-Net's wall time.
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "unet": ("configs/diffusion/digits_conditional.yaml", []),
    "base": ("configs/diffusion/digits_dit.yaml", MATCHED),
    "skips": ("configs/diffusion/digits_dit.yaml", [*MATCHED, NET + "long_skips", "true"]),
    "final-conv": ("configs/diffusion/digits_dit.yaml", [*MATCHED, NET + "final_conv", "true"]),
    "rope": ("configs/diffusion/digits_dit.yaml", [*MATCHED, NET + "pos_embed", "rope"]),
    "lightning": (
        "configs/diffusion/digits_dit.yaml",
        [*MATCHED, NET + "qk_norm", "true", NET + "norm", "rms", NET + "mlp", "swiglu"],
    ),
    "min-snr": ("configs/diffusion/digits_dit.yaml", [*MATCHED, METHOD + "min_snr_gamma", "5.0"]),
    "v-pred": ("configs/diffusion/digits_dit.yaml", [*MATCHED, METHOD + "prediction", "v"]),
    "lr-2e-3": ("configs/diffusion/digits_dit.yaml", [*MATCHED, "--model.init_args.optimizer.init_args.lr", "2e-3"]),
    "patch-1": ("configs/diffusion/digits_dit.yaml", [*MATCHED, NET + "patch_size", "1"]),
    "conv-mlp": ("configs/diffusion/digits_dit.yaml", [*MATCHED, NET + "conv_mlp", "true"]),
    "conv-stem": ("configs/diffusion/digits_dit.yaml", [*MATCHED, NET + "conv_stem", "true"]),
    "gelu-exact": ("configs/diffusion/digits_dit.yaml", [*MATCHED, NET + "mlp", "gelu_exact"]),
}


def fit_seconds(name: str, config: str, run_dir: Path, overrides: list[str], out: dict) -> Path:
    """Train (unless trained) and record the fit's wall time."""
    ckpt = run_dir / name / "version_0" / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        start = time.perf_counter()
        train_config(name, config, run_dir, *overrides)
        out.setdefault("fit_seconds", {})[name] = time.perf_counter() - start
    return ckpt


def scored(name: str) -> dict[str, float]:
    return {r["metric"]: r["value"] for r in ResultsStore(STORE).records(model=name)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", type=Path, default=Path("runs/dit_recipe"))
    p.add_argument("--only", nargs="*", default=None, help="variants to run (default: all, the U-Net first)")
    p.add_argument("--combined", default="", help="overrides of a combined variant, one quoted string")
    p.add_argument("--combined-name", default="combined", help="the combined variant's name (several may be run)")
    p.add_argument("--num", type=int, default=500)
    args = p.parse_args()
    path = RESULTS / "dit_recipe.json"
    out = json.loads(path.read_text()) if path.is_file() else {}
    variants = dict(VARIANTS)
    if args.combined:
        variants[args.combined_name] = ("configs/diffusion/digits_dit.yaml", [*MATCHED, *shlex.split(args.combined)])
    if not ResultsStore(STORE).records(model="baseline:real"):
        cli(["evaluate", "--baseline", "real", "--store", str(STORE), "--num", str(args.num)])
    names = args.only or list(variants)
    if "unet" not in names:
        names = ["unet", *names]  # the budget
    for name in names:
        config, overrides = variants[name]
        if name != "unet":
            budget = out["fit_seconds"]["unet"]
            overrides = [*overrides, "--trainer.max_steps", "-1", "--trainer.max_time", clock(budget)]
        ckpt = fit_seconds(name, config, args.run_dir, overrides, out)
        if not scored(name):
            cli(["evaluate", "--ckpt", str(ckpt), "--name", name, "--store", str(STORE), "--num", str(args.num)])
        model = load_model(ckpt, generative=True)
        start = time.perf_counter()
        model.sample(100, generator=torch.Generator().manual_seed(0))
        sampling = time.perf_counter() - start
        floor = {r["metric"]: r["value"] for r in ResultsStore(STORE).records(model="baseline:real")}
        row = scored(name)
        out.setdefault("variants", {})[name] = {
            "overrides": overrides,
            "parameters": sum(p.numel() for p in model.net.parameters()),
            "steps": int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]),
            "fit_seconds": out.get("fit_seconds", {}).get(name),
            "sampling_s_per_100": sampling,
            "digits_fd": row.get("digits_fd"),
            "x_floor": row["digits_fd"] / floor["digits_fd"] if "digits_fd" in floor else None,
            "recognised": row.get("recognised"),
            "label_agreement": row.get("label_agreement"),
            "min_class_share": row.get("min_class_share"),
        }
        print(name, json.dumps(out["variants"][name]))
        save("dit_recipe", {k: v for k, v in out.items() if k not in ("benchmark", "date", "machine")})


def clock(seconds: float) -> str:
    """Lightning's max_time string DD:HH:MM:SS."""
    s = int(round(seconds))
    return f"00:{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


if __name__ == "__main__":
    main()
