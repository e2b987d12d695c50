"""Grid-search throughput: joblib backend, n_jobs and torch threads per fit.

Times ``GridSearchCV(DisentangledVAE(max_epochs=10, random_state=0),
{"classification_weight__midpoint": [0.3, 0.5, 0.7, 0.9]}, cv=2)`` on
digits for every combination of ``n_jobs`` in {1, 2}, joblib backend in
{loky, threading} and torch threads per fit in {1, 2}, alternating the
combinations between repeats. The threads are set inside each fit by a
skorch callback (``torch.set_num_threads``), which first records what a fit
finds: ``torch.get_num_threads()`` and the OpenMP pools threadpoolctl sees,
e.g. in a loky worker, where joblib limits ``OMP_NUM_THREADS``.

    python -m benchmarks.grid_search_throughput [--quick] [--repeats N] [--output DIR]

Writes ``grid_search.csv`` (one row per combination) and
``grid_search.md`` (a markdown section) to ``--output`` (default
``benchmarks/results``). With n_jobs=1 joblib runs the fits in the calling
process whichever backend is named, so those two rows measure the same
thing twice. The loky workers are started once before the timed runs; that
cold start is reported separately.
"""

import argparse
import json
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from joblib import parallel_backend
from skorch.callbacks import Callback
from sklearn.model_selection import GridSearchCV

from benchmarks.common import add_output_argument, command_line, load_average, machine, output_folder, run_line, timed
from skvae import DisentangledVAE
from skvae.datasets import load_digits

MIDPOINTS = [0.3, 0.5, 0.7, 0.9]
COMBINATIONS = [(n_jobs, backend, threads) for n_jobs in (1, 2) for backend in ("loky", "threading")
                for threads in (1, 2)]
COLUMNS = ["n_jobs", "backend", "threads_per_fit", "runs", "wall_s", "wall_s_min", "wall_s_max", "fits",
           "fits_per_minute", "speedup_vs_sequential", "torch_threads_found", "openmp_threads_found",
           "torch_threads_in_fit", "worker_processes"]


class TorchThreads(Callback):
    """Sets torch's threads for the length of a fit and logs what the fit found.

    Each fit appends one JSON line to ``log``: its process and thread,
    ``torch.get_num_threads()`` and threadpoolctl's OpenMP ``num_threads``
    before the change, and ``torch.get_num_threads()`` after it. The fit
    gives the threads back as it found them, so that the next fit in the
    same process or thread finds the backend's setting, not ours.
    """

    def __init__(self, threads, log):
        self.threads = threads
        self.log = log

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        from threadpoolctl import threadpool_info

        found = torch.get_num_threads()
        openmp = sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"})
        self.found_ = found
        torch.set_num_threads(self.threads)
        record = dict(pid=os.getpid(), thread=threading.current_thread().name, torch_found=found,
                      openmp_found=openmp, omp_env=os.environ.get("OMP_NUM_THREADS"),
                      torch_set=torch.get_num_threads())
        with open(self.log, "a") as file:
            file.write(json.dumps(record) + "\n")

    def on_train_end(self, net, X=None, y=None, **kwargs):
        torch.set_num_threads(self.found_)


def grid_search(X, y, n_jobs, backend, threads, log, epochs, midpoints):
    """Seconds of one ``GridSearchCV.fit`` and the fits' log records."""
    Path(log).write_text("")
    vae = DisentangledVAE(max_epochs=epochs, random_state=0, callbacks=[("threads", TorchThreads(threads, log))])
    search = GridSearchCV(vae, {"classification_weight__midpoint": midpoints}, cv=2, n_jobs=n_jobs)
    with parallel_backend(backend):
        _, seconds = timed(lambda: search.fit(X, y))
    records = [json.loads(line) for line in Path(log).read_text().splitlines()]
    return seconds, records


