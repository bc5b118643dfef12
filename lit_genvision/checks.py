"""Argument checks shared by models, methods and tools: each failure is one ``ValueError`` sentence
that names the argument, says what was expected and what was given.

This module imports nothing from the package, so any module can use it.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from pathlib import Path

__all__ = ["check_float", "check_int", "check_writable"]


def _bound(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    """The expected range in words: ``greater than 0``, ``0 or more``, ``in [0, 1)``."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"greater than {low:g}" if low_open else f"{low:g} or more"
    if high is not None:
        return f"less than {high:g}" if high_open else f"{high:g} or less"
    return "finite"


def check_float(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> float:
    """``value`` as a float if it is a finite real number within the bounds, else a ValueError.

    Args:
        name: the argument as the user spells it (``lr``, ``--guidance``).
        value: the value given.
        low: lower bound, or None for none.
        high: upper bound, or None for none.
        low_open: exclude ``low`` itself.
        high_open: exclude ``high`` itself.
        hint: what to do instead, appended after a semicolon (e.g. ``"pass e.g. 2e-4"``).
    """
    expected = "a finite number" + (
        "" if low is None and high is None else " " + _bound(low, high, low_open, high_open)
    )
    tail = f"; {hint}" if hint else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {expected}, got {value!r}{tail}.")
    v = float(value)
    ok = math.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {v:g}{tail}.")
    return v


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None, hint: str = "") -> int:
    """``value`` if it is an integer (not a bool) in [``low``, ``high``], else a ValueError.

    Args:
        name: the argument as the user spells it (``warmup_steps``, ``--steps``).
        value: the value given.
        low: smallest allowed value, or None for none.
        high: largest allowed value, or None for none.
        hint: what to do instead, appended after a semicolon.
    """
    if low is not None and high is not None:
        expected = f"an integer from {low} to {high}"
    elif low is not None:
        expected = f"an integer of at least {low}"
    elif high is not None:
        expected = f"an integer of at most {high}"
    else:
        expected = "an integer"
    tail = f"; {hint}" if hint else ""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        raise ValueError(f"{name} must be {expected}, got {value!r}{tail}.")
    return int(value)


def check_betas(betas: object) -> tuple[float, float]:
    """Adam's (β1, β2), each in [0, 1), as a tuple; one sentence otherwise."""
    if not isinstance(betas, list | tuple) or len(betas) != 2:
        raise ValueError(f"betas must be two Adam coefficients (beta1, beta2), got {betas!r}.")
    for i, beta in enumerate(betas):
        check_float(f"betas[{i}]", beta, low=0, high=1, high_open=True, hint="Adam betas are in [0, 1)")
    return (float(betas[0]), float(betas[1]))


def check_writable(path: str | os.PathLike[str], name: str) -> Path:
    """Make sure a file can be written at ``path`` before any work is spent producing it.

    The parent folder is created if missing, and a temporary file is created in it and removed
    again; an existing file at ``path`` must be writable. Raises a one-sentence ValueError naming
    ``name`` (the option, e.g. ``--out``) otherwise. Returns ``path`` as a Path.
    """
    path = Path(path)
    fix = "pass a file path in a folder you can write to"
    if path.is_dir():
        raise ValueError(f"{name} {path} is a folder, not a file; {fix}.")
    for parent in path.parents:  # nearest first: a file where a folder must be can never be fixed by mkdir
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{name} {path} cannot be written because {parent} is a file, not a folder; {fix}.")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(f"{name} {path} cannot be written ({reason}); {fix}.") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{name} {path} exists and is not writable; {fix}.")
    return path
