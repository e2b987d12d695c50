"""Running a benchmark script from the tests: one way, shared by the benchmark smoke tests."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Only stops a hung run: a machine busy with other jobs must not turn a slow
# quick run into a failure.
TIMEOUT_S = 1200


def run_benchmark(script, *args, out):
    """Run ``benchmarks/<script> *args --output out`` in a subprocess; its stdout."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args, "--output", str(out)],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"),
        timeout=TIMEOUT_S,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout
