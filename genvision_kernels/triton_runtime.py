"""Where Triton kernels can run: on a CUDA device, or on the CPU under Triton's interpreter.

The interpreter is chosen when a kernel is *defined* (``triton.jit`` reads ``TRITON_INTERPRET`` at
import), so the variable must be set before `genvision_kernels.triton_attention` / `genvision_kernels.triton_group_norm`
are first imported; `tests/conftest.py` does this on machines without CUDA.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings

import torch


@functools.cache  # asked on every fused op call: look the package up once
def triton_installed() -> bool:
    """True when the ``triton`` package can be imported (it ships for Linux only)."""
    return importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """True when ``TRITON_INTERPRET=1``: kernels run in Triton's numpy interpreter on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def can_run(device: torch.device) -> bool:
    """True when the Triton kernels can run on tensors that live on ``device``."""
    if not triton_installed():
        return False
    if interpreting():
        return device.type == "cpu"
    return device.type == "cuda" and torch.cuda.is_available()


FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)  # the kernels accumulate in fp32
MAX_HEAD_DIM = 256  # the attention kernel keeps a (tile × d) block of Q and of the output in registers
_FAILED: set[tuple[str, torch.dtype]] = set()  # (op, dtype) whose Triton build failed under `auto`


def is_build_error(err: BaseException) -> bool:
    """True for an error raised by Triton itself (compilation, resources, ptxas), not by bad input."""
    return type(err).__module__.startswith("triton")


def failed(op: str, dtype: torch.dtype) -> bool:
    """True when ``op`` failed to build for ``dtype`` earlier in this process under ``kernels: auto``."""
    return (op, dtype) in _FAILED


def record_failure(op: str, dtype: torch.dtype, err: BaseException) -> None:
    """Remember a build failure and say, once, that ``auto`` now uses the reference for it."""
    _FAILED.add((op, dtype))
    first_line = next((line for line in str(err).splitlines() if line.strip()), "")[:200]
    warnings.warn(
        f"the Triton {op} kernel failed to build for {dtype} ({type(err).__name__}: {first_line}); "
        "kernels: auto uses the torch reference for it from now on.",
        stacklevel=4,
    )
