"""The one place that decides which implementation of a fused op runs.

``kernels: auto | torch | triton`` in a model config reaches here through `lit_genvision.nn.ops`.
``auto`` is the Triton kernel on CUDA for the ops measured faster than torch's path (`AUTO_TRITON_OPS`,
none yet) and the torch reference everywhere else; ``triton`` insists
on the kernel (on the CPU that needs Triton's interpreter, ``TRITON_INTERPRET=1``); ``torch`` is
always the reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from genvision_kernels import reference
from genvision_kernels.triton_runtime import (
    FUSED_DTYPES,
    MAX_HEAD_DIM,
    can_run,
    failed,
    interpreting,
    is_build_error,
    record_failure,
    triton_installed,
)

BACKENDS: tuple[str, ...] = ("auto", "torch", "triton")


def check_backend(backend: str) -> None:
    """Raise a one-sentence error unless ``backend`` is one of `BACKENDS`."""
    if backend not in BACKENDS:
        raise ValueError(f"kernels must be one of {', '.join(BACKENDS)}, got {backend!r}; set it in the model config.")


def resolve_backend(backend: str, device: torch.device) -> str:
    """Map ``auto | torch | triton`` to the implementation (``torch`` or ``triton``) that runs on ``device``."""
    check_backend(backend)
    if backend == "auto":
        return "triton" if device.type == "cuda" and can_run(device) else "torch"
    if backend == "triton" and not can_run(device):
        if not triton_installed():
            why = "the triton package is not installed (it ships for Linux)"
        elif device.type == "cpu":
            why = (
                "the tensors are on the CPU, where Triton runs only in its interpreter (TRITON_INTERPRET=1 at start-up)"
            )
        elif device.type == "cuda" and interpreting():
            why = f"TRITON_INTERPRET=1 runs the kernels on CPU tensors only and these are on {device} (unset it)"
        else:
            why = f"Triton runs on CUDA GPUs and the tensors are on {device}"
        raise RuntimeError(f"kernels: triton was requested but {why}; use kernels: auto or kernels: torch.")
    return backend


# The ops whose Triton kernel `auto` runs on CUDA: those measured faster than torch's own path, forward +
# backward in bf16, on the reference GPU (an H200, `python benchmarks/fused_kernels.py`, benchmarks/README.md). None
# is yet: the attention kernel ran 0.44–0.73× SDPA's default (cuDNN) backend at every measured shape (it beat
# only the flash backend, 1.05–1.13× at head dim 64 and N ≥ 1024), and the GroupNorm kernel 0.23–0.81× eager
# on NCHW maps. `kernels: triton` still runs either kernel; an op joins this set when a benchmark shows a win.
AUTO_TRITON_OPS: frozenset[str] = frozenset()


def _run(
    op: str, backend: str, x: Tensor, supported: bool, fused: Callable[[bool], Tensor], ref: Callable[[], Tensor]
) -> Tensor:
    """``fused(fallback)`` or ``ref()``. Under ``auto``, inputs the kernel does not take (float64,
    ``supported`` False) and any (op, dtype) whose Triton build failed use the reference; a build
    failure in the forward is caught here, one in the backward inside the autograd Function
    (``fallback`` = True)."""
    if resolve_backend(backend, x.device) == "torch":
        return ref()
    auto = backend == "auto"
    if auto and (not supported or x.dtype not in FUSED_DTYPES or failed(op, x.dtype)):
        return ref()
    if auto and x.device.type == "cuda" and op not in AUTO_TRITON_OPS:
        return ref()  # torch's path was measured faster
    try:
        return fused(auto)
    except Exception as err:  # a Triton build failure on an untested GPU must not stop `auto` runs
        if not auto or not is_build_error(err):
            raise
        record_failure(op, x.dtype, err)
        return ref()


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    key_padding_mask: Tensor | None = None,
    backend: str = "auto",
) -> Tensor:
    """`genvision_kernels.reference.attention` or its fused Triton kernel, as ``backend`` resolves on q's device."""

    def fused(fallback: bool) -> Tensor:
        from genvision_kernels import fused as f  # imports triton; only where it can run

        return f.attention(q, k, v, causal=causal, key_padding_mask=key_padding_mask, fallback=fallback)

    return _run(
        "attention", backend, q, q.shape[-1] <= MAX_HEAD_DIM, fused,
        lambda: reference.attention(q, k, v, causal=causal, key_padding_mask=key_padding_mask),
    )  # fmt: skip


def group_norm(
    x: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    *,
    scale: Tensor | None = None,
    shift: Tensor | None = None,
    silu: bool = False,
    eps: float = 1e-5,
    backend: str = "auto",
) -> Tensor:
    """`genvision_kernels.reference.group_norm` or its fused Triton kernel, as ``backend`` resolves on x's device."""
    kwargs = dict(scale=scale, shift=shift, silu=silu, eps=eps)

    def fused(fallback: bool) -> Tensor:
        from genvision_kernels import fused as f

        return f.group_norm(x, num_groups, weight, bias, **kwargs, fallback=fallback)

    return _run(
        "group_norm", backend, x, True, fused, lambda: reference.group_norm(x, num_groups, weight, bias, **kwargs)
    )
