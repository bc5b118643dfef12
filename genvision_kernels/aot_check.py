"""Compile every kernel launch for an NVIDIA GPU without one: Triton's ahead-of-time path.

    python -m genvision_kernels.aot_check                  # sm_90 (H100/H200); exit 1 if any launch fails to build
    python -m genvision_kernels.aot_check --json out.json  # also write the per-launch resource table

The real launchers (`attention_forward/backward`, `group_norm_forward/backward`) run on CPU tensors
with their CUDA tile choices; each ``kernel[grid](...)`` binds its arguments with Triton's own binder
(so ints equal to 1 become constants and 16-divisible ones get alignment hints, exactly as on a GPU)
and is compiled for the target to a cubin instead of launched. Reported per launch: shared memory,
registers and spilled bytes (``ptxas -v``, bundled with Triton). This catches what Triton's CPU
interpreter cannot — type rules of the compiler, resource limits, spills — but runs nothing, so it
says nothing about speed or numerical results on the device.

Relies on Triton 3.8 internals (`create_function_from_signature`, `JITFunction._pack_args`); must
run without ``TRITON_INTERPRET`` (the kernels must be compiled functions, not interpreted ones).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import torch

SM90_SMS = 132  # H100/H200 SXM
SM90_SHARED_LIMIT = 227 * 1024  # bytes of shared memory one block may use on sm_90


def _ptxas_usage(ptx: str, arch: str) -> dict[str, int]:
    import triton

    ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "k.ptx"
        src.write_text(ptx)
        log = subprocess.run(
            [str(ptxas), "-v", f"--gpu-name={arch}", str(src), "-o", str(Path(tmp) / "k.o")],
            capture_output=True,
            text=True,
        ).stderr
    regs = re.search(r"Used (\d+) registers", log)
    spill = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", log)
    if not (regs and spill):
        raise RuntimeError(f"ptxas -v printed no resource usage: {log.strip()[-300:]}")
    stack, stores, loads = (int(v) for v in spill.groups())
    return {"registers": int(regs[1]), "stack": stack, "spill_stores": stores, "spill_loads": loads}


class _Compile:
    """Stands in for a JITFunction: ``kernel[grid](*args, **kw)`` compiles for the target and records."""

    def __init__(self, fn, target, results: list[dict], case: Callable[[], str]) -> None:
        from triton.backends.nvidia.compiler import CUDABackend

        self.fn, self.target, self.results, self.case = fn, target, results, case
        self.backend = CUDABackend(target)

    def __getitem__(self, grid):
        import triton
        from triton import knobs
        from triton.runtime.jit import create_function_from_signature

        def launch(*args, **kwargs):
            kwargs.setdefault("debug", self.fn.debug or knobs.runtime.debug)
            kwargs["instrumentation_mode"] = knobs.compilation.instrumentation_mode
            binder = create_function_from_signature(self.fn.signature, self.fn.params, self.backend)
            bound, spec, opts = binder(*args, **kwargs)
            options, signature, constexprs, attrs = self.fn._pack_args(self.backend, kwargs, bound, spec, opts)
            row = {"case": self.case(), "kernel": self.fn.__name__}
            row |= {k: kwargs[k] for k in ("num_warps", "num_stages") if k in kwargs}
            row |= {k: v for k, v in kwargs.items() if k.startswith("BLOCK")}
            try:
                compiled = triton.compile(
                    triton.compiler.ASTSource(self.fn, signature, constexprs, attrs),
                    target=self.target,
                    options=options.__dict__,
                )
                arch = f"sm_{self.target.arch}a" if self.target.arch >= 90 else f"sm_{self.target.arch}"
                row |= {"ok": True, "shared": compiled.metadata.shared} | _ptxas_usage(compiled.asm["ptx"], arch)
            except Exception as err:  # a build failure is the finding: record it and go on
                row |= {"ok": False, "error": f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:300]}"}
            self.results.append(row)

        return launch


def _attention_case(b: int, h: int, nq: int, nk: int, d: int, dtype: torch.dtype, causal: bool, padding: bool):
    from genvision_kernels import triton_attention as ta

    q = torch.zeros(b, h, nq, d, dtype=dtype)
    k, v = torch.zeros(b, h, nk, d, dtype=dtype), torch.zeros(b, h, nk, d, dtype=dtype)
    mask = torch.ones(b, nk, dtype=torch.bool) if padding else None
    prec = ta.precision(dtype)
    o, lse = ta.attention_forward(q, k, v, causal, mask, d**-0.5, prec)
    ta.attention_backward(torch.zeros_like(q), q, k, v, o, lse, causal, mask, d**-0.5, prec)


def _group_norm_case(
    shape: tuple[int, ...], groups: int, dtype: torch.dtype, channels_last: bool, modulated: bool, silu: bool
):
    from genvision_kernels import triton_group_norm as tg

    b, c = shape[:2]
    x = torch.zeros(shape, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    w, bias = torch.ones(c, dtype=dtype), torch.zeros(c, dtype=dtype)
    scale = torch.zeros(b, c, dtype=dtype) if modulated else None
    shift = torch.zeros(b, c, dtype=dtype) if modulated else None
    tg.group_norm_forward(x, groups, w, bias, scale, shift, silu, 1e-5)
    stats = torch.zeros(b * groups)
    tg.group_norm_backward(torch.zeros_like(x), x, stats, stats, groups, w, bias, scale, shift, silu)


ATTENTION_CASES = [  # (B, H, Nq, Nk, d, dtype, causal, key padding)
    *(
        (2, 4, 1000, 777, d, dtype, masked, masked)
        for dtype in (torch.float16, torch.bfloat16, torch.float32)
        for d in (32, 64, 128, 256)
        for masked in (False, True)
    ),
    *(  # causal alone (DiT-style decoders) and padding alone (cross-attention to captions)
        (2, 4, 1000, 777, d, dtype, causal, not causal)
        for dtype in (torch.float16, torch.bfloat16)
        for d in (64, 128)
        for causal in (False, True)
    ),
    (1, 1, 1, 1, 64, torch.float16, True, True),  # every int equal to 1 becomes a constant
]
GN_SHAPES = [  # (shape, groups): U-Net maps, a 1×1 map, one 2048-channel group
    ((128, 128, 32, 32), 32),
    ((128, 256, 16, 16), 32),
    ((2, 512, 8, 8), 32),
    ((8, 320, 64, 64), 32),
    ((1, 32, 1, 1), 32),
    ((1, 2048, 8, 8), 1),
]
GROUP_NORM_CASES = [  # (shape, groups, dtype, channels-last, scale/shift, SiLU)
    *(
        (shape, groups, dtype, channels_last, True, True)
        for shape, groups in GN_SHAPES
        for dtype in (torch.bfloat16, torch.float32)
        for channels_last in (False, True)
    ),
    *(  # the U-Net's other specialisations: GN+SiLU (first norm of a block), plain GN (attention's norm)
        (shape, 32, torch.bfloat16, False, False, silu)
        for shape in ((128, 128, 32, 32), (8, 256, 16, 16), (8, 320, 64, 64))
        for silu in (True, False)
    ),
]


def cases() -> list[tuple[str, Callable[[], None]]]:
    """The launches of our configs, every dtype, and the edge shapes where ints become constants."""
    out = []
    for b, h, nq, nk, d, dtype, causal, padding in ATTENTION_CASES:
        masks = "+".join(m for m, on in (("causal", causal), ("padding", padding)) if on)
        name = f"attention B{b} H{h} Nq{nq} Nk{nk} d{d} {str(dtype)[6:]}{' ' + masks if masks else ''}"
        out.append((name, lambda a=(b, h, nq, nk, d, dtype, causal, padding): _attention_case(*a)))
    for shape, groups, dtype, channels_last, modulated, silu in GROUP_NORM_CASES:
        name = f"group_norm {shape} G{groups} {str(dtype)[6:]}{' NHWC' if channels_last else ''}"
        name += f"{'' if modulated else ' no-scale/shift'}{'' if silu else ' no-SiLU'}"
        out.append((name, lambda a=(shape, groups, dtype, channels_last, modulated, silu): _group_norm_case(*a)))
    return out


def run(arch: int = 90, sms: int = SM90_SMS, only: str = "") -> list[dict]:
    """Compile the launches of every case whose name contains ``only`` for ``sm_<arch>``; one row per launch."""
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        raise RuntimeError("kernels.aot_check compiles kernels; run it without TRITON_INTERPRET=1.")
    import triton
    from triton.backends.compiler import GPUTarget

    from genvision_kernels import triton_attention as ta
    from genvision_kernels import triton_group_norm as tg

    target = GPUTarget("cuda", arch, 32)
    results: list[dict] = []
    current = {"case": ""}
    cuda = torch.device("cuda")
    patches = [
        mock.patch.object(ta, "interpreting", lambda: False),
        mock.patch.object(tg, "interpreting", lambda: False),
        mock.patch.object(tg, "_num_sms", lambda device: sms),
        mock.patch.object(ta, "forward_blocks", lambda d, dtype, device, f=ta.forward_blocks: f(d, dtype, cuda)),
        mock.patch.object(ta, "backward_blocks", lambda d, dtype, device, f=ta.backward_blocks: f(d, dtype, cuda)),
        mock.patch.object(tg, "launch_plan", lambda b, g, s, cg, device, f=tg.launch_plan: f(b, g, s, cg, cuda)),
    ]
    for module in (ta, tg):
        for name, obj in vars(module).items():
            if isinstance(obj, triton.runtime.jit.JITFunction) and "tl.program_id" in obj.src:
                patches.append(mock.patch.object(module, name, _Compile(obj, target, results, lambda: current["case"])))
    for patch in patches:
        patch.start()
    try:
        for name, case in cases():
            if only not in name:
                continue
            current["case"] = name
            case()
    finally:
        for patch in reversed(patches):
            patch.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90, help="compute capability × 10 (90 = H100/H200)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--only", default="", help="only the cases whose name contains this")
    args = parser.parse_args(argv)
    rows = run(args.arch, only=args.only)
    for r in rows:
        usage = (
            f"shared {r['shared']:>6} B, {r['registers']:>3} regs, spills {r['spill_stores']:>5} B"
            if r["ok"]
            else "FAILED " + r["error"]
        )
        print(f"{r['case']:<52} {r['kernel']:<16} {usage}")
    failed = [r for r in rows if not r["ok"]]
    print(f"{len(rows) - len(failed)} of {len(rows)} launches built for sm_{args.arch}")
    if args.json:
        args.json.write_text(json.dumps({"arch": args.arch, "rows": rows}, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
