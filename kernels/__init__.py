"""Fused kernels behind torch reference functions.

`kernels.reference` is the specification: pure torch, runs everywhere. `kernels.fused` wraps the
Triton kernels (`triton_attention`, `triton_group_norm`) in autograd Functions with the same
signatures. `kernels.dispatch` picks one for a backend name (`auto | torch | triton`). Networks
never import this package directly; they call `lit_genvision.nn.ops`.
"""

from kernels.dispatch import BACKENDS, attention, group_norm, resolve_backend

__all__ = ["BACKENDS", "attention", "group_norm", "resolve_backend"]
