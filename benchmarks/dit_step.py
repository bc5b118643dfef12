"""A DiT training step against the U-Net's at matched parameters, on the digits configs' networks (issue 29).

    python benchmarks/dit_step.py [--repeats 8] [--rounds 2]

Times forward + backward of a batch of 128 16×16 digits-shaped inputs, networks built from the configs'
``init_args``: the label-conditional U-Net of ``digits_conditional.yaml`` against the DiT of
``digits_dit.yaml`` (at the U-Net's parameter count: width 64, 8 blocks, 4 heads), and the text configs'
backbones (``digits_text.yaml`` / ``digits_text_dit.yaml``, with random prompt tokens in place of the frozen
text tower, which both share). The two networks alternate within each
round; the figure is the smaller of the rounds' medians. Also times the MLP activations on one block's
hidden tensor (GELU's tanh form, the exact form, SiLU). Writes benchmarks/results/dit_step.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, HERE)
import torch  # noqa: E402
import yaml  # noqa: E402
from common import save  # noqa: E402

from lit_genvision.nn import UNet  # noqa: E402
from lit_genvision.nn.dit import DiT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
B = 128


def net_args(config: str, conditioned: bool) -> dict:
    net = yaml.safe_load((ROOT / config).read_text())["model"]["init_args"]["net"]["init_args"]
    return net["backbone"]["init_args"] if conditioned else net


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step(net: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, cond: dict) -> Callable[[], None]:
    def run() -> None:
        net(x, t, cond).square().mean().backward()

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    torch.manual_seed(0)
    x, t = torch.randn(B, 1, 16, 16), torch.randint(0, 1000, (B,))
    label = {"label": torch.randint(0, 10, (B,))}
    text = {"context": torch.randn(B, 24, 64), "context_mask": torch.ones(B, 24, dtype=torch.bool)}
    text["vector"] = torch.randn(B, 64)
    pairs = {
        "label": (
            UNet(**net_args("configs/diffusion/digits_conditional.yaml", False)),
            DiT(**net_args("configs/diffusion/digits_dit.yaml", False)),
            label,
        ),
        "text": (
            UNet(**net_args("configs/diffusion/digits_text.yaml", True)),
            DiT(**net_args("configs/diffusion/digits_text_dit.yaml", True)),
            text,
        ),
    }
    out: dict = {}
    for name, (unet, dit, cond) in pairs.items():
        medians: dict[str, list[float]] = {"unet": [], "dit": []}
        for _ in range(args.rounds):
            for key, net in (("unet", unet), ("dit", dit)):
                medians[key].append(timed(step(net, x, t, cond), args.repeats))
        row = {key: min(v) for key, v in medians.items()}
        row |= {f"{k}_parameters": sum(q.numel() for q in n.parameters()) for k, n in (("unet", unet), ("dit", dit))}
        row["dit_over_unet"] = row["dit"] / row["unet"]
        out[name] = row
        print(name, row)
    h = torch.randn(B * 64, 256, requires_grad=True)  # one block's MLP hidden tensor (64 tokens, width 256)
    acts = {
        "gelu_tanh": lambda: torch.nn.functional.gelu(h, approximate="tanh").sum().backward(),
        "gelu_exact": lambda: torch.nn.functional.gelu(h).sum().backward(),
        "silu": lambda: torch.nn.functional.silu(h).sum().backward(),
    }
    out["activation_s"] = {k: timed(fn, args.repeats) for k, fn in acts.items()}
    print(out["activation_s"])
    save("dit_step", {"batch": B, "repeats": args.repeats, "rounds": args.rounds, "results": out})


if __name__ == "__main__":
    main()
