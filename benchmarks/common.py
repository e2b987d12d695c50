"""What every benchmark shares: data, the machine description, tables, timing, output.

* data -- :func:`load_dataset` (the digits and MNIST splits of every
  benchmark); MNIST is read from ``$SKVAE_DATA`` when set, else from
  ``../shared/data/mnist`` beside the clone, and never downloaded;
* the run -- :func:`machine` (where and when it ran), :func:`run_line` (the
  sentence a markdown report opens with), :func:`command_line`;
* tables -- :func:`markdown`;
* timing -- :func:`timed`, :func:`seconds_per_call`;
* output -- :func:`add_output_argument` and :func:`output_folder`.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from skvae.datasets import load_digits, mnist_standard_split

REPO = Path(__file__).resolve().parents[1]
#: Where the scripts write their tables unless given ``--output``.
RESULTS_DIR = REPO / "benchmarks" / "results"
#: The folder holding the MNIST files (directly or in a ``mnist`` subfolder).
MNIST_HOME = Path(os.environ.get("SKVAE_DATA") or REPO.parent / "shared" / "data" / "mnist")


class MnistMissing(SystemExit):
    """MNIST is not stored where the benchmarks look, and they never download it.

    A :class:`SystemExit`, so that a benchmark that needs MNIST stops with
    this message instead of a traceback; a benchmark with a fallback (random
    pixels) catches it.
    """


def load_mnist_split():
    """``(X_train, X_test, y_train, y_test)``: the MNIST standard split (8,000 / 2,000) from MNIST_HOME."""
    try:
        return mnist_standard_split(MNIST_HOME, download=False)
    except FileNotFoundError as error:
        raise MnistMissing(
            f"MNIST is not stored in {MNIST_HOME} (nor in its mnist subfolder), and the benchmarks never "
            "download it: set SKVAE_DATA to the folder holding the MNIST test files (t10k-*-ubyte.gz), "
            "or run on digits only."
        ) from error


def sets_present(names, load):
    """The names of ``names`` whose data ``load(name)`` finds; the others are skipped with a message.

    Raises SystemExit when none is left.
    """
    present = []
    for name in names:
        try:
            load(name)
        except MnistMissing as missing:
            print(f"{name}: skipped. {missing}", flush=True)
            continue
        present.append(name)
    if not present:
        raise SystemExit("no set left to measure")
    return present


def load_dataset(name):
    """``(X_train, X_test, y_train, y_test)`` of a benchmark's data set.

    ``"mnist"``: the MNIST standard split (:func:`load_mnist_split`);
    ``"digits"``: ``skvae.datasets.load_digits`` (pixels in [0, 1]), a
    stratified 80/20 split with ``random_state=0`` (1,437 / 360 rows).
    """
    if name == "mnist":
        return load_mnist_split()
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    raise ValueError(f"unknown data set {name!r}")


def cpu_runs_bf16():
    """Whether skvae trains in bfloat16 on this CPU, asked of skvae's public API.

    ``fit`` refuses ``precision="bf16-mixed"`` where the CPU has no bfloat16
    arithmetic; a one-epoch fit on four rows tells.
    """
    from skvae import DisentangledVAE

    X = np.eye(4, dtype=np.float32)
    try:
        DisentangledVAE(hidden_dims=(4,), max_epochs=1, precision="bf16-mixed", random_state=0).fit(X)
    except ValueError:
        return False
    return True


def load_average():
    """The 1, 5 and 15-minute load averages, as ``"1.0/1.8/1.9"``: how busy the machine was."""
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def _cpu_model():
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        lscpu = ""
    for line in lscpu.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine():
    """Where and when a benchmark runs: CPU, versions, thread settings, date and load average."""
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "load": load_average(),
    }


def run_line(command, info, load_end):
    """The sentence a report opens with: the command, date, machine and load of the run."""
    return (
        f"`{command}` on {info['date']}: {info['cpu']} ({info['cores']} cores, {info['cpu_capability']}), "
        f"torch {info['torch']} with {info['torch_threads']} threads (OMP_NUM_THREADS {info['OMP_NUM_THREADS']}, "
        f"OMP_WAIT_POLICY {info['OMP_WAIT_POLICY']}), numpy {info['numpy']}, Python {info['python']}, "
        f"load average (1/5/15 min) {info['load']} at the start and {load_end} at the end."
    )


def command_line(name, argv=None):
    """``python -m benchmarks.<name>`` with the arguments of this run, less ``--output``.

    The output folder does not change a number, and a scratch folder's path
    would only be noise in RESULTS.md.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    kept = []
    while argv:
        arg = argv.pop(0)
        if arg == "--output":
            argv.pop(0)
        elif not arg.startswith("--output="):
            kept.append(arg)
    return f"python -m benchmarks.{name} {shlex.join(kept)}".rstrip()


