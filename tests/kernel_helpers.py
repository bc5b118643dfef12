"""Shared pieces of the kernel tests: where kernels run, and flash-attention-style tolerances."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from genvision_kernels.triton_runtime import can_run, interpreting


def kernel_device() -> torch.device:
    """The CPU under Triton's interpreter, else CUDA; skip where neither can run the kernels."""
    device = torch.device("cpu" if interpreting() else "cuda")
    if not can_run(device):
        pytest.skip("the Triton kernels need CUDA or TRITON_INTERPRET=1 (tests/conftest.py sets it without CUDA)")
    return device


def rounding_floor(truth: Tensor, dtype: torch.dtype) -> float:
    """Two units in the last place of ``dtype`` at the largest magnitude in ``truth``: the slack for
    a different but equally good summation order (flash-attention adds a rounding term the same way)."""
    return 2 * torch.finfo(dtype).eps * truth.abs().max().item()


def assert_within_twice_reference(name: str, kernel: Tensor, same_dtype: Tensor, truth: Tensor) -> None:
    """The kernel's error against the fp64 truth is at most 2× the same-dtype reference's, plus the
    dtype's rounding floor — the acceptance rule of flash-attention's own tests."""
    err_kernel = (kernel.double() - truth).abs().max().item()
    err_ref = (same_dtype.double() - truth).abs().max().item()
    bound = 2 * err_ref + rounding_floor(truth, same_dtype.dtype)
    assert err_kernel <= bound, (
        f"{name}: kernel error {err_kernel:.3g} > bound {bound:.3g} (reference error {err_ref:.3g})"
    )


def assert_one_sentence(message: str, remedy: str) -> None:
    """A user-facing error: one sentence (one full stop, at the end) that says what to do."""
    assert message.endswith(".") and message.count(". ") == 0, f"not one sentence: {message!r}"
    assert "; " in message and remedy in message.split("; ", 1)[1], f"no remedy {remedy!r} after '; ': {message!r}"


def value_and_grads(fn, inputs: dict[str, Tensor], grad_out: Tensor, **kwargs) -> dict[str, Tensor]:
    """fn(**inputs, **kwargs) and the gradient of ⟨output, grad_out⟩ w.r.t. every float input."""
    leaves = {k: v.detach().clone().requires_grad_(v.is_floating_point()) for k, v in inputs.items()}
    out = fn(**leaves, **kwargs)
    wrt = {k: v for k, v in leaves.items() if v.requires_grad}
    grads = torch.autograd.grad(out, list(wrt.values()), grad_out.to(out.dtype))
    return {"out": out.detach(), **{f"d{k}": g for k, g in zip(wrt, grads, strict=True)}}
