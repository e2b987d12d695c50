"""Data larger than memory: one epoch of fit + transform from an on-disk uint8 array (issue 26).

    python -m benchmarks.out_of_core                      # 10k, 100k, 1M and 5M rows (~4 GB on disk)
    python -m benchmarks.out_of_core --sizes 100000 --repeats 3  # one size, medians of 3
    python -m benchmarks.out_of_core --quick              # smoke test: 3,000 rows

Writes ``--data-dir`` (default: ``skvae_out_of_core`` in the temporary
folder) a ``.npy`` file of uint8 28x28 images, as many as the largest size:
MNIST test images (from ``$SKVAE_DATA``, as the other benchmarks read it) or,
without them, ``skvae.datasets.make_glyphs`` images, each shifted by up to 3
pixels either way and given Gaussian noise (sigma 12 of 255); the file is
reused when it holds enough rows. For each size ``n`` a fresh process opens the
first ``n`` rows as a ``np.memmap`` wrapped in
``skvae.datasets.ScaledArray`` (pixels / 255 read on the fly), fits a 2-D
``DisentangledVAE`` with its defaults but ``max_epochs=1`` on them with
their labels, and transforms them all, while a thread samples the process's
``RssAnon`` (anonymous memory: the file's pages, which the kernel can drop,
do not count) every 10 ms. For sizes up to ``--in-memory-max`` another fresh
process does the same on the rows scaled in memory (float32): the baseline of
the throughput ratio.

With ``--repeats`` the two inputs of a size alternate, and the table has the
medians. Writes ``out_of_core_runs.csv`` (one row per run) and
``out_of_core.csv`` (one row per size and input: seconds of fit and
transform, samples/s, peak RssAnon and its rise over the process before
reading data, the ratio of out-of-core to in-memory fit samples/s) to
``--output``, prints the table, and plots it (``out_of_core.png``: time
and peak memory against ``n`` on a logarithmic axis, with a line of slope
one through the largest out-of-core size). ``--plot-only`` redraws the
plot from a saved ``out_of_core.csv``.
"""

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import (
    MNIST_HOME,
    add_output_argument,
    command_line,
    load_average,
    machine,
    markdown,
    output_folder,
    run_line,
    run_measurement_child,
)

SIZES = (10_000, 100_000, 1_000_000, 5_000_000)
IMAGE = 28
MAX_SHIFT = 3
NOISE_SIGMA = 12.0  # of 255
GENERATE_ROWS = 50_000  # images generated and written at a time


def source_images():
    """``(images, labels, name)``: uint8 28x28 images to perturb."""
    from skvae.datasets import load_mnist, make_glyphs

    try:
        images, labels = load_mnist(MNIST_HOME, subset="test", download=False, return_X_y=True)
        return np.round(images * 255).astype(np.uint8), labels, "MNIST test images"
    except (FileNotFoundError, OSError):
        images, labels = make_glyphs(2000, image_size=IMAGE, random_state=0)
        return np.round(images * 255).astype(np.uint8), labels, "make_glyphs images (MNIST not found)"


def perturbed(images, rng):
    """``images`` (n, 28*28 uint8) each shifted by up to MAX_SHIFT pixels and noised."""
    n = len(images)
    padded = np.pad(images.reshape(n, IMAGE, IMAGE), ((0, 0), (MAX_SHIFT, MAX_SHIFT), (MAX_SHIFT, MAX_SHIFT)))
    rows, cols = rng.integers(0, 2 * MAX_SHIFT + 1, size=(2, n))
    window = np.arange(IMAGE)
    which = np.arange(n)[:, None, None]
    moved = padded[which, (rows[:, None] + window)[:, :, None], (cols[:, None] + window)[:, None, :]]
    noise = rng.standard_normal(moved.shape, dtype=np.float32) * NOISE_SIGMA
    return np.clip(moved + noise, 0, 255).astype(np.uint8).reshape(n, -1)


def images_file(data_dir, n_rows):
    """``(path of the images, path of the labels, source)``, written unless they hold ``n_rows`` already."""
    data_dir = output_folder(data_dir)
    path, labels_path = data_dir / "images.npy", data_dir / "labels.npy"
    if path.exists() and labels_path.exists() and np.load(path, mmap_mode="r").shape[0] >= n_rows:
        return path, labels_path, json.loads((data_dir / "source.json").read_text())
    images, labels, source = source_images()
    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n_rows, IMAGE * IMAGE))
    all_labels = np.empty(n_rows, dtype=np.int64)
    for start in range(0, n_rows, GENERATE_ROWS):
        stop = min(start + GENERATE_ROWS, n_rows)
        picked = rng.integers(0, len(images), size=stop - start)
        out[start:stop] = perturbed(images[picked], rng)
        all_labels[start:stop] = labels[picked]
    out.flush()
    del out
    np.save(labels_path, all_labels)
    (data_dir / "source.json").write_text(json.dumps(source))
    return path, labels_path, source


def rss_anon_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


