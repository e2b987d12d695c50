"""Label propagation at scale: memory and time of ``propagate_labels`` (issue 26).

    python -m benchmarks.propagation_scale                       # 100k rows, in memory and memmap
    python -m benchmarks.propagation_scale --sizes 100000 200000 --inputs memory
    python -m benchmarks.propagation_scale --sizes 1000000 --inputs memory   # 1M rows: the approximate search
    python -m benchmarks.propagation_scale --sizes 1000000 --inputs memory --search exact   # ~70 min on one core
    python -m benchmarks.propagation_scale --sizes 1000000 --search random   # all but the search
    python -m benchmarks.propagation_scale --sizes 100000 200000 --recall 8 16 32   # true neighbours the cells find
    python -m benchmarks.propagation_scale --inputs memory --search sklearn  # the search before blocks
    python -m benchmarks.propagation_scale --block-mb 8         # blocks of 8 MB: 100k rows in 4 blocks
    python -m benchmarks.propagation_scale --quick               # smoke test: 3,000 rows

Writes to ``--data-dir`` (default: ``skvae_propagation`` in the temporary
folder) a float32 ``.npy`` file of Gaussian blobs, as many rows as the
largest size: ``N_FEATURES`` features, ``N_CLASSES`` centres drawn in
``[-1, 1]**d``, each row its centre plus Gaussian noise of sigma
``CLUSTER_STD`` per feature (neighbouring classes overlap); the file is
reused when it holds enough rows. For each size ``n`` and input a fresh
process reads the first ``n`` rows, in memory (``np.load``, float32) or as a
read-only ``np.memmap``, hides the labels of all but ``LABELLED_SHARE`` of
them (seeded), and runs ``skvae.losses.propagate_labels`` (7 neighbours, 10
classes) while a thread samples the process's ``RssAnon`` every 10 ms (the
memmap's pages, which the kernel can drop, do not count). Writes
``propagation_scale.csv`` (one row per run: seconds, peak RssAnon, its rise
over the process with its data loaded, and the accuracy of the propagated
labels on the hidden rows; ``searched``: the search that ran, exact or
cells) to ``--output`` and prints the table with the time that 1,000,000
rows would take at each exact run's rate (``n**2``).

``--recall`` measures instead how many of the true neighbours the cell
search finds (``recall``: the share of each row's neighbours, itself left
out, that the exact search finds too; ``distance_ratio``: their mean
distance over the true ones'), with the given numbers of probed cells, and
writes ``propagation_recall.csv``.

``--search`` picks the neighbour search: ``auto`` is skvae's (exact below
``skvae._neighbors.APPROXIMATE_FROM`` rows, in cells of nearby rows from
there), ``exact`` and ``cells`` force one of the two at every size. An
exact search of a million rows takes over an hour on one core. ``--search random``
measures the rest: the search is replaced by neighbours drawn at random
(the row itself first, then ``k`` others at increasing distances), so the
run shows the memory and time of the search's result, the graph and the
spreading at that size; the search's own blocks do not grow with ``n``
and are measured by the runs of the whole function. ``--search sklearn``
replaces it by the search ``propagate_labels`` made before it read blocks:
scikit-learn's ``NearestNeighbors`` on a float64 copy of the rows.
"""

import argparse
import functools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import (
    add_output_argument,
    command_line,
    load_average,
    machine,
    markdown,
    output_folder,
    run_line,
    run_measurement_child,
)
from benchmarks.out_of_core import PeakRssAnon, rss_anon_mb

SIZES = (100_000,)
INPUTS = ("memory", "memmap")
N_FEATURES = 40
N_CLASSES = 10
CLUSTER_STD = 1.0
LABELLED_SHARE = 0.01
GENERATE_ROWS = 100_000  # rows generated and written at a time
PROJECTED_ROWS = 1_000_000


