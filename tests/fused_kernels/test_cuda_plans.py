"""The tile sizes and launch plans chosen for CUDA, run numerically in the interpreter.

On a machine without a GPU the other kernel tests use the interpreter's small tiles; here the
launchers are made to pick their CUDA tiles (128×64 attention tiles, 64-position GroupNorm slices,
whole-group programs, ...) and the results are held to the reference, so the configurations a GPU
would run are checked for correctness, not only for compiling (`genvision_kernels.aot_check`).
"""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import assert_within_twice_reference, value_and_grads

from genvision_kernels import reference
from genvision_kernels.triton_runtime import interpreting

pytestmark = pytest.mark.skipif(not interpreting(), reason="checks CUDA tile choices under the interpreter")
CUDA = torch.device("cuda")
LAUNCH_ONLY = ("num_warps", "num_stages")  # launch options the interpreter does not take


@pytest.fixture
def cuda_tiles(monkeypatch):
    """Make both launchers choose what they would on an H100/H200 with ``sms`` SMs."""
    from genvision_kernels import triton_attention as ta
    from genvision_kernels import triton_group_norm as tg

    def tiles(choose):
        return lambda *args, f=choose: {k: v for k, v in f(*args[:-1], CUDA).items() if k not in LAUNCH_ONLY}

    monkeypatch.setattr(ta, "forward_blocks", tiles(ta.forward_blocks))
    monkeypatch.setattr(ta, "backward_blocks", tiles(ta.backward_blocks))
    plan = tg.launch_plan
    monkeypatch.setattr(tg, "interpreting", lambda: False)

    def set_sms(sms: int):
        monkeypatch.setattr(tg, "_num_sms", lambda device: sms)
        monkeypatch.setattr(tg, "launch_plan", tiles(plan))
        return lambda *args: plan(*args[:-1], CUDA)

    return set_sms


@pytest.mark.parametrize(
    "nq, nk, d, dtype, causal",
    [(300, 200, 64, torch.float16, True), (130, 150, 128, torch.float32, False), (70, 90, 256, torch.float16, True)],
    ids=["d64-fp16-causal-128x64", "d128-fp32-32x32", "d256-fp16-64x32"],
)
def test_attention_with_cuda_tiles(cuda_tiles, nq, nk, d, dtype, causal):
    from genvision_kernels import fused

    cuda_tiles(132)
    g = torch.Generator().manual_seed(0)
    inputs = {n: torch.randn(1, 2, length, d, generator=g).to(dtype) for n, length in (("q", nq), ("k", nk), ("v", nk))}
    kpm = torch.rand(1, nk, generator=g) > 0.2
    kpm[:, 0] = True
    do = torch.randn(1, 2, nq, d, generator=g, dtype=torch.float64)
    kw = dict(causal=causal, key_padding_mask=kpm)
    truth = value_and_grads(reference.attention, {n: t.double() for n, t in inputs.items()}, do, **kw)
    same = value_and_grads(reference.attention, inputs, do, **kw)
    kern = value_and_grads(fused.attention, inputs, do, **kw)
    for name in truth:
        assert_within_twice_reference(name, kern[name], same[name], truth[name])


@pytest.mark.parametrize(
    "shape, groups, sms, path",
    [((2, 64, 20, 20), 8, 132, "split"), ((4, 32, 8, 8), 16, 16, "single"), ((2, 4, 72, 72), 2, 1, "tiled")],
    ids=["split-64-position-slices", "whole-group-programs", "tiled-2048-positions"],
)
def test_group_norm_with_cuda_plans(cuda_tiles, shape, groups, sms, path):
    from genvision_kernels import fused

    plan = cuda_tiles(sms)(shape[0], groups, shape[2] * shape[3], shape[1] // groups, None)
    assert ("single" if plan["SINGLE"] else "split" if plan["SPLIT"] > 1 else "tiled") == path, plan
    g = torch.Generator().manual_seed(1)
    b, c = shape[:2]
    inputs = {
        "x": torch.randn(shape, generator=g) * 2 + 3, "weight": 1 + 0.5 * torch.randn(c, generator=g),
        "bias": torch.randn(c, generator=g), "scale": 0.5 * torch.randn(b, c, generator=g),
        "shift": torch.randn(b, c, generator=g),
    }  # fmt: skip
    dy = torch.randn(shape, generator=g, dtype=torch.float64)
    kw = dict(num_groups=groups, silu=True)
    truth = value_and_grads(reference.group_norm, {n: t.double() for n, t in inputs.items()}, dy, **kw)
    same = value_and_grads(reference.group_norm, inputs, dy, **kw)
    kern = value_and_grads(fused.group_norm, inputs, dy, **kw)
    for name in truth:
        assert_within_twice_reference(name, kern[name], same[name], truth[name])
