"""The one place that decides which implementation of a fused op runs."""

from __future__ import annotations

from typing import Literal

import torch

Backend = Literal["auto", "torch", "triton"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "triton")


def triton_available() -> bool:
    """True when Triton kernels exist in this package and can run (CUDA, or the interpreter)."""
    return False  # The fused Triton kernels are not written yet (issue: Triton kernels).


def resolve_backend(backend: str, device: torch.device) -> str:
    """Map ``auto | torch | triton`` to the implementation that runs on ``device``.

    ``auto`` is Triton on CUDA when the kernels are available, the torch reference elsewhere.
    """
    if backend not in BACKENDS:
        raise ValueError(f"kernels must be one of {', '.join(BACKENDS)}, got {backend!r}; set it in the model config.")
    if backend == "triton" and not triton_available():
        raise NotImplementedError(
            "kernels: triton was requested but the fused Triton kernels are not available in this build; "
            "use kernels: auto or kernels: torch."
        )
    if backend == "auto":
        return "triton" if device.type == "cuda" and triton_available() else "torch"
    return backend
