"""What closes the DiT's gap to the U-Net on the digits (issue 29): one lever at a time, then combined.

    python benchmarks/dit_recipe.py [--family label|text] [--run-dir runs/dit_recipe] [--only unet base skips ...]
        [--combined "net.long_skips true net.conv_mlp true" --combined-name NAME] [--num 500]

The reference of the ``label`` family is the label-conditional U-Net (``configs/diffusion/digits_conditional.yaml``,
0.64M parameters, 1,000 steps); of the ``text`` family the text-conditional U-Net (``digits_text.yaml``, 0.75M,
the frozen digits CLIP fitted first into the run directory). The U-Net's fit time W is the wall-clock budget of
every DiT variant, each trained with ``--trainer.max_time W`` (so a faster step buys more steps). ``base`` is
the paper's DiT at the U-Net's parameter count (label: width 64, 8 blocks, 4 heads, 0.63M; text: width 64, 7
blocks, 0.76M) with every option off, whatever the shipped config's defaults are; each lever changes one thing
on it; ``--combined`` names several (``net.X`` is the DiT's option X, ``method.X`` the diffusion method's,
``optimizer.X`` AdamW's, ``model.X`` the model's, ``data.X`` the data module's); ``recipe`` is the shipped
DiT config as it is. Each model is scored by
``lit-genvision evaluate`` (N samples, DDIM 50, guidance s = 2, class prompts in the test split's wording for
text): digits-FD (and × the floor of this store), recognised share, label agreement (text: the digit named);
plus parameters, steps reached, fit seconds and the seconds to sample 100 images; and the same figures at the
guidance scales of ``--guidance`` (default 1.5). Variants already trained or scored are skipped, so the script
resumes.

Writes benchmarks/results/dit_recipe.{json,sqlite} (label) or dit_recipe_text.{json,sqlite} (text).
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

#: family → (U-Net config, DiT config, the DiT's init_args path, the DiT's size at the U-Net's parameters)
FAMILIES: dict[str, tuple[str, str, str, list[str]]] = {
    "label": (
        "configs/diffusion/digits_conditional.yaml",
        "configs/diffusion/digits_dit.yaml",
        "net.init_args.",
        ["net.hidden", "64", "net.depth", "8", "net.heads", "4"],
    ),
    "text": (
        "configs/diffusion/digits_text.yaml",
        "configs/diffusion/digits_text_dit.yaml",
        "net.init_args.backbone.init_args.",
        ["net.hidden", "64", "net.depth", "7", "net.heads", "4"],
    ),
}
#: The paper's DiT: every small-budget option off.
OFF = [
    *("net.long_skips false net.pos_embed sincos net.qk_norm false net.norm layer net.mlp gelu".split()),
    *("net.final_conv false net.conv_mlp false net.conv_stem false net.cond_init dit".split()),
]
#: lever → overrides on ``base`` (``net.`` / ``method.`` / ``optimizer.`` paths, then values).
LEVERS: dict[str, list[str]] = {
    "base": [],
    "skips": ["net.long_skips", "true"],
    "final-conv": ["net.final_conv", "true"],
    "rope": ["net.pos_embed", "rope"],
    "lightning": ["net.qk_norm", "true", "net.norm", "rms", "net.mlp", "swiglu"],
    "min-snr": ["method.min_snr_gamma", "5.0"],
    "v-pred": ["method.prediction", "v"],
    "lr-2e-3": ["optimizer.lr", "2e-3"],
    "patch-1": ["net.patch_size", "1"],
    "conv-mlp": ["net.conv_mlp", "true"],
    "conv-stem": ["net.conv_stem", "true"],
    "gelu-exact": ["net.mlp", "gelu_exact"],
    "cond-init": ["net.cond_init", "unit"],
    "batch-64": ["data.batch_size", "64"],
}
#: the combinations measured (issue 29), by name; ``--combined`` adds another.
COMBINED: dict[str, list[str]] = {
    "cond-skips-exact": ["net.cond_init", "unit", "net.long_skips", "true", "net.mlp", "gelu_exact"],
    "cond-exact-convmlp": ["net.cond_init", "unit", "net.mlp", "gelu_exact", "net.conv_mlp", "true"],
    "cond-skips-exact-lr2e-3": [
        *("net.cond_init unit net.long_skips true net.mlp gelu_exact optimizer.lr 2e-3".split()),
    ],
    "recipe-cosine": [  # the recipe with the learning rate decayed to 0 at step 1,000 (held at 0 after)
        *("net.cond_init unit net.long_skips true net.mlp gelu_exact optimizer.lr 2e-3".split()),
        *("scheduler.class_path lit_genvision.models.WarmupCosine scheduler.init_args.warmup_steps 100".split()),
        *("scheduler.init_args.total_steps 1000".split()),
    ],
    "cond-skips-exact-lr2e-3-b64": [
        *("net.cond_init unit net.long_skips true net.mlp gelu_exact optimizer.lr 2e-3 data.batch_size 64".split()),
    ],
}
TEXT_KEY = "--model.init_args.net.init_args.text_encoder.init_args.checkpoint"


def expand(overrides: list[str], net: str) -> list[str]:
    """``net.X v`` → ``--model.init_args.<net>X v``; ``method.X`` / ``optimizer.X`` → their init_args;
    ``scheduler.X`` the lr scheduler's entry (``class_path``, ``init_args.total_steps``); ``model.X`` the model's own
    (``guidance_scale``), ``data.X`` the data module's (``batch_size``)."""
    prefixes = {
        "net.": "--model.init_args." + net,
        "method.": "--model.init_args.method.init_args.",
        "optimizer.": "--model.init_args.optimizer.init_args.",
        "scheduler.": "--model.init_args.lr_scheduler.",
        "model.": "--model.init_args.",
        "data.": "--data.init_args.",
    }
    out = []
    for i, item in enumerate(overrides):
        if i % 2 == 0:
            head = next((p for p in prefixes if item.startswith(p)), None)
            if head is None:
                raise ValueError(f"an override path starts with one of {', '.join(prefixes)}, got {item!r}.")
            item = prefixes[head] + item.removeprefix(head)
        out.append(item)
    return out


