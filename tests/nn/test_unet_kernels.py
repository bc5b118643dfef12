"""A U-Net trained one step with `kernels: triton` and `kernels: torch` gets the same loss and gradients."""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import assert_one_sentence, kernel_device

from lit_genvision.methods.diffusion import diffusion_loss
from lit_genvision.methods.schedules import CosineSchedule
from lit_genvision.nn import UNet


def _step(kernels: str, device: torch.device, state: dict | None):
    net = UNet(
        in_channels=1, image_size=8, channels=16, channel_mults=[1, 2], depth=1, attention_at=[8, 4],
        heads=2, norm_groups=4, context_dim=12, kernels=kernels,
    ).to(device)  # fmt: skip
    if state is None:
        torch.manual_seed(0)
        for p in net.parameters():  # move the zero-initialised convs and projections off zero
            torch.nn.init.normal_(p, std=0.1)
        state = net.state_dict()
    net.load_state_dict(state)
    g = torch.Generator(device=device).manual_seed(1)
    x0 = torch.rand(3, 1, 8, 8, generator=g, device=device) * 2 - 1
    context = torch.randn(3, 5, 12, generator=g, device=device)
    loss = diffusion_loss(net, CosineSchedule(100), x0, cond={"context": context}, generator=g)
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in net.named_parameters()}, state


def test_one_training_step_matches_the_reference(monkeypatch):
    from genvision_kernels import fused

    device = kernel_device()
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # on CUDA: compare the ops, not TF32 convs
    ref_loss, ref_grads, state = _step("torch", device, None)
    calls = {"attention": 0, "group_norm": 0}
    for op in calls:  # count the fused calls, so a silent fallback to the reference cannot pass

        def counted(*args, _op=op, _fn=getattr(fused, op), **kwargs):
            calls[_op] += 1
            return _fn(*args, **kwargs)

        monkeypatch.setattr(fused, op, counted)
    loss, grads, _ = _step("triton", device, state)
    assert calls == {"attention": 8, "group_norm": 13}, calls  # 4 attention blocks, self + cross each
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=0)
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        scale = ref_grads[name].abs().max().item()
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-4, atol=1e-5 * max(scale, 1e-3), msg=name)


def test_triton_without_a_runtime_says_what_to_do(monkeypatch):
    from genvision_kernels import dispatch

    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="kernels: triton was requested but .*; use kernels: auto") as err:
        dispatch.resolve_backend("triton", torch.device("cpu"))
    assert_one_sentence(str(err.value), "kernels: auto or kernels: torch")
    assert dispatch.resolve_backend("auto", torch.device("cpu")) == "torch"
    with pytest.raises(ValueError, match="kernels must be one of auto, torch, triton, got 'cuda'"):
        UNet(kernels="cuda")


class BuildError(Exception):
    """Stands in for a Triton compilation or resource error on a GPU this project never ran on."""

    __module__ = "triton.compiler.errors"


def _broken(*args, **kwargs):
    raise BuildError("ptxas: out of shared memory")


def test_auto_falls_back_to_the_reference_when_a_forward_build_fails(monkeypatch):
    """On an untested GPU a kernel may fail to compile; `auto` warns and keeps training, `triton` raises."""
    from genvision_kernels import dispatch, fused, triton_runtime

    monkeypatch.setattr(fused, "attention", _broken)
    monkeypatch.setattr(dispatch, "resolve_backend", lambda backend, device: "triton")
    monkeypatch.setattr(triton_runtime, "_FAILED", set())
    q = torch.randn(1, 2, 5, 8)
    with pytest.raises(BuildError):
        dispatch.attention(q, q, q, backend="triton")
    with pytest.warns(UserWarning, match="the Triton attention kernel failed to build for torch.float32"):
        out = dispatch.attention(q, q, q, backend="auto")
    torch.testing.assert_close(out, dispatch.reference.attention(q, q, q))
    assert triton_runtime.failed("attention", torch.float32)
    assert not triton_runtime.failed("attention", torch.bfloat16)  # other dtypes keep the kernel


@pytest.mark.parametrize("op", ["attention", "group_norm"])
def test_auto_falls_back_to_reference_gradients_when_a_backward_build_fails(monkeypatch, op):
    from genvision_kernels import fused, reference, triton_attention, triton_group_norm, triton_runtime

    device = kernel_device()
    monkeypatch.setattr(triton_runtime, "_FAILED", set())
    g = torch.Generator().manual_seed(0)
    if op == "attention":
        monkeypatch.setattr(triton_attention, "attention_backward", _broken)
        inputs = [torch.randn(1, 2, 20, 16, generator=g).to(device).requires_grad_() for _ in range(3)]
        kw = {"causal": True}
    else:
        monkeypatch.setattr(triton_group_norm, "group_norm_backward", _broken)
        inputs = [torch.randn(2, 8, 5, 5, generator=g).to(device).requires_grad_(), 4]
        kw = {"silu": True}
    with pytest.raises(BuildError):
        getattr(fused, op)(*inputs, **kw).sum().backward()
    with pytest.warns(UserWarning, match=f"the Triton {op} kernel failed to build"):
        got = torch.autograd.grad(getattr(fused, op)(*inputs, **kw, fallback=True).sum(), inputs[0])
    want = torch.autograd.grad(getattr(reference, op)(*inputs, **kw).sum(), inputs[0])
    torch.testing.assert_close(got, want)


def test_float64_uses_the_reference_under_auto_and_is_refused_by_the_kernels(monkeypatch):
    from genvision_kernels import dispatch, fused

    q = torch.randn(1, 2, 5, 8, dtype=torch.float64)
    monkeypatch.setattr(dispatch, "resolve_backend", lambda backend, device: "triton")
    monkeypatch.setattr(fused, "attention", _broken)  # must not be reached
    assert torch.equal(dispatch.attention(q, q, q, backend="auto"), dispatch.reference.attention(q, q, q))
    monkeypatch.undo()
    with pytest.raises(ValueError, match="takes float16, bfloat16 or float32 tensors, got torch.float64"):
        fused.group_norm(torch.zeros(1, 4, 2, 2, dtype=torch.float64), 2)


def test_fp32_products_follow_torchs_matmul_precision_switch():
    from genvision_kernels.triton_attention import precision

    before = torch.get_float32_matmul_precision()
    try:
        assert precision(torch.float32) == "ieee"
        torch.set_float32_matmul_precision("high")
        assert precision(torch.float32) == "tf32"
    finally:
        torch.set_float32_matmul_precision(before)


def test_reference_causal_attention_equals_the_masked_form():
    from genvision_kernels import reference

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8, generator=g) for _ in range(3))
    tri = torch.ones(7, 7, dtype=torch.bool).tril()
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=tri)
    torch.testing.assert_close(reference.attention(q, k, v, causal=True), want)