def blobs_file(data_dir, n_rows):
    """``(path of the rows, path of the labels)``, written unless they hold ``n_rows`` already."""
    data_dir = output_folder(data_dir)
    path, labels_path = data_dir / "blobs.npy", data_dir / "labels.npy"
    if path.exists() and labels_path.exists() and np.load(path, mmap_mode="r").shape[0] >= n_rows:
        return path, labels_path
    rng = np.random.default_rng(0)
    centers = rng.uniform(-1, 1, size=(N_CLASSES, N_FEATURES)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, N_FEATURES))
    labels = rng.integers(0, N_CLASSES, size=n_rows)
    for start in range(0, n_rows, GENERATE_ROWS):
        stop = min(start + GENERATE_ROWS, n_rows)
        noise = rng.standard_normal((stop - start, N_FEATURES), dtype=np.float32) * CLUSTER_STD
        out[start:stop] = centers[labels[start:stop]] + noise
    out.flush()
    del out
    np.save(labels_path, labels)
    return path, labels_path


def random_neighbors(X, n_neighbors):
    """What ``nearest_neighbors`` returns, with neighbours drawn at random: each
    row first (at distance 0), then others at increasing distances."""
    rng = np.random.default_rng(2)
    n_samples = len(X)
    neighbors = rng.integers(0, n_samples, size=(n_samples, n_neighbors))
    neighbors[:, 0] = np.arange(n_samples)
    distances = np.sort(rng.random((n_samples, n_neighbors)), axis=1)
    distances[:, 0] = 0
    return distances, neighbors


def sklearn_neighbors(X, n_neighbors):
    """What ``nearest_neighbors`` returns, found as ``propagate_labels`` found it
    before it read blocks: scikit-learn's search of a float64 copy of ``X``."""
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X, dtype=np.float64)
    return NearestNeighbors(n_neighbors=n_neighbors).fit(X).kneighbors(X)


SEARCHES = ("auto", "exact", "cells", "random", "sklearn")
REPLACEMENTS = {"random": random_neighbors, "sklearn": sklearn_neighbors}


def search_function(search, skvae_search):
    """The neighbour search that ``--search search`` measures, given skvae's
    ``nearest_neighbors``: skvae's as it is (``auto``), its exact or its
    approximate search at every size, or a replacement."""
    if search in REPLACEMENTS:
        return REPLACEMENTS[search]
    if search == "auto":
        return skvae_search
    return functools.partial(skvae_search, approximate=search == "cells")


def measure(path, labels_path, n_rows, where, search="auto", block_mb=None):
    """``propagate_labels`` on the first ``n_rows`` rows, read from ``where``, in this process,
    with the neighbour search of ``search_function(search, ...)``, in blocks of ``block_mb`` MB
    (None: skvae's)."""
    from skvae import _neighbors
    from skvae.losses import propagate_labels

    if block_mb is not None:
        _neighbors.BLOCK_BYTES = int(block_mb * 2**20)
    _neighbors.nearest_neighbors = search_function(search, _neighbors.nearest_neighbors)
    if search == "auto":  # what skvae's search does for an ndarray (or memmap) of n_rows
        searched = "cells" if n_rows >= _neighbors.APPROXIMATE_FROM else "exact"
    else:
        searched = {"sklearn": "exact"}.get(search, search)

    X = np.load(path, mmap_mode="r")[:n_rows]
    if where == "memory":
        X = np.array(X)
    y = np.load(labels_path)[:n_rows]
    hidden = np.random.default_rng(1).random(n_rows) >= LABELLED_SHARE
    y_partly = np.where(hidden, -1, y)
    loaded_mb = rss_anon_mb()
    peak = PeakRssAnon()
    peak.start()
    start = time.perf_counter()
    labels, _ = propagate_labels(X, y_partly, N_CLASSES)
    seconds = time.perf_counter() - start
    peak.stop()
    return {
        "n": n_rows,
        "input": "in memory (float32)" if where == "memory" else "memmap (float32)",
        "search": search,
        "searched": searched,
        "block_mb": _neighbors.BLOCK_BYTES / 2**20,
        "seconds": seconds,
        "peak_rss_anon_mb": peak.peak_mb,
        "rise_mb": peak.peak_mb - loaded_mb,
        "hidden_accuracy": float(np.mean(labels[hidden] == y[hidden])),
    }


