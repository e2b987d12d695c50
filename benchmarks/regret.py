"""Regret of the defaults on a wider visible panel (issue 24).

    python -m benchmarks.regret --jobs 2       # the whole table: 7 sets, 2-D and 8-D, seeds 0-2 (~1 h on 2 free cores)
    python -m benchmarks.regret --quick        # smoke test: waveforms and imbalanced, 2-D, seed 0, 2 epochs
    python -m benchmarks.regret --sets waveforms glyphs16 --dims 8 --seeds 0 1 2 --update   # add rows
    python -m benchmarks.regret --defaults-only --update   # refit the defaults only, keep the grid (~20 min in one process)

A user judges skvae on their own data with default parameters. On each set
and latent dimension, this fits ``DisentangledVAE(n_components=dims,
random_state=seed)`` with its defaults, and a small grid of fixed settings
on the same split: ``input_dropout`` 0, 0.1, 0.2 and 0.3, each trained for
the base length ``auto_max_epochs(n_train, batch_size)`` (``1x``: the
default's length where the classes have fixed centres) and for twice it
(``2x``). Where the default resolves to one cell of that grid
(``input_dropout_`` and ``max_epochs_`` equal to the cell's), it is fitted
once and stands for that cell: 8 fits per set, dims and seed; where it does
not (4 or more classes in 2-D train 1.5 times the base length: ``1.5x``),
it is a ninth fit. **regret** is the best cell's head accuracy (the cell
chosen by its mean over seeds) minus the default's mean, in points: what a
user loses by not tuning these two knobs; it is negative where the default
beats every cell. The cell is chosen on the test split it is scored on, so
small regrets are partly that choice's luck.

``--defaults-only`` fits the defaults alone, for a table whose defaults
changed: with ``--update`` it replaces the default rows of ``regret.csv``
and keeps its grid, the former default rows staying as the cells they were
fitted at (a default that resolves to a cell replaces that cell's row).

Sets (each split once, with ``random_state=0``, the same for every seed;
``StandardScaler`` in front of the VAE where marked *scaled*):

* ``waveforms`` -- ``skvae.datasets.make_waveforms(4000)`` (64 features, 10
  classes: one shape per class anywhere in the window), 3,000 / 1,000,
  *scaled*;
* ``glyphs16`` -- ``make_glyphs(5000)`` (16x16 drawn shapes, 10 classes),
  4,000 / 1,000;
* ``mnist_perturbed`` -- the MNIST standard split (8,000 / 2,000) through
  ``perturb_images`` (shifts up to 2 pixels, rotations up to 15 degrees,
  stroke noise 0.2; training and test images perturbed with their own seeds);
* ``mnist14`` -- the MNIST standard split mean-pooled to 14x14;
* ``wide`` -- ``make_classification(n_samples=3000, n_features=200,
  n_informative=30, n_classes=10, n_clusters_per_class=2)``, 2,400 / 600,
  *scaled*;
* ``imbalanced`` -- ``make_classification(n_samples=4000, n_features=16,
  n_informative=10, n_classes=5)`` with class weights falling geometrically
  from the largest to the smallest class, 20:1, 3,000 / 1,000, *scaled*;
  judged by accuracy and by balanced accuracy;
* ``digits`` -- ``common.load_dataset("digits")`` (1,437 / 360), today's panel.

The MNIST sets are skipped with a message where MNIST is not stored.
``--quick`` trains every model for 2 epochs (4 for the longer cells) instead
of ``max_epochs="auto"``: it checks that the script runs, nothing more.

Writes to ``--output`` (default ``benchmarks/results``): ``regret.csv`` (one
row per fit: data, dims, seed, the cell's ``input_dropout`` and ``epochs``
-- ``1x`` or ``2x`` the default's --, ``is_default``, ``max_epochs``,
``n_train``, ``fit_s``, the head's ``head_acc`` and ``head_balanced_acc``,
and for the default the 5-NN of its latent space, ``knn5_acc`` and
``knn5_balanced_acc``: ``KNeighborsClassifier(5)`` fitted on
``transform(X_train)``), ``regret_summary.csv`` (the table of RESULTS.md),
``regret_grid.csv`` (every cell's mean head) and ``regret.md`` (both tables,
with the command and machine).
"""

import json
import time

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from sklearn.datasets import make_classification
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.common import (
    command_line, grid_arguments, load_average, load_dataset, machine, markdown, output_folder,
    run_line, sets_present, timed,
)
from skvae import DisentangledVAE
from skvae.datasets import make_glyphs, make_waveforms, perturb_images
from skvae.estimator import auto_max_epochs

