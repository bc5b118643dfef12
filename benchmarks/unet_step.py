"""One U-Net training step on a CUDA GPU with the fused Triton kernels against the torch reference ops.

    python benchmarks/unet_step.py            # on a CUDA GPU; saves benchmarks/results/unet_step.json
    python benchmarks/unet_step.py --smoke    # a tiny U-Net on the CPU: checks the script runs; saves nothing

For each diffusion config's network (``kernels: torch``, ``auto`` and ``triton``, same weights, same batch)
it times forward + backward + AdamW step under bf16 autocast, the configs' batch, and reports images/s
(median over repeats, CUDA-synchronised) and the ratios auto / torch and triton / torch measured side
by side. It also
records how far the two backends' losses and gradients are apart at the first step (relative L2 of
the flattened gradients), so a speed-up is never quoted for a kernel that changes the result.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if "--smoke" in sys.argv:  # Triton's interpreter is chosen when the kernels are defined, so before importing them
    os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository root: `benchmarks.common`

from benchmarks.common import median_time, save  # noqa: E402
from lit_genvision.nn import UNet  # noqa: E402

CONFIGS = {"configs/diffusion/cifar10.yaml": 128, "configs/diffusion/celeba.yaml": 64}


def net_args(config: str) -> dict:
    """The U-Net's init_args from a diffusion config (YAML read as data, no classes built from it)."""
    model = yaml.safe_load((ROOT / config).read_text())["model"]["init_args"]
    return dict(model["net"]["init_args"])


def step_and_grads(net: UNet, x: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, opt: torch.optim.Optimizer):
    """One ε-prediction step: returns (loss, flattened gradients before the optimizer update)."""
    opt.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
        loss = (net(x, t).float() - noise).pow(2).mean()
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
    opt.step()
    return loss.detach(), grads


def measure(config: str, batch: int, device: torch.device, repeats: int, smoke: bool) -> dict:
    args = net_args(config)
    if smoke:
        args |= {"image_size": 8, "channels": 32, "channel_mults": [1, 2], "attention_at": [4], "depth": 1}
    g = torch.Generator(device="cpu").manual_seed(0)
    size = args["image_size"]
    x = torch.randn(batch, args["in_channels"], size, size, generator=g).to(device)
    noise = torch.randn(x.shape, generator=g).to(device)
    t = torch.randint(0, 1000, (batch,), generator=g).to(device)
    torch.manual_seed(0)
    state = UNet(**(args | {"kernels": "torch", "dropout": 0.0})).state_dict()
    row: dict = {"config": config, "batch": batch, "image_size": size}
    grads = {}
    for backend in ("torch", "auto", "triton"):
        net = UNet(**(args | {"kernels": backend, "dropout": 0.0})).to(device)
        net.load_state_dict(state)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        try:
            loss, grads[backend] = step_and_grads(net, x, t, noise, opt)
        except ValueError as err:  # a layer the kernel does not take (head dim > 256): `auto` uses torch there
            row[f"{backend}_skipped"] = str(err)
            print(f"{config}: kernels: {backend} skipped: {err}")
            continue
        row[f"{backend}_loss"] = loss.item()
        seconds, _ = median_time(lambda net=net, opt=opt: step_and_grads(net, x, t, noise, opt), repeats=repeats)
        row[f"{backend}_images_per_s"] = batch / seconds
        row[f"{backend}_step_ms"] = seconds * 1e3
        if device.type == "cuda":
            row[f"{backend}_peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            torch.cuda.reset_peak_memory_stats()
        del net, opt
    for backend in ("auto", "triton"):
        if backend in grads:
            diff = ((grads[backend] - grads["torch"]).norm() / grads["torch"].norm()).item()
            row[f"grad_rel_l2_{backend}_vs_torch"] = diff
            row[f"speedup_{backend}_over_torch"] = row[f"{backend}_images_per_s"] / row["torch_images_per_s"]
            print(
                f"{config} batch {batch}: kernels {backend} {row[f'{backend}_images_per_s']:.0f} img/s against torch"
                f" {row['torch_images_per_s']:.0f} ({row[f'speedup_{backend}_over_torch']:.2f}×); losses"
                f" {row[f'{backend}_loss']:.5f} / {row['torch_loss']:.5f}, gradient rel. L2 {diff:.1e}"
            )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny U-Net under the CPU interpreter; saves nothing")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        print("benchmarks/unet_step.py measures CUDA GPUs and none is visible here; run it on one, or pass --smoke.")
        return
    device = torch.device("cpu" if args.smoke else "cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rows = [
        measure(config, 2 if args.smoke else batch, device, 1 if args.smoke else args.repeats, args.smoke)
        for config, batch in CONFIGS.items()
    ]
    if not args.smoke:
        save("unet_step", {"precision": "bf16-autocast", "optimizer": "AdamW", "rows": rows})


if __name__ == "__main__":
    main()
