"""Running a benchmark from the tests: one way, shared by the benchmark smoke tests."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Only stops a hung run: a machine busy with other jobs must not turn a slow
# quick run into a failure.
TIMEOUT_S = 1200


def run_benchmark(name, *args, out):
    """Run ``python -m benchmarks.<name> *args --output out`` from the repository root; its stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args, "--output", str(out)],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"),
        timeout=TIMEOUT_S,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout
