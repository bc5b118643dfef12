"""Fused kernels behind torch reference functions.

`kernels.reference` is the specification: pure torch, runs everywhere. `kernels.dispatch` picks the
implementation for a backend name (`auto | torch | triton`). Networks never import this package
directly; they call `lit_genvision.nn.ops`.
"""

from kernels.dispatch import BACKENDS, resolve_backend
from kernels.reference import attention, group_norm

__all__ = ["BACKENDS", "attention", "group_norm", "resolve_backend"]