def run(quick=False, repeats=3):
    """One row per combination, the loky cold start (s) and the machine description."""
    info = machine()
    X, y = load_digits(return_X_y=True)
    epochs, midpoints = (1, MIDPOINTS[::2]) if quick else (10, MIDPOINTS)
    if quick:
        repeats = 1
    fits = len(midpoints) * 2 + 1  # candidates x folds, and the refit
    log = Path(tempfile.mkdtemp()) / "fits.jsonl"
    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}, load {info['load']}; "
          f"{len(X)} digits, max_epochs={epochs}, {len(midpoints)} candidates x cv=2 + refit = {fits} fits",
          flush=True)
    # Start the loky workers (imports of torch and skvae) outside the timed runs.
    cold, _ = grid_search(X, y, 2, "loky", 1, log, epochs, midpoints)
    print(f"loky cold start: first n_jobs=2 search {cold:.1f} s (load {load_average()})", flush=True)
    times, seen = {}, {}
    for repeat in range(repeats):
        for combo in COMBINATIONS[:: 1 if repeat % 2 == 0 else -1]:
            seconds, records = grid_search(X, y, *combo, log, epochs, midpoints)
            times.setdefault(combo, []).append(seconds)
            seen.setdefault(combo, []).extend(records)
            print(f"  n_jobs={combo[0]} {combo[1]:<9} threads/fit={combo[2]}: {seconds:6.1f} s "
                  f"({fits / seconds * 60:5.1f} fits/min, load {load_average()})", flush=True)
    info["load_end"] = load_average()
    info["data"] = f"digits ({len(X)} rows x {X.shape[1]}), max_epochs={epochs}, midpoints {midpoints}"
    # Against n_jobs=1, loky, 1 thread: the median over repeats of the ratio
    # of the two searches of the same repeat, which a slow drift of the load
    # hits alike.
    sequential = np.asarray(times[1, "loky", 1])
    rows = []
    main_pid = os.getpid()
    for combo in COMBINATIONS:
        wall = float(np.median(times[combo]))
        # What the fits in workers found (the refit runs in this process).
        records = [r for r in seen[combo] if r["pid"] != main_pid] or seen[combo]
        rows.append(dict(
            n_jobs=combo[0], backend=combo[1], threads_per_fit=combo[2], runs=len(times[combo]), wall_s=wall,
            wall_s_min=min(times[combo]), wall_s_max=max(times[combo]), fits=fits, fits_per_minute=fits / wall * 60,
            speedup_vs_sequential=float(np.median(sequential / np.asarray(times[combo]))),
            torch_threads_found=" ".join(str(v) for v in sorted({r["torch_found"] for r in records})),
            openmp_threads_found=" ".join(str(v) for v in sorted({n for r in records for n in r["openmp_found"]})),
            torch_threads_in_fit=" ".join(str(v) for v in sorted({r["torch_set"] for r in records})),
            worker_processes=len({r["pid"] for r in seen[combo]} - {main_pid}),
        ))
    return pd.DataFrame(rows, columns=COLUMNS), cold, info


def report(table, cold, info, command):
    """The "Grid search throughput" section of RESULTS.md for one run."""
    best = table.loc[table.wall_s.idxmin()]
    lines = [
        "## Grid search throughput",
        "",
        f"{run_line(command, info, info['load_end'])} "
        f"`GridSearchCV(DisentangledVAE(max_epochs=..., random_state=0), "
        f"{{'classification_weight__midpoint': ...}}, cv=2)` on {info['data']}; "
        f"{int(table.fits.iloc[0])} fits per search (the refit included); median of the runs, "
        "combinations alternated (the order flips every repeat); the speed-up is the median over repeats of "
        "the ratio to the n_jobs=1, loky, 1-thread search of the same repeat. Threads per fit are set by `torch.set_num_threads` in a callback at the "
        "start of each fit; \"found\" is what `torch.get_num_threads()` and threadpoolctl's OpenMP pool "
        "reported there before that (in the workers; n_jobs=1 fits run in the calling process). "
        f"The first loky search (starting 2 workers) took {cold:.1f} s and is not in the table.",
        "",
        "| n_jobs | backend | threads/fit | wall s (min-max) | fits/min | speed-up vs 1 job, 1 thread | "
        "torch threads found | "
        "OpenMP found |",
        "|--:|:--|--:|--:|--:|--:|--:|--:|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.n_jobs} | {r.backend} | {r.threads_per_fit} | "
            f"{r.wall_s:.1f} ({r.wall_s_min:.1f}-{r.wall_s_max:.1f}) "
            f"| {r.fits_per_minute:.1f} | {r.speedup_vs_sequential:.2f} | {r.torch_threads_found} | "
            f"{r.openmp_threads_found} |"
        )
    lines += ["", f"Fastest: n_jobs={best.n_jobs}, backend={best.backend}, {best.threads_per_fit} torch "
              f"thread(s) per fit, {best.fits_per_minute:.1f} fits/min."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for the test suite")
    parser.add_argument("--repeats", type=int, default=3)
    add_output_argument(parser, "grid_search.csv and grid_search.md")
    args = parser.parse_args(argv)
    table, cold, info = run(args.quick, args.repeats)
    out = output_folder(args.output)
    table.to_csv(out / "grid_search.csv", index=False)
    text = report(table, cold, info, command_line("grid_search_throughput", argv))
    (out / "grid_search.md").write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()
