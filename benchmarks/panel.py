"""A defaults panel (issue 13): ``DisentangledVAE`` with default parameters only.

    python -m benchmarks.panel                 # the panel of RESULTS.md (~45 min on 2 cores)
    python -m benchmarks.panel --quick         # smoke test: iris + digits, 2-D, seed 0
    python -m benchmarks.panel --datasets mnist8000 --dims 8 --seeds 2 --update   # rerun some rows

Every model is ``DisentangledVAE(n_components=dims, random_state=seed)``:
no per-data-set tuning, ``max_epochs="auto"`` (the resolved training length
is ``max_epochs_``) and ``warmup_steps=0.05``. Data sets:

* ``iris``, ``wine``, ``breast_cancer`` (``sklearn.datasets``) through
  ``make_pipeline(StandardScaler(), DisentangledVAE(...))``, 5-fold
  stratified CV (shuffled, ``random_state=seed``). head, LDA and
  LogisticRegression are the CV means; 5-NN, silhouette, reconstruction,
  raw 5-NN and supervised UMAP are measured on the first fold only, and
  ``n_train`` / ``max_epochs_`` are the first fold's; ``fit_s`` is the mean
  fit time of the 5 folds.
* ``digits`` (``common.load_dataset``: ``skvae.datasets.load_digits``,
  pixels in [0, 1], stratified 80/20 split with ``random_state=0``, the
  same split for every seed).
* ``mnist8000`` (the MNIST standard split: 8,000 training / 2,000 test
  images) and ``mnist1000`` (its first 1,000 training rows, the same 2,000
  test images).
* ``classification`` (``make_classification(n_samples=3000,
  n_features=40, n_informative=30, n_classes=5, random_state=0)``), with
  ``StandardScaler`` in the pipeline, stratified 80/20 split
  (``random_state=0``).

Columns of ``panel.csv`` (one row per data set, dims and seed):

* ``head_acc`` -- test accuracy of the VAE's classifier head (``predict``);
* ``knn5_acc`` -- ``KNeighborsClassifier(5)`` fitted on the training
  latent, scored on the test latent; ``silhouette`` -- ``silhouette_score``
  of the test latent with the true labels;
* ``recon_ratio`` -- mean squared reconstruction error on the test split of
  the VAE over that of a plain VAE (``DisentangledVAE(...).fit(X)`` without
  ``y``, same dims and seed), both in the space the VAE sees (after
  ``StandardScaler`` where there is one, as ``skvae.metrics.reconstruction_scorer``
  measures a pipeline); ``recon_mse`` and ``plain_recon_mse`` are the two errors;
* ``max_epochs_``, ``n_train`` and ``fit_s`` (seconds of ``fit``);
* anchors: ``lda_acc`` (``LinearDiscriminantAnalysis``), ``logreg_acc``
  (``LogisticRegression(max_iter=2000)`` on the raw, scaled features),
  ``raw_knn5_acc`` (5-NN on the raw, scaled features) and supervised UMAP
  (``umap.UMAP(n_components=dims, random_state=seed).fit(X_train,
  y_train)``, 5-NN and silhouette of ``transform(X_test)``:
  ``umap_knn5_acc``, ``umap_silhouette``), left empty when umap-learn is
  not installed or the row is skipped (``--umap-skip``).

Writes ``panel.csv`` (per-run rows), ``panel_summary.csv`` (means over
seeds; min-max of head), ``panel_goals.csv`` (issue 13's goals) to
``--output`` (default ``benchmarks/results``) and prints the summary and the
goals as markdown.
"""

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.common import add_output_argument, load_dataset, machine, markdown, output_folder, timed
from skvae import DisentangledVAE
from skvae.metrics import reconstruction_scorer

CV_DATASETS = ["iris", "wine", "breast_cancer"]
DATASETS = [*CV_DATASETS, "digits", "mnist1000", "mnist8000", "classification"]
SCALED = {*CV_DATASETS, "classification"}  # StandardScaler in front of every model
PIXELS = {"digits", "mnist1000", "mnist8000"}  # raw-pixel 5-NN goal
KEY = ["data", "dims", "seed"]
COLUMNS = [
    *KEY, "n_train", "max_epochs_", "fit_s", "head_acc", "knn5_acc", "silhouette", "recon_ratio", "recon_mse",
    "plain_recon_mse", "lda_acc", "logreg_acc", "raw_knn5_acc", "umap_knn5_acc", "umap_silhouette", "umap_fit_s",
]


def load(name):
    """``(X, y)`` of a CV data set, or ``(X_train, X_test, y_train, y_test)``."""
    import sklearn.datasets

    if name in CV_DATASETS:
        return getattr(sklearn.datasets, f"load_{name}")(return_X_y=True)
    if name == "digits":
        return load_dataset("digits")
    if name.startswith("mnist"):
        X_train, X_test, y_train, y_test = load_dataset("mnist")
        n = int(name[len("mnist"):])
        return X_train[:n], X_test, y_train[:n], y_test
    if name == "classification":
        X, y = sklearn.datasets.make_classification(
            n_samples=3000, n_features=40, n_informative=30, n_classes=5, random_state=0)
        return train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    raise ValueError(f"unknown data set {name!r}")