class PeakRssAnon(threading.Thread):
    """Samples RssAnon every 10 ms; ``peak_mb`` is the largest seen."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mb = rss_anon_mb()
        self._done = threading.Event()

    def run(self):
        while not self._done.wait(0.01):
            self.peak_mb = max(self.peak_mb, rss_anon_mb())

    def stop(self):
        self._done.set()
        self.join()
        self.peak_mb = max(self.peak_mb, rss_anon_mb())


def measure(images_path, labels_path, n_rows, in_memory):
    """One epoch of fit and a transform of the first ``n_rows`` rows, in this process."""
    from skvae import DisentangledVAE
    from skvae.datasets import ScaledArray

    before_mb = rss_anon_mb()
    peak = PeakRssAnon()
    peak.start()
    X = ScaledArray(np.load(images_path, mmap_mode="r")[:n_rows])
    y = np.load(labels_path, mmap_mode="r")[:n_rows]
    if in_memory:
        X = X[:]  # float32 in memory, as load_mnist gives it
    model = DisentangledVAE(max_epochs=1, random_state=0)
    start = time.perf_counter()
    model.fit(X, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    model.transform(X)
    transform_s = time.perf_counter() - start
    peak.stop()
    return {
        "n": n_rows,
        "input": "in memory (float32)" if in_memory else "memmap uint8 + ScaledArray",
        "fit_s": fit_s,
        "transform_s": transform_s,
        "fit_samples_s": n_rows / fit_s,
        "transform_samples_s": n_rows / transform_s,
        "peak_rss_anon_mb": peak.peak_mb,
        "rise_mb": peak.peak_mb - before_mb,
    }


def measure_in_child(images_path, labels_path, n_rows, in_memory):
    """:func:`measure` in a fresh process, so that each peak is its own."""
    args = [images_path, labels_path, n_rows, "memory" if in_memory else "disk"]
    return run_measurement_child("benchmarks.out_of_core", args, f"{n_rows} rows")


def plot_scaling(table, path):
    """Seconds of fit + transform and peak RssAnon against rows, per input; a linear-cost guide line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for name, rows in table.groupby("input", sort=False):
        rows = rows.sort_values("n")
        time_axis.plot(rows.n, rows.fit_s + rows.transform_s, "o-", label=name)
        memory_axis.plot(rows.n, rows.peak_rss_anon_mb, "o-", label=name)
    disk = table[~table.input.str.startswith("in memory")].sort_values("n")
    # Through the largest size: fixed costs (process start, the first
    # optimizer step) dominate the small ones.
    last = disk.iloc[-1]
    n = np.array([disk.n.min(), last.n])
    time_axis.plot(n, (last.fit_s + last.transform_s) * n / last.n, ":", color="grey", label="linear in n")
    time_axis.set(xscale="log", yscale="log", xlabel="rows", ylabel="seconds (1 epoch of fit + transform)")
    memory_axis.set(xscale="log", xlabel="rows", ylabel="peak RssAnon (MB)", ylim=(0, None))
    memory_axis.axhline(1024, color="grey", ls="--", label="goal: 1 GB")
    for axis in (time_axis, memory_axis):
        axis.legend()
        axis.grid(True, which="both", alpha=0.3)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--in-memory-max", type=int, default=100_000,
                        help="largest size also measured in memory (default: 100,000)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each size and input; the table has medians")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "skvae_out_of_core")
    parser.add_argument("--quick", action="store_true", help="3,000 rows, the data in the output folder")
    parser.add_argument("--plot-only", action="store_true", help="redraw out_of_core.png from out_of_core.csv")
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)  # the child process of one measurement
    add_output_argument(parser, "out_of_core.csv")
    args = parser.parse_args(argv)
    if args.measure:
        images_path, labels_path, n_rows, where = args.measure
        print(json.dumps(measure(images_path, labels_path, int(n_rows), where == "memory")))
        return
    out = output_folder(args.output)
    if args.plot_only:
        plot_scaling(pd.read_csv(out / "out_of_core.csv"), out / "out_of_core.png")
        return
    sizes, data_dir = sorted(args.sizes), args.data_dir
    if args.quick:
        sizes, data_dir = [3000], out / "out_of_core_data"
    info = machine()
    images_path, labels_path, source = images_file(data_dir, max(sizes))
    print(f"{max(sizes):,} images from {source}, {images_path.stat().st_size / 2**30:.2f} GiB at {images_path}",
          flush=True)
    rows = []
    for n_rows in sizes:
        # Alternated, so that a change of the machine's load falls on both inputs alike.
        for repeat in range(args.repeats):
            for in_memory in (False, True) if n_rows <= args.in_memory_max else (False,):
                rows.append({"repeat": repeat, **measure_in_child(images_path, labels_path, n_rows, in_memory)})
                print(rows[-1], flush=True)
                pd.DataFrame(rows).to_csv(out / "out_of_core_runs.csv", index=False)
    table = pd.DataFrame(rows).groupby(["n", "input"], sort=False).median().reset_index().drop(columns="repeat")
    from_memory = table.input.str.startswith("in memory")
    in_memory_rate = table[from_memory].set_index("n").fit_samples_s
    table["fit_vs_in_memory"] = (table.fit_samples_s / table.n.map(in_memory_rate)).where(~from_memory)
    table.to_csv(out / "out_of_core.csv", index=False)
    plot_scaling(table, out / "out_of_core.png")
    print(run_line(command_line("out_of_core", argv), info, load_average()))
    print(markdown(table, floatfmt=",.2f"))


if __name__ == "__main__":
    main()