def fit_seconds(name: str, config: str, run_dir: Path, overrides: list[str], out: dict) -> Path:
    """Train (unless trained) and record the fit's wall time."""
    ckpt = run_dir / name / "version_0" / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        start = time.perf_counter()
        train_config(name, config, run_dir, *overrides)
        out.setdefault("fit_seconds", {})[name] = time.perf_counter() - start
    return ckpt


def scored(store: Path, name: str) -> dict[str, float]:
    return {r["metric"]: r["value"] for r in ResultsStore(store).records(model=name)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=sorted(FAMILIES), default="label")
    p.add_argument("--run-dir", type=Path, default=Path("runs/dit_recipe"))
    p.add_argument("--only", nargs="*", default=None, help="variants to run (default: all, the U-Net first)")
    p.add_argument("--combined", default="", help="overrides of a combined variant, one quoted string")
    p.add_argument("--combined-name", default="combined", help="the combined variant's name (several may be run)")
    p.add_argument("--num", type=int, default=500)
    p.add_argument("--guidance", nargs="*", type=float, default=[1.5], help="more guidance scales to score at")
    args = p.parse_args()
    label = args.family == "label"
    stem = "dit_recipe" if label else "dit_recipe_text"
    store = RESULTS / f"{stem}.sqlite"
    path = RESULTS / f"{stem}.json"
    out = json.loads(path.read_text()) if path.is_file() else {}
    unet_config, dit_config, net, matched = FAMILIES[args.family]
    extra: list[str] = []
    if not label:  # the frozen text tower both read
        clip = train_config("clip", "configs/clip/digits.yaml", args.run_dir)
        extra = [TEXT_KEY, str(clip)]
    levers = LEVERS | COMBINED
    if args.combined:
        levers[args.combined_name] = shlex.split(args.combined)
    variants = {"unet": (unet_config, extra), "recipe": (dit_config, extra)}
    variants |= {k: (dit_config, [*expand([*matched, *OFF, *v], net), *extra]) for k, v in levers.items()}
    if not ResultsStore(store).records(model="baseline:real"):
        cli(["evaluate", "--baseline", "real", "--store", str(store), "--num", str(args.num)])
    names = args.only or list(variants)
    if "unet" not in names:
        names = ["unet", *names]  # the budget
    for name in names:
        config, overrides = variants[name]
        if name != "unet":
            budget = out["fit_seconds"]["unet"]
            overrides = [*overrides, "--trainer.max_steps", "-1", "--trainer.max_time", clock(budget)]
        ckpt = fit_seconds(name, config, args.run_dir, overrides, out)
        if not scored(store, name):
            cli(["evaluate", "--ckpt", str(ckpt), "--name", name, "--store", str(store), "--num", str(args.num)])
        model = load_model(ckpt, generative=True)
        start = time.perf_counter()
        model.sample(100, generator=torch.Generator().manual_seed(0))
        sampling = time.perf_counter() - start
        floor = scored(store, "baseline:real")
        row = scored(store, name)
        backbone = model.net if label else model.net.backbone
        out.setdefault("variants", {})[name] = {
            "overrides": overrides,
            "parameters": sum(p.numel() for p in backbone.parameters()),
            "steps": int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]),
            "fit_seconds": out.get("fit_seconds", {}).get(name),
            "sampling_s_per_100": sampling,
            **figures(row, floor),
            "min_class_share": row.get("min_class_share"),
        }
        for g in args.guidance:  # the same model at other scales: "NAME s=G" in the store
            if not scored(store, f"{name} s={g:g}"):
                cli(["evaluate", "--ckpt", str(ckpt), "--name", f"{name} s={g:g}", "--guidance", str(g),
                     "--store", str(store), "--num", str(args.num)])  # fmt: skip
            out["variants"][name][f"s={g:g}"] = figures(scored(store, f"{name} s={g:g}"), floor)
        print(name, json.dumps(out["variants"][name]))
        fresh = ("benchmark", "date", "machine", "command", "git_revision")  # save() writes these anew
        save(stem, {k: v for k, v in out.items() if k not in fresh})


def figures(row: dict[str, float], floor: dict[str, float]) -> dict[str, float | None]:
    """digits-FD, its ratio to the floor of the same store, recognised share and label agreement of one scoring."""
    return {
        "digits_fd": row.get("digits_fd"),
        "x_floor": row["digits_fd"] / floor["digits_fd"] if "digits_fd" in floor else None,
        "recognised": row.get("recognised"),
        "label_agreement": row.get("label_agreement"),
    }


def clock(seconds: float) -> str:
    """Lightning's max_time string DD:HH:MM:SS."""
    s = int(round(seconds))
    return f"00:{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


if __name__ == "__main__":
    main()