def recall(path, n_rows, probes):
    """Rows of ``propagation_recall.csv``: the exact search and the cell search with each number of
    ``probes`` cells, on the first ``n_rows`` rows in memory (this process, one after the other), for
    the neighbours ``propagate_labels`` asks for (its own and the row itself)."""
    from skvae import _neighbors
    from skvae.losses import PROPAGATION_NEIGHBORS

    n_neighbors = PROPAGATION_NEIGHBORS + 1

    X = np.array(np.load(path, mmap_mode="r")[:n_rows])
    start = time.perf_counter()
    exact_distances, exact = _neighbors.nearest_neighbors(X, n_neighbors, approximate=False)
    rows = [{"n": n_rows, "search": "exact", "probed_cells": None, "seconds": time.perf_counter() - start,
             "recall": 1.0, "distance_ratio": 1.0}]
    default_probes = _neighbors.PROBED_CELLS
    try:
        for probed in probes:
            _neighbors.PROBED_CELLS = probed
            start = time.perf_counter()
            distances, found = _neighbors.nearest_neighbors(X, n_neighbors, approximate=True)
            seconds = time.perf_counter() - start
            # Each row's first neighbour is itself: the others are compared.
            hits = sum(np.isin(row[1:], true_row[1:]).sum() for row, true_row in zip(found, exact))
            rows.append({"n": n_rows, "search": "cells", "probed_cells": probed, "seconds": seconds,
                         "recall": hits / (n_rows * (n_neighbors - 1)),
                         "distance_ratio": distances[:, 1:].mean() / exact_distances[:, 1:].mean()})
    finally:
        _neighbors.PROBED_CELLS = default_probes
    return rows


def measure_in_child(path, labels_path, n_rows, where, search, block_mb):
    """:func:`measure` in a fresh process, so that each peak is its own."""
    args = [path, labels_path, n_rows, where, "--search", search, *(["--block-mb", block_mb] if block_mb else [])]
    return run_measurement_child("benchmarks.propagation_scale", args, f"{n_rows} rows")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--inputs", nargs="+", choices=INPUTS, default=list(INPUTS))
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "skvae_propagation")
    parser.add_argument("--search", choices=SEARCHES, default="auto",
                        help="auto (skvae's: exact below 200,000 rows, cells from there), exact or cells (skvae's "
                             "exact or approximate search at any size), random (all but the search) or sklearn "
                             "(the search before blocks)")
    parser.add_argument("--block-mb", type=float, help="MB of float64 rows per block of the search")
    parser.add_argument("--recall", type=int, nargs="+", metavar="PROBED_CELLS",
                        help="instead: how many true neighbours the cell search finds with these numbers of probed "
                             "cells, against the exact search, at each size (propagation_recall.csv)")
    parser.add_argument("--quick", action="store_true", help="3,000 rows, the data in the output folder")
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)  # the child process of one measurement
    add_output_argument(parser, "propagation_scale.csv")
    args = parser.parse_args(argv)
    if args.measure:
        path, labels_path, n_rows, where = args.measure
        print(json.dumps(measure(path, labels_path, int(n_rows), where, args.search, args.block_mb)))
        return
    out = output_folder(args.output)
    sizes, data_dir = sorted(args.sizes), args.data_dir
    if args.quick:
        sizes, data_dir = [3000], out / "propagation_data"
    info = machine()
    path, labels_path = blobs_file(data_dir, max(sizes))
    if args.recall:
        table = pd.DataFrame([row for n_rows in sizes for row in recall(path, n_rows, args.recall)])
        table.to_csv(out / "propagation_recall.csv", index=False)
        print(run_line(command_line("propagation_scale", argv), info, load_average()))
        print(markdown(table, floatfmt=",.3f"))
        return
    rows = []
    for n_rows in sizes:
        for where in args.inputs:
            rows.append(measure_in_child(path, labels_path, n_rows, where, args.search, args.block_mb))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    # An exact search compares every pair of rows: its time grows as n**2.
    table["projected_1m_s"] = (table.seconds * (PROJECTED_ROWS / table.n) ** 2).where(table.searched == "exact")
    table.to_csv(out / "propagation_scale.csv", index=False)
    print(run_line(command_line("propagation_scale", argv), info, load_average()))
    print(markdown(table, floatfmt=",.3f"))


if __name__ == "__main__":
    main()
