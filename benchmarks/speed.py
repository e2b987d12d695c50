"""Speed benchmarks: training throughput, inference rows/s, memory, fit time.

Run through ``python -m benchmarks.run_all --only speed`` (``--quick`` for
a smoke test). Numbers depend on the load of the machine: run on a quiet one.
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import torch

from benchmarks import training_speed
from benchmarks.common import timed
from skvae import DisentangledVAE

# Run in a fresh process, so that the peak memory is transform's alone
# (OMP_WAIT_POLICY comes with this process's environment).
_MEMORY_PROBE = r"""
import resource, sys, tracemalloc
import numpy as np, torch
torch.set_num_threads(int(sys.argv[3]))
from skvae import DisentangledVAE
n, epochs = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
vae = DisentangledVAE(max_epochs=epochs, random_state=0).fit(
    rng.random((1024, 784), dtype=np.float32), rng.integers(0, 10, 1024))
X = rng.random((n, 784), dtype=np.float32)
vae.transform(X[:2048])  # warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
vae.transform(X)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak / 2**20, max(after - before, 0) / 1024, X.nbytes / 2**20)
"""


def _rate(func, n_rows, repeats):
    """Rows per second of ``func``, the median of ``repeats`` calls."""
    return n_rows / float(np.median([timed(func)[1] for _ in range(repeats)]))


def run(quick=False, threads=1):
    """The speed table as a DataFrame of (benchmark, setting, value, unit)."""
    torch.set_num_threads(threads)
    rows = []

    def add(benchmark, setting, value, unit):
        rows.append(dict(benchmark=benchmark, setting=setting, value=float(value), unit=unit))
        print(f"{benchmark:<34} {setting:<28} {value:>12,.2f} {unit}", flush=True)

    # Training throughput against a hand-written PyTorch loop.
    for arch in ("mlp", "conv"):
        result = training_speed.measure(architecture=arch, quick=quick, repeats=1 if quick else 3)
        add("training throughput", f"{arch} skvae", result["skvae"], "samples/s")
        add("training throughput", f"{arch} hand loop", result["hand"], "samples/s")
        add("training throughput", f"{arch} ratio skvae/hand", result["ratio"], "x")

    # Inference on 100,000 rows.
    n_rows = 5_000 if quick else 100_000
    rng = np.random.default_rng(0)
    X_fit = rng.random((1024, 784), dtype=np.float32)
    vae = DisentangledVAE(max_epochs=1, random_state=0).fit(X_fit, rng.integers(0, 10, 1024))
    X = rng.random((n_rows, 784), dtype=np.float32)
    Z = vae.transform(X)
    repeats = 1 if quick else 3
    add("transform", f"{n_rows:,} rows", _rate(lambda: vae.transform(X), n_rows, repeats), "rows/s")
    add("inverse_transform", f"{n_rows:,} rows", _rate(lambda: vae.inverse_transform(Z), n_rows, repeats),
        "rows/s")

    # Peak memory of transform, in a fresh process.
    probe = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(n_rows), "1", str(threads)],
        capture_output=True, text=True, check=True,
    )
    traced, rss, data_mib = (float(v) for v in probe.stdout.split()[-3:])
    add("transform peak memory", f"{n_rows:,} rows (tracemalloc)", traced, "MiB")
    add("transform peak memory", f"{n_rows:,} rows (max RSS growth)", rss, "MiB")
    add("transform peak memory", f"{n_rows:,} rows (input itself)", data_mib, "MiB")

    # Fit time per epoch.
    sizes = (1_000,) if quick else (1_000, 4_000, 8_000)
    epochs = 1 if quick else 3
    for n in sizes:
        Xn, yn = rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)
        seconds = training_speed.skvae_fit(DisentangledVAE(random_state=0), Xn, yn, epochs)
        add("fit time per epoch", f"{n:,} rows, MLP 512-256", seconds / epochs, "s")
    return pd.DataFrame(rows)