SETS = ["waveforms", "glyphs16", "mnist_perturbed", "mnist14", "wide", "imbalanced", "digits"]
SCALED = {"waveforms", "wide", "imbalanced"}  # StandardScaler in front of the VAE
BALANCED = {"imbalanced"}  # also judged by balanced accuracy
DROPOUTS = [0.0, 0.1, 0.2, 0.3]
LENGTHS = {"1x": 1, "2x": 2}  # multiples of the base length, auto_max_epochs(n_train, batch_size)
IMBALANCE = 20  # largest class weight over smallest
KEY = ["data", "dims", "seed"]
CELL = ["input_dropout", "epochs"]
COLUMNS = [
    *KEY, "input_dropout", "epochs", "is_default", "max_epochs", "n_train", "fit_s", "head_acc",
    "head_balanced_acc", "knn5_acc", "knn5_balanced_acc",
]
QUICK_EPOCHS = 2
# What a run measures unless --sets, --dims or --seeds say otherwise.
FULL_RUN = {"sets": SETS, "dims": [2, 8], "seeds": [0, 1, 2]}
QUICK_RUN = {"sets": ["waveforms", "imbalanced"], "dims": [2], "seeds": [0]}


def split(X, y, test_size):
    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=0)


def load(name):
    """``(X_train, X_test, y_train, y_test)`` of set ``name``; raises ``MnistMissing`` without MNIST."""
    if name == "waveforms":
        return split(*make_waveforms(4000, random_state=0), test_size=1000)
    if name == "glyphs16":
        return split(*make_glyphs(5000, random_state=0), test_size=1000)
    if name in ("mnist_perturbed", "mnist14"):
        X_train, X_test, y_train, y_test = load_dataset("mnist")
        if name == "mnist14":
            X_train, X_test = (
                perturb_images(X, (28, 28), shift=0, rotation=0, stroke_noise=0, downsample=2)
                for X in (X_train, X_test)
            )
        else:
            X_train = perturb_images(X_train, (28, 28), random_state=0)
            X_test = perturb_images(X_test, (28, 28), random_state=1)
        return X_train, X_test, y_train, y_test
    if name == "wide":
        X, y = make_classification(n_samples=3000, n_features=200, n_informative=30, n_classes=10,
                                   n_clusters_per_class=2, random_state=0)
        return split(X, y, test_size=0.2)
    if name == "imbalanced":
        weights = IMBALANCE ** -np.linspace(0, 1, 5)
        X, y = make_classification(n_samples=4000, n_features=16, n_informative=10, n_classes=5,
                                   weights=weights / weights.sum(), random_state=0)
        return split(X, y, test_size=1000)
    if name == "digits":
        return load_dataset("digits")
    raise ValueError(f"unknown set {name!r}")


def model(name, dims, seed, **params):
    vae = DisentangledVAE(n_components=dims, random_state=seed, **params)
    return make_pipeline(StandardScaler(), vae) if name in SCALED else make_pipeline(vae)


def scores(prefix, y_true, y_pred):
    return {f"{prefix}_acc": accuracy_score(y_true, y_pred),
            f"{prefix}_balanced_acc": balanced_accuracy_score(y_true, y_pred)}


def fit_and_score(pipe, data):
    X_train, X_test, y_train, y_test = data
    _, fit_s = timed(lambda: pipe.fit(X_train, y_train))
    return {"max_epochs": pipe[-1].max_epochs_, "n_train": len(X_train), "fit_s": fit_s,
            **scores("head", y_test, pipe.predict(X_test))}


def length_label(max_epochs, base):
    """``max_epochs`` as a multiple of the base length: ``"1x"``, ``"2x"``, ``"1.5x"``."""
    return f"{max_epochs / base:.3g}x"


def measure(name, dims, seed, quick, threads, defaults_only=False):
    """The default of one set, dims and seed, then (unless ``defaults_only``) every cell of the
    grid that the default is not."""
    torch.set_num_threads(threads)
    data = load(name)
    X_train, X_test, y_train, y_test = data
    base = QUICK_EPOCHS if quick else auto_max_epochs(len(X_train), DisentangledVAE().batch_size)
    default = model(name, dims, seed, **({"max_epochs": QUICK_EPOCHS} if quick else {}))
    row = fit_and_score(default, data)
    knn = KNeighborsClassifier(5).fit(default.transform(X_train), y_train)
    row.update(scores("knn5", y_test, knn.predict(default.transform(X_test))))
    default_cell = (default[-1].input_dropout_, length_label(row["max_epochs"], base))
    rows = [dict(data=name, dims=dims, seed=seed, input_dropout=default_cell[0], epochs=default_cell[1],
                 is_default=True, **row)]
    if defaults_only:
        return rows
    for dropout in DROPOUTS:
        for length, factor in LENGTHS.items():
            if (dropout, length) == default_cell:
                continue  # the default stands for its own cell
            cell = model(name, dims, seed, input_dropout=dropout, max_epochs=factor * base)
            rows.append(dict(data=name, dims=dims, seed=seed, input_dropout=dropout, epochs=length,
                             is_default=False, **fit_and_score(cell, data)))
    return rows


def merge(old, new, defaults_only):
    """The rows of ``old`` that ``new`` does not measure again, and ``new``.

    A run of the whole grid replaces every row of its data, dims and seed;
    a run of the defaults only replaces their default rows, the former
    defaults staying as the grid cells they were fitted at unless a new
    default was fitted at that very cell.
    """
    remeasured = old.set_index(KEY).index.isin(new.set_index(KEY).index)
    if defaults_only:
        old = old.assign(is_default=old.is_default & ~remeasured)
        remeasured = old.set_index(KEY + CELL).index.isin(new.set_index(KEY + CELL).index)
    keep = old[~remeasured]
    return pd.concat([keep, new] if len(keep) else [new], ignore_index=True)


