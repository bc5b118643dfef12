"""The fused Triton attention against the torch reference (interpreter on CPU, compiled on CUDA)."""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import assert_one_sentence, assert_within_twice_reference, kernel_device, value_and_grads

from genvision_kernels import reference

CASES = {  # (Nq, Nk, d, causal, key padding): tails, cross-attention both ways, every head dim
    "self-tail-d32": (50, 50, 32, False, False),
    "self-causal-d64": (50, 50, 64, True, False),
    "cross-longer-keys-padding": (37, 70, 64, False, True),
    "cross-shorter-keys-causal-padding-d128": (70, 37, 128, True, True),
    "exact-blocks-d48": (32, 32, 48, False, False),
    "one-head-d256": (20, 24, 256, False, False),  # configs/diffusion/cifar10.yaml attends with one 256-wide head
}


def _inputs(nq, nk, d, padding, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, 3, n, d, generator=g, dtype=torch.float64) for n in (nq, nk, nk))
    kpm = None
    if padding:
        kpm = torch.rand(2, nk, generator=g) > 0.4
        kpm[:, 0] = True  # every query keeps at least one key
        kpm = kpm.to(device)
    do = torch.randn(2, 3, nq, d, generator=g, dtype=torch.float64)
    return {"q": q.to(device), "k": k.to(device), "v": v.to(device)}, kpm, do.to(device)


def _fused():
    from genvision_kernels import fused

    return fused.attention


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_output_and_gradients_within_twice_the_reference_error(case, dtype):
    nq, nk, d, causal, padding = CASES[case]
    device = kernel_device()
    inputs, kpm, do = _inputs(nq, nk, d, padding, device)
    rounded = {k: v.to(dtype) for k, v in inputs.items()}  # the truth sees the same rounded inputs
    kw = dict(causal=causal, key_padding_mask=kpm)
    truth = value_and_grads(reference.attention, {k: v.double() for k, v in rounded.items()}, do, **kw)
    same = value_and_grads(reference.attention, rounded, do, **kw)
    kern = value_and_grads(_fused(), rounded, do, **kw)
    for name in truth:
        assert kern[name].dtype == dtype and kern[name].shape == truth[name].shape
        assert_within_twice_reference(f"{case} {name}", kern[name], same[name], truth[name])


def test_rows_with_every_key_masked_give_zero_and_finite_gradients():
    device = kernel_device()
    inputs, _, do = _inputs(20, 24, 32, False, device)
    inputs = {k: v.float() for k, v in inputs.items()}
    kpm = torch.ones(2, 24, dtype=torch.bool, device=device)
    kpm[1] = False  # the second sample has no key at all
    out = value_and_grads(_fused(), inputs, do, key_padding_mask=kpm)
    ref = value_and_grads(reference.attention, inputs, do, key_padding_mask=kpm)  # torch also gives 0 there
    assert torch.all(out["out"][1] == 0) and torch.all(out["dq"][1] == 0)
    for name in ref:
        torch.testing.assert_close(out[name], ref[name], atol=1e-5, rtol=1e-5, msg=name)


def test_strided_inputs_from_a_fused_qkv_projection():
    """The U-Net splits one (B, N, 3·H·d) projection into q, k, v views: non-contiguous heads."""
    device = kernel_device()
    g = torch.Generator().manual_seed(1)
    qkv = torch.randn(2, 40, 3 * 2 * 32, generator=g).to(device)
    q, k, v = (t.unflatten(-1, (2, 32)).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
    assert not q.is_contiguous()
    torch.testing.assert_close(_fused()(q, k, v), reference.attention(q, k, v), atol=2e-6, rtol=1e-5)


@pytest.mark.gpu
def test_deterministic():
    """No atomics: two runs agree bit for bit. Only meaningful on CUDA, where programs run
    concurrently; the interpreter runs them one after another."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    device = kernel_device()
    inputs, kpm, do = _inputs(45, 45, 32, True, device)
    inputs = {k: v.float() for k, v in inputs.items()}
    a = value_and_grads(_fused(), inputs, do, causal=True, key_padding_mask=kpm)
    b = value_and_grads(_fused(), inputs, do, causal=True, key_padding_mask=kpm)
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_bad_shapes_are_one_sentence():
    from genvision_kernels import fused

    q = torch.zeros(1, 2, 4, 8)
    with pytest.raises(ValueError, match=r"q \(B, H, Nq, d\) and k, v") as err:
        fused.attention(q, torch.zeros(1, 2, 4, 16), torch.zeros(1, 2, 4, 16))
    assert_one_sentence(str(err.value), "reshape")
    with pytest.raises(ValueError, match="key_padding_mask must be") as err:
        fused.attention(q, q, q, key_padding_mask=torch.ones(1, 5, dtype=torch.bool))
    assert_one_sentence(str(err.value), "one row per sample")
    with pytest.raises(ValueError, match="head dims up to 256") as err:
        fused.attention(*(torch.zeros(1, 1, 2, 320) for _ in range(3)))
    assert_one_sentence(str(err.value), "kernels: auto or torch")


def test_auto_sends_what_the_kernel_does_not_take_to_the_reference(monkeypatch):
    """Head dims over 256 and empty inputs run the reference under `auto` (and `triton` refuses > 256)."""
    from genvision_kernels import dispatch, fused

    monkeypatch.setattr(dispatch, "resolve_backend", lambda backend, device: "triton")
    wide = torch.randn(1, 1, 5, 320)
    torch.testing.assert_close(dispatch.attention(wide, wide, wide), reference.attention(wide, wide, wide))
    empty = torch.zeros(0, 2, 5, 32)
    assert fused.attention(empty, empty, empty).shape == (0, 2, 5, 32)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize(
    "nq, nk, d", [(1024, 1024, 64), (4096, 4096, 64), (1000, 77, 64), (2048, 2048, 128), (257, 513, 32)]
)
def test_gpu_large_shapes(nq, nk, d, causal, dtype):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(2, 4, n, d, generator=g, device="cuda") for n in (nq, nk, nk))
    do = torch.randn(2, 4, nq, d, generator=g, device="cuda")
    inputs = {"q": q.to(dtype), "k": k.to(dtype), "v": v.to(dtype)}
    truth = value_and_grads(reference.attention, {n: t.float() for n, t in inputs.items()}, do, causal=causal)
    same = value_and_grads(reference.attention, inputs, do, causal=causal)
    kern = value_and_grads(_fused(), inputs, do, causal=causal)
    for name in truth:
        assert_within_twice_reference(f"{name}", kern[name], same[name], truth[name])
