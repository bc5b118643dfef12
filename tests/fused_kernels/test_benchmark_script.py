"""benchmarks/fused_kernels.py measures GPUs; its --smoke mode keeps the script runnable on every machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_kernel_benchmark_smoke_runs_and_checks_the_kernels():
    proc = subprocess.run(
        [sys.executable, "benchmarks/fused_kernels.py", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if " triton: " in ln]
    assert len(lines) == 6, proc.stdout  # 2 attention shapes + 4 GroupNorm variants
    errors = [float(ln.rsplit("err ", 1)[1]) for ln in lines]
    assert max(errors) < 1e-5, proc.stdout
    assert "saved" not in proc.stdout  # smoke figures are never written to benchmarks/results