def cell_label(dropout, epochs):
    return f"p={dropout:g}, {epochs}"


def summarize(table):
    """Per set and dims: the default, the best cell, the regret, 5-NN and fit time (means over seeds)."""
    rows, grid = [], []
    for (name, dims), g in table.groupby(["data", "dims"], sort=False):
        cells = g[g.epochs.isin(list(LENGTHS))].groupby(CELL)  # a default off the grid is no cell
        seeds = sorted(g.seed.unique())
        # Only cells measured on every seed compete, so that each mean is over the same seeds.
        complete = cells.seed.nunique() == len(seeds)
        default = g[g.is_default]
        grid.append({"data": name, "dims": dims, **{cell_label(*key): mean for key, mean in
                                                    cells.head_acc.mean()[complete].items()}})
        for metric, label in [("acc", "accuracy"), ("balanced_acc", "balanced accuracy")]:
            if metric == "balanced_acc" and name not in BALANCED:
                continue
            means = cells[f"head_{metric}"].mean()[complete]
            best = means.idxmax()
            head, knn5 = default[f"head_{metric}"].mean(), default[f"knn5_{metric}"].mean()
            rows.append({
                "data": name, "dims": dims, "score": label, "seeds": ",".join(map(str, seeds)),
                "n_train": int(default.n_train.iloc[0]), "max_epochs_": int(default.max_epochs.iloc[0]),
                # The noise check may resolve another input_dropout_ on some seeds: all are shown.
                "default_p": "/".join(f"{p:g}" for p in sorted(default.input_dropout.unique())), "default_head": head,
                "best_cell": cell_label(*best), "best_head": means[best], "regret_pts": 100 * (means[best] - head),
                "knn5": knn5, "head_minus_knn5_pts": 100 * (head - knn5), "fit_s": default.fit_s.mean(),
            })
    return pd.DataFrame(rows), pd.DataFrame(grid)


def shown(summary):
    """The summary as printed: accuracies to 3 decimals, points and seconds to 1."""
    shown = summary.copy()
    for column in ["default_head", "best_head", "knn5"]:
        shown[column] = shown[column].map("{:.3f}".format)
    for column in ["regret_pts", "head_minus_knn5_pts", "fit_s"]:
        shown[column] = shown[column].map("{:.1f}".format)
    return shown


def main(argv=None):
    args = grid_arguments(
        __doc__.splitlines()[0], argv, sets=SETS, quick_run=QUICK_RUN, full_run=FULL_RUN,
        quick_help=f"{QUICK_EPOCHS} epochs per fit; waveforms and imbalanced, 2-D, seed 0", table="regret.csv",
        files="regret.csv, regret_summary.csv, regret_grid.csv and regret.md",
        switches={"--defaults-only": "fit the defaults alone; with --update, keep the grid of regret.csv"},
    )
    sets = sets_present(args.sets, load)  # each task makes its data again, from the same seeds
    torch.set_num_threads(args.threads)  # in this process too: with --jobs 1 it does the fitting
    out = output_folder(args.output)
    info = machine()
    print(f"machine: {json.dumps(info)}", flush=True)
    path = out / "regret.csv"
    old = pd.read_csv(path) if args.update and path.exists() else pd.DataFrame(columns=COLUMNS)
    done = []
    start = time.perf_counter()
    tasks = [(name, dims, seed) for seed in args.seeds for name in sets for dims in args.dims]
    results = Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
        delayed(measure)(*task, args.quick, args.threads, args.defaults_only) for task in tasks)
    for rows in results:
        done.extend(rows)
        default = rows[0]
        print(f"[{time.perf_counter() - start:.0f} s] {default['data']} {default['dims']}-D seed {default['seed']}: "
              f"default head {default['head_acc']:.3f} in {default['fit_s']:.0f} s, best cell "
              f"{max(row['head_acc'] for row in rows):.3f}", flush=True)
        table = merge(old, pd.DataFrame(done).reindex(columns=COLUMNS), args.defaults_only)
        table["order"] = table.data.map(SETS.index)
        table = table.sort_values(["order", "dims", "seed", "is_default", "input_dropout", "epochs"],
                                  ascending=[True, True, True, False, True, True], kind="stable")
        table.drop(columns="order").to_csv(path, index=False)  # after every task: a stopped run keeps what it did
    table = pd.read_csv(path)
    summary, grid = summarize(table)
    summary.to_csv(out / "regret_summary.csv", index=False)
    grid.to_csv(out / "regret_grid.csv", index=False)
    report = "\n\n".join([
        run_line(command_line("regret", argv), info, load_average())
        + f" {len(done)} fits in {time.perf_counter() - start:.0f} s.",
        markdown(shown(summary), disable_numparse=True), markdown(grid, floatfmt=".3f"),
    ])
    (out / "regret.md").write_text(report + "\n")
    print("", report, sep="\n", flush=True)


if __name__ == "__main__":
    main()
