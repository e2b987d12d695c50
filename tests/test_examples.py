"""Every gallery example runs to the end, in its fast variant.

Each ``examples/plot_*.py`` runs in its own Python process from the
repository root, as a reader would run it, with

* ``SKVAE_EXAMPLES_FAST=1``: less data and fewer epochs (see
  ``examples/README.txt``),
* ``MPLBACKEND=Agg``: figures are drawn but no window opens,
* ``OMP_WAIT_POLICY=PASSIVE``: torch's idle threads do not busy-wait.

An example that needs MNIST prints a message with "Skipping this example"
and exits 0 when it finds no data; that is only accepted when the shared
MNIST folder is absent.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shared_data import MNIST_DIR

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("plot_*.py"))
SKIP_MESSAGE = "Skipping this example"

# Fast mode takes seconds per example; this only stops a hung process.
TIMEOUT_S = 600


def test_examples_found():
    assert len(EXAMPLES) >= 5, f"expected the gallery's examples in {REPO / 'examples'}, found {EXAMPLES}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs(path):
    env = dict(os.environ, SKVAE_EXAMPLES_FAST="1", MPLBACKEND="Agg", OMP_WAIT_POLICY="PASSIVE")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, (
        f"{path.name} exited with code {result.returncode} after {seconds:.1f} s\n"
        f"--- stdout (end) ---\n{result.stdout[-3000:]}\n"
        f"--- stderr (end) ---\n{result.stderr[-6000:]}"
    )
    if SKIP_MESSAGE in result.stdout:
        assert MNIST_DIR is None, (
            f"{path.name} skipped itself although the shared MNIST data is at {MNIST_DIR}:\n"
            f"{result.stdout[-2000:]}"
        )
        pytest.skip(f"{path.name}: {result.stdout.strip().splitlines()[-1]}")
