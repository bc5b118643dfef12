"""Fused Triton kernels against what torch offers, on the shapes of our configs.

    python benchmarks/fused_kernels.py            # on a CUDA GPU; saves benchmarks/results/kernels.json
    python benchmarks/fused_kernels.py --smoke    # tiny shapes on the CPU under TRITON_INTERPRET=1: checks the
                                            # script runs end to end; its timings mean nothing, nothing is saved

Attention (forward, and forward + backward) in TFLOP/s, counting 4·B·H·N²·d FLOPs forward and 2.5× that
backward (halved when causal), against `F.scaled_dot_product_attention` under each SDPA backend that
accepts the inputs. GroupNorm(+scale/shift)+SiLU in GB/s of the bytes that must move (forward reads x and
writes y; backward reads x and dy and writes dx) against eager `F.group_norm` + `F.silu` and its
`torch.compile` version, next to the device's measured copy bandwidth. Every timing is the median of
Triton's `do_bench` (L2 flushed between repeats) measured side by side in one run; every row also
records its largest difference from the fp32 reference at that shape.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if "--smoke" in sys.argv:  # the interpreter is chosen when the kernels are defined, so before importing them
    os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: `benchmarks`, `genvision_kernels`

from benchmarks.common import save  # noqa: E402
from genvision_kernels import fused, reference  # noqa: E402

# (B, H, N, d, causal): DiT sequences 256–4096 at d = 64/128 (hidden 1024), and the U-Nets' attention.
ATTENTION_SHAPES = [
    *((16384 // n, 1024 // d, n, d, False) for d in (64, 128) for n in (256, 1024, 2048, 4096)),
    (8, 16, 2048, 64, True),
    (128, 1, 256, 256, False),  # configs/diffusion/cifar10.yaml: 16×16 map, 256 channels, one head
    (64, 4, 256, 64, False),  # configs/diffusion/celeba.yaml: 16×16 map, 256 channels, four heads
]
# (B, C, H, W): U-Net feature maps at 32×32 and 16×16 with 32 groups (configs/diffusion/cifar10.yaml widths),
# at batch 128 (one program per group) and at small batches (statistics split across programs).
GROUP_NORM_SHAPES = [
    *((128, c, hw, hw) for c, hw in ((128, 32), (256, 32), (256, 16), (512, 16))),
    (2, 256, 32, 32),
    (8, 256, 16, 16),
]
SMOKE_ATTENTION = [(1, 2, 40, 32, False), (1, 2, 40, 32, True)]
SMOKE_GROUP_NORM = [(2, 8, 6, 6)]  # with 4 groups: the interpreter runs programs one by one


def bench(fn: Callable[[], object], grad_to_none: list[torch.Tensor] | None = None) -> float:
    """Median milliseconds per call."""
    if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=25, rep=200, grad_to_none=grad_to_none, return_mode="median"))
    times = []
    for _ in range(2):
        for t in grad_to_none or []:
            t.grad = None
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def sdpa_backends() -> dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor, bool], torch.Tensor]]:
    """One SDPA callable per backend this torch build has (each may still reject a shape)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def with_backend(backend):
        def run(q, k, v, causal):
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        return run

    names = ["FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"]
    return {f"sdpa_{n.lower()}": with_backend(getattr(SDPBackend, n)) for n in names if hasattr(SDPBackend, n)}


def attention_rows(shapes, dtype: torch.dtype, device: torch.device) -> list[dict]:
    impls = {"triton": lambda q, k, v, causal: fused.attention(q, k, v, causal=causal)}
    impls["sdpa_default"] = reference_sdpa  # what `kernels: torch` runs: SDPA choosing its own backend
    impls |= sdpa_backends() if device.type == "cuda" else {}
    rows = []
    for b, h, n, d, causal in shapes:
        g = torch.Generator(device=device).manual_seed(0)
        q, k, v, do = (torch.randn(b, h, n, d, generator=g, device=device, dtype=dtype) for _ in range(4))
        flops = 4 * b * h * n * n * d * (0.5 if causal else 1.0)
        want = reference.attention(q.float(), k.float(), v.float(), causal=causal)
        for name, fn in impls.items():
            if name == "sdpa_math" and n > 2048:
                continue  # materialises B·H·N² scores; minutes and tens of GB at these lengths
            leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
            try:
                out = fn(*leaves, causal)
            except RuntimeError as err:  # this SDPA backend does not take these inputs
                skipped = {"op": "attention", "shape": [b, h, n, d], "causal": causal, "impl": name}
                rows.append(skipped | {"skipped": str(err)[:120]})
                continue
            err_max = (out.float() - want).abs().max().item()
            fwd = bench(lambda fn=fn, leaves=leaves, causal=causal: fn(*leaves, causal))
            fwd_bwd = bench(
                lambda fn=fn, leaves=leaves, causal=causal, do=do: fn(*leaves, causal).backward(do), grad_to_none=leaves
            )
            row = {
                "op": "attention", "shape": [b, h, n, d], "causal": causal, "dtype": str(dtype).removeprefix("torch."),
                "impl": name, "max_abs_err_vs_fp32": err_max, "fwd_ms": fwd, "fwd_bwd_ms": fwd_bwd,
                "fwd_tflops": flops / fwd / 1e9, "fwd_bwd_tflops": 3.5 * flops / fwd_bwd / 1e9,
            }  # fmt: skip
            rows.append(row)
            print(
                f"attention B={b} H={h} N={n} d={d}{' causal' if causal else ''} {name:>24}: "
                f"fwd {row['fwd_tflops']:7.1f} TFLOP/s, fwd+bwd {row['fwd_bwd_tflops']:7.1f} TFLOP/s, err {err_max:.1e}"
            )
    return rows


def reference_sdpa(q, k, v, causal):
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def copy_bandwidth(device: torch.device) -> float:
    """GB/s of `dst.copy_(src)` on 1 GiB (read + write counted)."""
    numel = (1 << 30) // 4 if device.type == "cuda" else 1 << 16
    src = torch.randn(numel, device=device)
    dst = torch.empty_like(src)
    ms = bench(lambda: dst.copy_(src))
    return 2 * src.numel() * src.element_size() / ms / 1e6


def group_norm_rows(shapes, dtype: torch.dtype, device: torch.device, compile_ok: bool, groups: int = 32) -> list[dict]:
    def eager(x, w, b, scale, shift):
        return reference.group_norm(x, groups, w, b, scale=scale, shift=shift, silu=True)

    def fused_kernel(x, w, b, scale, shift):
        return fused.group_norm(x, groups, w, b, scale=scale, shift=shift, silu=True)

    impls = {"triton": fused_kernel}
    impls["eager"] = eager
    if compile_ok:
        impls["torch_compile"] = torch.compile(eager)
    rows = []
    for shape in shapes:
        for modulated in (False, True):
            for channels_last in (False, True):
                g = torch.Generator(device=device).manual_seed(0)
                x = torch.randn(shape, generator=g, device=device, dtype=dtype)
                if channels_last:
                    x = x.to(memory_format=torch.channels_last)
                dy = torch.randn_like(x)
                c = shape[1]
                w, b = torch.ones(c, device=device, dtype=dtype), torch.zeros(c, device=device, dtype=dtype)
                scale = torch.randn(shape[0], c, generator=g, device=device, dtype=dtype) if modulated else None
                shift = torch.randn(shape[0], c, generator=g, device=device, dtype=dtype) if modulated else None
                want = eager(*(None if t is None else t.float() for t in (x, w, b, scale, shift)))
                moved = x.numel() * x.element_size()
                for name, fn in impls.items():
                    leaves = [
                        None if t is None else t.detach().clone().requires_grad_() for t in (x, w, b, scale, shift)
                    ]
                    err_max = (fn(*leaves).float() - want).abs().max().item()
                    fwd = bench(lambda fn=fn, leaves=leaves: fn(*leaves))
                    fwd_bwd = bench(
                        lambda fn=fn, leaves=leaves, dy=dy: fn(*leaves).backward(dy),
                        grad_to_none=[t for t in leaves if t is not None],
                    )
                    row = {
                        "op": "group_norm_silu" + ("_scale_shift" if modulated else ""),
                        "shape": list(shape), "channels_last": channels_last,
                        "dtype": str(dtype).removeprefix("torch."), "impl": name, "max_abs_err_vs_fp32": err_max,
                        "fwd_ms": fwd, "fwd_bwd_ms": fwd_bwd,
                        "fwd_gbps": 2 * moved / fwd / 1e6, "fwd_bwd_gbps": 5 * moved / fwd_bwd / 1e6,
                    }  # fmt: skip
                    rows.append(row)
                    print(
                        f"{row['op']:>28} {tuple(shape)}{' NHWC' if channels_last else ' NCHW'} {name:>14}: "
                        f"fwd {row['fwd_gbps']:7.0f} GB/s, fwd+bwd {row['fwd_bwd_gbps']:7.0f} GB/s, err {err_max:.1e}"
                    )
    return rows


