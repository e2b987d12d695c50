"""Data-parallel training on CPU: one process against two at the same global batch (issue 26).

    python -m benchmarks.data_parallel              # MNIST (8,000 rows), 5 epochs, 3 repeats
    python -m benchmarks.data_parallel --quick      # smoke test: digits, 1 epoch, small network

Each run is a fresh launch of this module's worker, which fits a 2-D
``DisentangledVAE`` with its defaults but ``max_epochs=--epochs`` and
``random_state=0`` on the training rows of MNIST's standard split (from
``$SKVAE_DATA``, as the other benchmarks read it; digits when MNIST is not
there), then transforms and scores the test rows:

* ``1 process``: ``python -m benchmarks.data_parallel --worker ...``, no
  process group, 2 torch threads: the estimator as it always trains;
* ``1 process, 1 thread``: the same with 1 thread, the work of one rank
  below;
* ``DDP, 1 process``: ``torchrun --standalone --nproc_per_node 1``, a gloo
  process group of one rank, ``data_parallel=True``, 2 threads: the cost of
  the data-parallel path itself;
* ``DDP, 2 processes``: ``torchrun --standalone --nproc_per_node 2``, two
  gloo ranks of 1 thread each, ``data_parallel="auto"``.

All train at the same global batch (``batch_size=256``), so their models
must agree up to float rounding: the table gives each run's fit seconds and
samples/s (training rows times epochs over the fit's seconds, measured on
rank 0 after a barrier), the head accuracy on the test rows, and the largest
difference of its test latents from those of the ``1 process`` run of the
same repeat. Each repeat runs them in another order, so that a change of the
machine's load falls on all alike; the table has the medians over the
repeats and the fastest fit (``best_fit_s``, ``best_samples_s``), which a
busy machine disturbs least. Writes ``data_parallel_runs.csv`` (one row per run) and
``data_parallel.csv`` to ``--output``, and prints the table.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import (
    MnistMissing,
    REPO,
    add_output_argument,
    command_line,
    load_average,
    load_dataset,
    machine,
    markdown,
    output_folder,
    run_line,
)

#: ``(name, processes, threads per process, data_parallel)`` of each run.
RUNS = (
    ("1 process", 0, 2, "auto"),
    ("1 process, 1 thread", 0, 1, "auto"),
    ("DDP, 1 process", 1, 2, True),
    ("DDP, 2 processes", 2, 1, "auto"),
)
#: The quick run's network: small, so that the smoke test takes seconds.
QUICK_PARAMS = dict(hidden_dims=(32, 16), classifier_hidden=(8,))


def worker(dataset, epochs, threads, data_parallel, quick, out):
    """One fit in this process (a rank, when torchrun started it); rank 0 writes its measures to ``out``."""
    import torch
    import torch.distributed as dist

    from skvae import DisentangledVAE

    torch.set_num_threads(threads)
    if "WORLD_SIZE" in os.environ:  # started by torchrun
        dist.init_process_group("gloo")
    X_train, X_test, y_train, y_test = load_dataset(dataset)
    model = DisentangledVAE(
        max_epochs=epochs, random_state=0, data_parallel=data_parallel, **(QUICK_PARAMS if quick else {})
    )
    if dist.is_initialized():
        dist.barrier()  # the ranks start their clocks together
    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    rank = dist.get_rank() if dist.is_initialized() else 0
    if rank == 0:
        np.save(Path(out) / "latents.npy", model.transform(X_test))
        Path(out, "measures.json").write_text(json.dumps({
            "fit_s": fit_s,
            "samples_s": len(X_train) * epochs / fit_s,
            "head_acc": model.score(X_test, y_test),
        }))
    if dist.is_initialized():
        dist.destroy_process_group()


def launch(name, processes, threads, data_parallel, args, out):
    """Run one fit of ``RUNS`` in fresh processes; its measures and test latents."""
    worker_args = ["--worker", args.dataset, str(args.epochs), str(threads), str(data_parallel), str(out)]
    if args.quick:
        worker_args.append("--quick")
    if processes:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   "-m", "benchmarks.data_parallel", *worker_args]
    else:
        command = [sys.executable, "-m", "benchmarks.data_parallel", *worker_args]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PYTHONWARNINGS="ignore")
    )
    if result.returncode:
        raise RuntimeError(f"the run {name!r} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    measures = json.loads((out / "measures.json").read_text())
    return measures, np.load(out / "latents.npy")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind; the table has medians")
    parser.add_argument("--dataset", choices=["mnist", "digits"], default="mnist",
                        help="mnist falls back to digits when MNIST is not stored (default: mnist)")
    parser.add_argument("--quick", action="store_true", help="digits, 1 epoch, a small network, 1 repeat")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)  # one fit: a launched process
    add_output_argument(parser, "data_parallel.csv and data_parallel_runs.csv")
    args = parser.parse_args(argv)
    if args.worker:
        dataset, epochs, threads, data_parallel, out = args.worker
        data_parallel = {"True": True, "False": False}.get(data_parallel, data_parallel)
        worker(dataset, int(epochs), int(threads), data_parallel, args.quick, out)
        return
    if args.quick:
        args.dataset, args.epochs, args.repeats = "digits", 1, 1
    elif args.dataset == "mnist":
        try:
            load_dataset("mnist")
        except MnistMissing as missing:
            print(f"{missing} Measuring on digits instead.", flush=True)
            args.dataset = "digits"
    out = output_folder(args.output)
    info = machine()
    rows = []
    for repeat in range(args.repeats):
        latents = {}
        for name, processes, threads, data_parallel in RUNS[repeat % len(RUNS):] + RUNS[: repeat % len(RUNS)]:
            with tempfile.TemporaryDirectory() as scratch:
                measures, latents[name] = launch(name, processes, threads, data_parallel, args, Path(scratch))
            rows.append({
                "repeat": repeat, "run": name, "processes": max(processes, 1), "threads_each": threads,
                "dataset": args.dataset, "epochs": args.epochs, **measures,
            })
            print(rows[-1], flush=True)
        for row in rows[-len(RUNS):]:
            row["max_latent_diff"] = float(np.abs(latents[row["run"]] - latents[RUNS[0][0]]).max())
        pd.DataFrame(rows).to_csv(out / "data_parallel_runs.csv", index=False)
    runs = pd.DataFrame(rows).drop(columns="repeat").groupby(
        ["run", "processes", "threads_each", "dataset", "epochs"], sort=False
    )
    table = runs.median()
    table.insert(1, "best_fit_s", runs.fit_s.min())
    table.insert(3, "best_samples_s", runs.samples_s.max())
    table = table.reset_index().set_index("run").loc[[name for name, *_ in RUNS]].reset_index()
    table.to_csv(out / "data_parallel.csv", index=False)
    print(run_line(command_line("data_parallel", argv), info, load_average()))
    print(markdown(table, floatfmt=".3g"))


if __name__ == "__main__":
    main()
