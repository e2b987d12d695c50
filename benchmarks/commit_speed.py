"""Is the in-memory path as fast as at an earlier commit? Alternated fits of two commits.

    python -m benchmarks.commit_speed --baseline e26362b          # 10 pairs on MNIST 8,000 (digits without MNIST)
    python -m benchmarks.commit_speed --baseline HEAD~5 --data digits --pairs 4
    python -m benchmarks.commit_speed --quick                      # smoke test: HEAD against itself, 1 pair

Issue 26 asks that out-of-core input and data-parallel training make
nothing of the in-memory path slower. Timings of two versions taken minutes
apart on a shared machine differ by more than that, so this script
alternates them: ``git archive`` exports the baseline commit's tree into a
temporary folder (nothing is written into the repository), and each pair
fits the baseline, then the working tree, each in a fresh Python process
with its own tree first on ``sys.path``: the same in-memory float32 rows,
``DisentangledVAE(n_components=2, input_dropout=0.2, max_epochs=EPOCHS,
early_stopping=False, random_state=0)`` (the noise and length fixed, so
that neither version's rules for them enter), one torch thread, then
``transform`` of the test rows. Besides the times, each fit reports its
head accuracy and the sum of its test latents' magnitudes: equal values say
the two versions trained the same model.

Writes ``commit_speed.csv`` (one row per fit) to ``--output`` and prints
the medians and the working tree's time over the baseline's, per pair and
as the ratio of medians.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.common import (
    MnistMissing, add_output_argument, command_line, load_average, load_dataset, machine, markdown,
    output_folder, run_line,
)

REPOSITORY = Path(__file__).resolve().parents[1]
EPOCHS, QUICK_EPOCHS = 10, 1

# Run by each version in its own process: it imports the skvae of the tree
# first on sys.path and nothing of the benchmarks (an old tree may lack them).
_FIT = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from skvae import DisentangledVAE
data = np.load(sys.argv[1])
X_train, y_train, X_test, y_test = (data[k] for k in ("X_train", "y_train", "X_test", "y_test"))
vae = DisentangledVAE(n_components=2, input_dropout=0.2, max_epochs=int(sys.argv[2]), early_stopping=False,
                      random_state=0)
start = time.perf_counter(); vae.fit(X_train, y_train); fit_s = time.perf_counter() - start
start = time.perf_counter(); Z = vae.transform(X_test); transform_s = time.perf_counter() - start
print(json.dumps({"fit_s": fit_s, "transform_s": transform_s, "head_acc": float(np.mean(vae.predict(X_test) == y_test)),
                  "latent_abs_sum": float(np.abs(Z).sum())}))
"""


def export_tree(revision, folder):
    """The files of commit ``revision`` written into ``folder``, by ``git archive``; its full hash."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=REPOSITORY,
                            capture_output=True, text=True)
    if commit.returncode:
        raise SystemExit(f"--baseline {revision!r} is no commit of {REPOSITORY}: {commit.stderr.strip()}")
    archive = subprocess.run(["git", "archive", "--format=tar", commit.stdout.strip()], cwd=REPOSITORY,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        # Our own commit, yet extracted as data only where this Python can (3.11.4 on).
        tar.extractall(folder, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return commit.stdout.strip()


def fit_in(tree, data_path, epochs):
    """One fit and transform by the skvae of ``tree``, in a fresh process: the child's JSON line."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    result = subprocess.run([sys.executable, "-c", _FIT, str(data_path), str(epochs)], cwd=tree, env=env,
                            capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"the fit in {tree} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="HEAD", help="the commit to compare with (default HEAD)")
    parser.add_argument("--data", choices=["mnist", "digits"], default="mnist",
                        help="mnist (the default; digits where MNIST is not stored) or digits")
    parser.add_argument("--pairs", type=int, default=10, help="alternated pairs of fits (default 10)")
    parser.add_argument("--quick", action="store_true", help=f"1 pair of {QUICK_EPOCHS}-epoch fits on digits")
    add_output_argument(parser, "commit_speed.csv")
    args = parser.parse_args(argv)
    name, pairs, epochs = ("digits", 1, QUICK_EPOCHS) if args.quick else (args.data, args.pairs, EPOCHS)
    try:
        X_train, X_test, y_train, y_test = load_dataset(name)
    except MnistMissing as missing:
        print(f"mnist: {missing} Measuring on digits.", flush=True)
        name = "digits"
        X_train, X_test, y_train, y_test = load_dataset(name)
    out = output_folder(args.output)
    torch.set_num_threads(1)  # as in the fits, so that the run line says what they ran with
    info = machine()
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="skvae_commit_speed_") as folder:
        folder = Path(folder)
        data_path = folder / "data.npz"
        np.savez(data_path, X_train=np.asarray(X_train, dtype=np.float32), y_train=y_train,
                 X_test=np.asarray(X_test, dtype=np.float32), y_test=y_test)
        baseline = folder / "baseline"
        commit = export_tree(args.baseline, baseline)
        versions = {f"baseline {commit[:7]}": baseline, "working tree": REPOSITORY}
        for pair in range(pairs):
            for version, tree in versions.items():
                row = {"pair": pair, "version": version, "data": name, "epochs": epochs,
                       **fit_in(tree, data_path, epochs)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(out / "commit_speed.csv", index=False)
    fits = table.pivot(index="pair", columns="version", values="fit_s")
    ratios = fits["working tree"] / fits[f"baseline {commit[:7]}"]
    medians = table.groupby("version", sort=False)[["fit_s", "transform_s", "head_acc", "latent_abs_sum"]].median()
    print("", run_line(command_line("commit_speed", argv), info, load_average())
          + f" {len(rows)} fits in {time.perf_counter() - start:.0f} s.", "", markdown(medians.reset_index()),
          "", f"working tree / baseline fit time: ratio of medians {medians.fit_s.iloc[1] / medians.fit_s.iloc[0]:.3f}, "
          f"per pair {', '.join(f'{r:.3f}' for r in ratios)}", sep="\n", flush=True)


if __name__ == "__main__":
    main()
