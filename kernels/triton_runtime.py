"""Where Triton kernels can run: on a CUDA device, or on the CPU under Triton's interpreter.

The interpreter is chosen when a kernel is *defined* (``triton.jit`` reads ``TRITON_INTERPRET`` at
import), so the variable must be set before `kernels.triton_attention` / `kernels.triton_group_norm`
are first imported; `tests/conftest.py` does this on machines without CUDA.
"""

from __future__ import annotations

import importlib.util
import os

import torch


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
