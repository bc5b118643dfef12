"""Flow matching: probability paths, the conditional FM loss, ODE solvers."""

from lit_genvision.methods.flow.loss import TIME_SCALE, flow_matching_loss
from lit_genvision.methods.flow.paths import AffinePath, LinearPath, VPPath, sample_times
from lit_genvision.methods.flow.solvers import (
    SOLVERS,
    ODEResult,
    ODESampler,
    dopri5,
    euler,
    heun,
    midpoint,
    rk4,
    solve,
)

__all__ = [
    "SOLVERS",
    "TIME_SCALE",
    "AffinePath",
    "LinearPath",
    "ODEResult",
    "ODESampler",
    "VPPath",
    "dopri5",
    "euler",
    "flow_matching_loss",
    "heun",
    "midpoint",
    "rk4",
    "sample_times",
    "solve",
]