def with_scaler(name, estimator):
    return make_pipeline(StandardScaler(), estimator) if name in SCALED else make_pipeline(estimator)


def splits(name, data, seed):
    """Train/test splits: the 5 stratified folds, or the one fixed split."""
    if name in CV_DATASETS:
        X, y = data
        folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y)
        return [(X[tr], X[te], y[tr], y[te]) for tr, te in folds]
    return [data]


def anchors(name, folds):
    """LDA, LogReg (means over folds), raw 5-NN and UMAP (first fold)."""
    row = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        row["lda_acc"] = np.mean([with_scaler(name, LinearDiscriminantAnalysis()).fit(Xtr, ytr).score(Xte, yte)
                                  for Xtr, Xte, ytr, yte in folds])
        row["logreg_acc"] = np.mean([with_scaler(name, LogisticRegression(max_iter=2000)).fit(Xtr, ytr)
                                     .score(Xte, yte) for Xtr, Xte, ytr, yte in folds])
    Xtr, Xte, ytr, yte = folds[0]
    row["raw_knn5_acc"] = with_scaler(name, KNeighborsClassifier(5)).fit(Xtr, ytr).score(Xte, yte)
    return row


def umap_row(name, fold, dims, seed):
    """Supervised UMAP's 5-NN accuracy, silhouette and fit time on one fold."""
    import umap

    Xtr, Xte, ytr, yte = fold
    if name in SCALED:
        scaler = StandardScaler().fit(Xtr)
        Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)

    def embed():
        reducer = umap.UMAP(n_components=dims, random_state=seed, n_jobs=1).fit(Xtr, ytr)  # one job anyway, seeded
        return reducer.embedding_, reducer.transform(Xte)

    (Ztr, Zte), seconds = timed(embed)
    return {
        "umap_knn5_acc": KNeighborsClassifier(5).fit(Ztr, ytr).score(Zte, yte),
        "umap_silhouette": silhouette_score(Zte, yte),
        "umap_fit_s": seconds,
    }


def vae_row(name, folds, dims, seed):
    """The VAE's measures: head over all folds, the rest on the first."""
    model = with_scaler(name, DisentangledVAE(n_components=dims, random_state=seed))
    heads, times, first = [], [], None
    for Xtr, Xte, ytr, yte in folds:
        pipe = clone(model)
        times.append(timed(lambda: pipe.fit(Xtr, ytr))[1])
        heads.append(pipe.score(Xte, yte))
        first = pipe if first is None else first
    Xtr, Xte, ytr, yte = folds[0]
    Ztr, Zte = first.transform(Xtr), first.transform(Xte)
    # The plain VAE (fit without y) sees what the pipeline's VAE sees: the data after the scaler, if any.
    plain = with_scaler(name, DisentangledVAE(n_components=dims, random_state=seed)).fit(Xtr)
    row = {
        "n_train": len(Xtr),
        "max_epochs_": first[-1].max_epochs_,
        "fit_s": float(np.mean(times)),
        "head_acc": float(np.mean(heads)),
        "knn5_acc": KNeighborsClassifier(5).fit(Ztr, ytr).score(Zte, yte),
        "silhouette": silhouette_score(Zte, yte),
        "recon_mse": -reconstruction_scorer(first, Xte),
        "plain_recon_mse": -reconstruction_scorer(plain, Xte),
    }
    row["recon_ratio"] = row["recon_mse"] / row["plain_recon_mse"]
    return row


def run(datasets, dims_list, seeds, umap_on, umap_skip, on_row):
    """Measure every row, seed by seed, handing each to ``on_row`` as it is done."""
    cache = {}
    data = {name: load(name) for name in datasets}
    for seed in seeds:
        for name in datasets:
            folds = splits(name, data[name], seed)
            anchor_key = (name, seed) if name in CV_DATASETS else name  # fixed splits: seed-free
            if anchor_key not in cache:
                cache[anchor_key] = anchors(name, folds)
            for dims in dims_list:
                row = dict(data=name, dims=dims, seed=seed, **vae_row(name, folds, dims, seed),
                           **cache[anchor_key])
                if umap_on and f"{name}:{dims}" not in umap_skip:
                    row.update(umap_row(name, folds[0], dims, seed))
                on_row(row)


def fmt(values, digits=3):
    values = values.dropna()
    if values.empty:
        return "-"
    mean = f"{values.mean():.{digits}f}"
    if len(values) > 1 and values.min() != values.max():
        mean += f" ({values.min():.{digits}f}-{values.max():.{digits}f})"
    return mean


