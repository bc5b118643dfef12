"""ODE solvers for dx/dt = f(x, t) over any velocity callable, integrating from t0 to t1 (t1 may
be smaller: generation runs from t = 1 to 0). Each returns the state at t1 and the number of
function evaluations (NFE).

Fixed-step: Euler (order 1), midpoint and Heun (order 2), classical Runge–Kutta (order 4).
Adaptive: Dormand–Prince 5(4) with error control (Dormand & Prince 1980; Hairer et al. II.4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from lit_genvision.checks import check_float, check_int

Velocity = Callable[[Tensor, Tensor], Tensor]  # f(x (B, …), t (B,)) → (B, …)


@dataclass
class ODEResult:
    x: Tensor
    nfe: int


def _t(t: float, x: Tensor) -> Tensor:
    return torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)


def _grid(t0: float, t1: float, steps: int) -> list[float]:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}.")
    return [t0 + (t1 - t0) * i / steps for i in range(steps + 1)]


def euler(f: Velocity, x: Tensor, t0: float, t1: float, steps: int) -> ODEResult:
    """x_{n+1} = x_n + h f(x_n, t_n)."""
    ts = _grid(t0, t1, steps)
    for a, b in zip(ts[:-1], ts[1:], strict=True):
        x = x + (b - a) * f(x, _t(a, x))
    return ODEResult(x, steps)


def midpoint(f: Velocity, x: Tensor, t0: float, t1: float, steps: int) -> ODEResult:
    """x_{n+1} = x_n + h f(x_n + h/2 f(x_n, t_n), t_n + h/2)."""
    ts = _grid(t0, t1, steps)
    for a, b in zip(ts[:-1], ts[1:], strict=True):
        h = b - a
        x = x + h * f(x + h / 2 * f(x, _t(a, x)), _t(a + h / 2, x))
    return ODEResult(x, 2 * steps)


def heun(f: Velocity, x: Tensor, t0: float, t1: float, steps: int) -> ODEResult:
    """Trapezoidal predictor–corrector: k1 = f(x_n, t_n), k2 = f(x_n + h k1, t_{n+1}),
    x_{n+1} = x_n + h (k1 + k2) / 2."""
    ts = _grid(t0, t1, steps)
    for a, b in zip(ts[:-1], ts[1:], strict=True):
        h = b - a
        k1 = f(x, _t(a, x))
        k2 = f(x + h * k1, _t(b, x))
        x = x + h / 2 * (k1 + k2)
    return ODEResult(x, 2 * steps)


def rk4(f: Velocity, x: Tensor, t0: float, t1: float, steps: int) -> ODEResult:
    """Classical Runge–Kutta: x_{n+1} = x_n + h (k1 + 2k2 + 2k3 + k4) / 6."""
    ts = _grid(t0, t1, steps)
    for a, b in zip(ts[:-1], ts[1:], strict=True):
        h = b - a
        k1 = f(x, _t(a, x))
        k2 = f(x + h / 2 * k1, _t(a + h / 2, x))
        k3 = f(x + h / 2 * k2, _t(a + h / 2, x))
        k4 = f(x + h * k3, _t(b, x))
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return ODEResult(x, 4 * steps)


# Dormand–Prince 5(4) tableau (FSAL: the 7th stage is the next step's first).
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)


def dopri5(
    f: Velocity,
    x: Tensor,
    t0: float,
    t1: float,
    *,
    rtol: float = 1e-3,
    atol: float = 1e-3,
    h0: float | None = None,
    max_steps: int = 10_000,
) -> ODEResult:
    """Adaptive Dormand–Prince 5(4): a step is accepted when the RMS of
    (x5 − x4) / (atol + rtol·max(|x|, |x5|)) is ≤ 1; the step size follows
    h ← h · clip(0.9 · err^(−1/5), 0.2, 10)."""
    direction = 1.0 if t1 >= t0 else -1.0
    span = abs(t1 - t0)
    h = min(h0 or span / 10, span) * direction
    t, nfe = t0, 0
    k1 = f(x, _t(t, x))
    nfe += 1
    for _ in range(max_steps):
        if (t1 - t) * direction <= 1e-12:
            return ODEResult(x, nfe)
        if (t + h - t1) * direction > 0:
            h = t1 - t
        ks = [k1]
        for i in range(1, 7):
            xi = x + h * sum(a * k for a, k in zip(_A[i], ks, strict=False))
            ks.append(f(xi, _t(t + _C[i] * h, x)))
        nfe += 6
        x5 = x + h * sum(b * k for b, k in zip(_B5, ks, strict=True) if b)
        x4 = x + h * sum(b * k for b, k in zip(_B4, ks, strict=True) if b)
        scale = atol + rtol * torch.maximum(x.abs(), x5.abs())
        err = ((x5 - x4) / scale).pow(2).mean().sqrt().item()
        if err <= 1.0:
            t, x, k1 = t + h, x5, ks[6]  # FSAL
        factor = 10.0 if err == 0 else min(10.0, max(0.2, 0.9 * err ** (-1 / 5)))
        h *= factor
    raise RuntimeError(f"dopri5 did not reach t = {t1} in {max_steps} steps; loosen rtol/atol.")


FIXED_STEP = {"euler": euler, "midpoint": midpoint, "heun": heun, "rk4": rk4}
SOLVERS = (*FIXED_STEP, "dopri5")


def solve(
    name: str, f: Velocity, x: Tensor, t0: float, t1: float, *, steps: int = 20, rtol: float = 1e-3, atol: float = 1e-3
) -> ODEResult:
    """Dispatch by solver name: ``euler | midpoint | heun | rk4`` with ``steps``, ``dopri5`` with tolerances."""
    if name == "dopri5":
        return dopri5(f, x, t0, t1, rtol=rtol, atol=atol)
    if name not in FIXED_STEP:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {name!r}.")
    return FIXED_STEP[name](f, x, t0, t1, steps)


class ODESampler:
    """Which solver integrates the learned flow, with its step count or tolerances.

    Args:
        solver: ``euler | midpoint | heun | rk4 | dopri5``.
        steps: steps of a fixed-step solver.
        rtol: dopri5 relative tolerance.
        atol: dopri5 absolute tolerance.
    """

    def __init__(self, solver: str = "euler", steps: int = 20, rtol: float = 1e-3, atol: float = 1e-3) -> None:
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}.")
        check_int("steps", steps, low=1, hint="pass the number of solver steps, e.g. 20")
        check_float("rtol", rtol, low=0, low_open=True, hint="pass a tolerance such as 1e-3")
        check_float("atol", atol, low=0, low_open=True, hint="pass a tolerance such as 1e-3")
        self.solver, self.steps, self.rtol, self.atol = solver, steps, rtol, atol

    @property
    def name(self) -> str:
        return f"dopri5(tol={self.rtol:g})" if self.solver == "dopri5" else self.solver

    def nfe(self, steps: int | None = None) -> int | None:
        """NFE of a fixed-step solver (None for dopri5: known only after the solve)."""
        per_step = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}.get(self.solver)
        return None if per_step is None else per_step * (steps or self.steps)

    def __call__(self, f: Velocity, x: Tensor, t0: float, t1: float, steps: int | None = None) -> ODEResult:
        """Integrate dx/dt = f(x, t) from t0 to t1 with this solver (``steps`` overrides the configured count)."""
        return solve(self.solver, f, x, t0, t1, steps=steps or self.steps, rtol=self.rtol, atol=self.atol)

    def __repr__(self) -> str:
        return f"ODESampler({self.solver!r}, steps={self.steps}, rtol={self.rtol}, atol={self.atol})"