def markdown(table, floatfmt=".3f", **kwargs):
    """A DataFrame as a markdown table (plain text where ``tabulate`` is not installed)."""
    try:
        return table.to_markdown(index=False, floatfmt=floatfmt, **kwargs)
    except ImportError:  # pandas writes markdown through tabulate, an optional package
        return table.to_string(index=False)


def timed(call):
    """``(call(), seconds it took)``."""
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def seconds_per_call(call, min_seconds):
    """Mean seconds of ``call()``, called until ``min_seconds`` have passed.

    One call first is not timed: it warms up what a first call pays once
    (kernel selection, first touch of memory, compilation).
    """
    call()
    calls, start = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def add_output_argument(parser, files):
    """``--output``: the folder the script writes ``files`` (a description) to."""
    parser.add_argument("--output", type=Path, default=RESULTS_DIR,
                        help=f"folder for {files} (default: benchmarks/results)")


def grid_arguments(description, argv, *, sets, quick_run, full_run, quick_help, table, files, switches=None):
    """Parsed arguments of a script that measures sets x latent dims x seeds.

    ``--quick`` (``quick_help`` says what it does), ``--sets`` (of ``sets``),
    ``--dims``, ``--seeds``, ``--jobs``, ``--threads``, ``--update`` (merge
    into ``table``) and ``--output`` (for ``files``); what ``--sets``,
    ``--dims`` and ``--seeds`` leave unset comes from ``quick_run`` or
    ``full_run`` (dicts by option name). ``switches`` adds the script's own
    on/off options (a dict of option to help text).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {quick_help} unless --sets, --dims or --seeds say otherwise")
    parser.add_argument("--sets", nargs="+", choices=list(sets), help="default: all")
    parser.add_argument("--dims", nargs="+", type=int, help="default: 2 8")
    parser.add_argument("--seeds", nargs="+", type=int, help="default: 0 1 2")
    parser.add_argument("--jobs", type=int, default=1, help="sets, dims and seeds measured in parallel (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job (default 1)")
    parser.add_argument("--update", action="store_true",
                        help=f"merge into the existing {table}, replacing rows of the same data, dims and seed")
    for option, help_text in (switches or {}).items():
        parser.add_argument(option, action="store_true", help=help_text)
    add_output_argument(parser, files)
    args = parser.parse_args(argv)
    for option, value in (quick_run if args.quick else full_run).items():
        if getattr(args, option) is None:
            setattr(args, option, value)
    return args


def output_folder(path):
    """``path`` as a folder that exists."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_measurement_child(module, args, what):
    """Run ``python -m <module> --measure <args>`` in a fresh process, so that
    each peak of memory, and each first call, is its own; its last line of
    output, as JSON. ``what`` names the measurement in the error raised when
    the child fails."""
    result = subprocess.run(
        [sys.executable, "-m", module, "--measure", *map(str, args)],
        capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    if result.returncode:
        raise RuntimeError(f"the measurement of {what} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1])