def summarize(table):
    """Means over seeds per data set and dims (min-max over seeds for head)."""
    rows = []
    for (name, dims), g in table.groupby(["data", "dims"], sort=False):
        def mean(column, digits=3):
            values = g[column].dropna() if column in g else []
            return f"{np.mean(values):.{digits}f}" if len(values) else "-"

        rows.append({
            "data": name, "dims": dims, "seeds": ",".join(map(str, sorted(g.seed))),
            "n_train": int(g.n_train.iloc[0]), "max_epochs_": int(g.max_epochs_.iloc[0]),
            "head": fmt(g.head_acc), "logreg": mean("logreg_acc"), "lda": mean("lda_acc"),
            "knn5": mean("knn5_acc"), "raw_knn5": mean("raw_knn5_acc"), "umap_knn5": mean("umap_knn5_acc"),
            "silhouette": mean("silhouette"), "umap_silhouette": mean("umap_silhouette"),
            "recon_ratio": mean("recon_ratio"), "fit_s": mean("fit_s", 1),
        })
    return pd.DataFrame(rows)


def goals(table):
    """Issue 13's goals on the means over seeds; ``worst`` is the worst seed's value."""
    checks = []

    def add(name, dims, goal, values, targets):
        values, targets = np.asarray(values, float), np.asarray(targets, float)
        if np.isnan(values).all() or np.isnan(targets).all():
            return
        margin = values - targets
        checks.append({
            "data": name, "dims": dims, "goal": goal, "value": np.nanmean(values), "target": np.nanmean(targets),
            "met": bool(np.nanmean(values) >= np.nanmean(targets) - 1e-12),
            "worst_seed_margin": float(np.nanmin(margin)),
        })

    for (name, dims), g in table.groupby(["data", "dims"], sort=False):
        if name in CV_DATASETS:
            add(name, dims, "head >= LogReg (5-fold) - 0.02", g.head_acc, g.logreg_acc - 0.02)
        if name == "digits":
            add(name, dims, "head >= 0.95", g.head_acc, np.full(len(g), 0.95))
        if name.startswith("mnist") and dims == 2:
            add(name, dims, "head >= 0.93", g.head_acc, np.full(len(g), 0.93))
            add(name, dims, "5-NN >= supervised UMAP 5-NN", g.knn5_acc, g.umap_knn5_acc)
        if name in PIXELS and dims == 8:
            add(name, dims, "head >= raw-pixel 5-NN", g.head_acc, g.raw_knn5_acc)
    return pd.DataFrame(checks, columns=["data", "dims", "goal", "value", "target", "met", "worst_seed_margin"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: iris and digits, 2-D, seed 0 (UMAP only if installed)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=DATASETS)
    parser.add_argument("--dims", nargs="+", type=int, default=[2, 8])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--no-umap", action="store_true", help="no supervised-UMAP anchor")
    parser.add_argument("--umap-skip", nargs="*", default=[], metavar="DATA:DIMS",
                        help="no supervised UMAP for these rows, e.g. mnist8000:8")
    parser.add_argument("--update", action="store_true",
                        help="merge into the existing panel.csv, replacing rows of the same data, dims and seed")
    parser.add_argument("--summarize", action="store_true",
                        help="run nothing: rewrite the summary and goals from the panel.csv in --output")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    add_output_argument(parser, "panel.csv, panel_summary.csv and panel_goals.csv")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.dims, args.seeds = ["iris", "digits"], [2], [0]
    try:
        import umap  # noqa: F401

        umap_on = not args.no_umap
    except ImportError:
        umap_on = False
        print("umap-learn is not installed: no supervised-UMAP anchor", flush=True)
    torch.set_num_threads(args.threads)
    out = output_folder(args.output)
    print(f"machine: {json.dumps(machine())}", flush=True)
    path = out / "panel.csv"
    old = pd.read_csv(path) if args.update and path.exists() else pd.DataFrame(columns=COLUMNS)
    done = []
    start = time.perf_counter()

    def on_row(row):
        done.append(row)
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        print(f"[{time.perf_counter() - start:.0f} s] {json.dumps(shown)}", flush=True)
        new = pd.DataFrame(done).reindex(columns=COLUMNS)
        keep = old[~old.set_index(KEY).index.isin(new.set_index(KEY).index)]
        table = pd.concat([keep, new] if len(keep) else [new], ignore_index=True)
        table["order"] = table.data.map(DATASETS.index)
        table = table.sort_values(["order", "dims", "seed"], kind="stable").drop(columns="order")
        table.to_csv(path, index=False)  # after every row: a stopped run keeps what it did

    if not args.summarize:
        run(args.datasets, args.dims, args.seeds, umap_on, set(args.umap_skip), on_row)
    table = pd.read_csv(path)
    summary, checks = summarize(table), goals(table)
    summary.to_csv(out / "panel_summary.csv", index=False)
    checks.to_csv(out / "panel_goals.csv", index=False)
    print(f"\ntotal {time.perf_counter() - start:.0f} s\n", markdown(summary, disable_numparse=True), "", markdown(checks), sep="\n",
          flush=True)


if __name__ == "__main__":
    main()