def ratios(rows: list[dict], baseline: str, metric: str) -> dict[str, float]:
    """Triton's figure over ``baseline``'s at each shape where both ran."""
    out = {}
    keyed = {
        (r["op"], str(r["shape"]), r.get("causal"), r.get("channels_last"), r["impl"]): r for r in rows if metric in r
    }
    for (op, shape, causal, cl, impl), r in keyed.items():
        if impl == "triton" and (op, shape, causal, cl, baseline) in keyed:
            tag = f"{op} {shape}" + (" causal" if causal else "") + (" NHWC" if cl else "")
            out[tag] = r[metric] / keyed[(op, shape, causal, cl, baseline)][metric]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes under the CPU interpreter; saves nothing")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline")
    parser.add_argument(
        "--ops", nargs="+", choices=["attention", "group_norm"], default=["attention", "group_norm"],
        help="which kernels to measure; a subset saves to kernels_<op>.json instead of kernels.json",
    )  # fmt: skip
    args = parser.parse_args()
    result_name = "kernels" if len(args.ops) == 2 else f"kernels_{args.ops[0]}"
    if args.smoke:
        device, dtype = torch.device("cpu"), torch.float32
        attn_shapes, gn_shapes = SMOKE_ATTENTION, SMOKE_GROUP_NORM
    elif torch.cuda.is_available():
        device, dtype = torch.device("cuda"), torch.bfloat16
        attn_shapes, gn_shapes = ATTENTION_SHAPES, GROUP_NORM_SHAPES
    else:
        print(
            "benchmarks/fused_kernels.py measures CUDA GPUs and none is visible here; run it on one, or pass --smoke."
        )
        return
    copy = copy_bandwidth(device)
    print(f"copy bandwidth: {copy:.0f} GB/s")
    rows = attention_rows(attn_shapes, dtype, device) if "attention" in args.ops else []
    if not args.smoke and "group_norm" in args.ops:  # saved now too: a run stopped in GroupNorm keeps attention
        save(result_name, {"dtype": str(dtype), "partial": True, "rows": rows})
    if "group_norm" in args.ops:
        compile_ok = not args.smoke and not args.no_compile
        rows += group_norm_rows(gn_shapes, dtype, device, compile_ok=compile_ok, groups=4 if args.smoke else 32)
    summary = {
        "copy_gbps": copy,
        "attention_fwd_bwd_vs_sdpa_default": ratios(rows, "sdpa_default", "fwd_bwd_tflops"),
        "attention_fwd_bwd_vs_sdpa_flash": ratios(rows, "sdpa_flash_attention", "fwd_bwd_tflops"),
        "attention_fwd_bwd_vs_sdpa_cudnn": ratios(rows, "sdpa_cudnn_attention", "fwd_bwd_tflops"),
        "group_norm_fwd_bwd_vs_eager": ratios(rows, "eager", "fwd_bwd_gbps"),
        "group_norm_fwd_bwd_vs_compile": ratios(rows, "torch_compile", "fwd_bwd_gbps"),
        "group_norm_fwd_bwd_share_of_copy": {
            f"{r['op']} {r['shape']}" + (" NHWC" if r["channels_last"] else ""): r["fwd_bwd_gbps"] / copy
            for r in rows
            if r["impl"] == "triton" and r["op"].startswith("group_norm")
        },
    }
    for name, table in summary.items():
        if isinstance(table, dict):
            print(f"{name}: " + ", ".join(f"{k}: {v:.2f}" for k, v in table.items()))
    if not args.smoke:
        save(result_name, {"dtype": str(dtype), "summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
