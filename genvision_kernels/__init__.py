"""Fused kernels behind torch reference functions.

`genvision_kernels.reference` is the specification: pure torch, runs everywhere. `genvision_kernels.fused` wraps the
Triton kernels (`triton_attention`, `triton_group_norm`) in autograd Functions with the same
signatures. `genvision_kernels.dispatch` picks one for a backend name (`auto | torch | triton`). Networks
never import this package directly; they call `lit_genvision.nn.ops`.
"""

from genvision_kernels.dispatch import BACKENDS, attention, group_norm, resolve_backend

__all__ = ["BACKENDS", "attention", "group_norm", "resolve_backend"]
