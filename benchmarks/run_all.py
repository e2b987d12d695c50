"""Quality, ablation and speed: the benchmarks of issue 5 (see ``benchmarks/RESULTS.md``).

    python -m benchmarks.run_all                 # everything (hours on 2 cores)
    python -m benchmarks.run_all --quick         # smoke test: digits, tiny epochs
    python -m benchmarks.run_all --only quality --datasets mnist --dims 2 \
        --methods "skvae defaults" --update   # rerun some rows of quality.csv

Parts (``--only``, default all):

* ``quality`` -- skvae's defaults against anchors (PCA, LDA, a plain VAE =
  skvae ``fit(X)`` without labels, the original recipe via parameters,
  supervised UMAP when ``umap-learn`` is installed) on the MNIST standard
  split and on digits, at each ``--dims``; measures in ``quality.py``.
* ``ablation`` -- which change bought what: a ``GridSearchCV`` over named
  recipes with skvae's scorers (``ablation.py``).
* ``speed`` -- training throughput vs a hand-written loop (MLP and conv),
  transform / inverse_transform rows/s and peak memory on 100,000 rows,
  fit time per epoch at 1k/4k/8k rows (``speed.py``).

Tables are printed as markdown and written, with the machine description,
to ``--output`` (default ``benchmarks/results``): ``quality.csv``,
``goals.csv``, ``ablation_<dataset>_<dims>d.csv``, ``speed.csv`` and
``report.md``.
"""

import argparse
import json

import numpy as np
import pandas as pd
import torch

from benchmarks import ablation, quality, speed
from benchmarks.common import (
    add_output_argument, command_line, load_average, load_dataset, machine, markdown, output_folder, run_line,
    timed,
)

ROW_KEY = ["dataset", "dims", "method", "seed"]  # one quality row per key
QUALITY_METRICS = ["head_acc", "head_drop", "knn5_acc", "silhouette", "recon_mse", "generation_acc",
                   "border_share", "fit_s"]
QUALITY_COLUMNS = [*ROW_KEY, "epochs", *QUALITY_METRICS]
# 60 epochs on MNIST (issue 5 lets the benchmark choose max_epochs; every
# VAE method gets the same); digits has 12 steps per epoch, hence 100.
DEFAULT_EPOCHS = {"mnist": 60, "digits": 100}
VAE_METHODS = ("skvae defaults", "original recipe", "plain VAE (fit(X))")


def judge_for(name, data, cache, quick=False):
    """The judge of data set ``name``, fitted once and kept in ``cache``."""
    if name not in cache:
        cache[name], seconds = timed(lambda: quality.fit_judge(data[0], data[2], quick=quick))
        acc = cache[name].score(data[1], data[3])
        print(f"[{name}] judge (MLPClassifier on pixels): test acc {acc:.3f} ({seconds:.0f} s)", flush=True)
    return cache[name]


def quality_task(dataset, dims, method, seed, epochs, judge, threads=1):
    """One row of the quality table (runs in a worker process)."""
    torch.set_num_threads(threads)
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from skvae import DisentangledVAE

    data = load_dataset(dataset)
    X_train, _, y_train, _ = data

    def measure():
        if method == "PCA":
            pca = PCA(dims, random_state=0).fit(X_train)
            return quality.evaluate(pca.transform, pca.inverse_transform, data, judge)
        if method.startswith("LDA"):
            n_lda = min(dims, len(np.unique(y_train)) - 1)
            lda = LinearDiscriminantAnalysis(n_components=n_lda).fit(X_train, y_train)
            return quality.evaluate(lda.transform, None, data, judge, lda.predict)
        if method == "supervised UMAP":
            import umap

            reducer = umap.UMAP(n_components=dims, random_state=seed, n_jobs=1).fit(X_train, y_train)
            return quality.evaluate(reducer.transform, reducer.inverse_transform, data, judge)
        common = dict(n_components=dims, max_epochs=epochs, random_state=seed)
        if method == "plain VAE (fit(X))":
            return quality.evaluate_vae(DisentangledVAE(**common), data, judge, supervised=False)
        if method == "original recipe":
            return quality.evaluate_vae(DisentangledVAE(**common, **quality.original_recipe()), data, judge)
        if method == "skvae defaults":
            return quality.evaluate_vae(DisentangledVAE(**common), data, judge)
        raise ValueError(method)

    row, seconds = timed(measure)
    row.setdefault("fit_s", seconds)  # the VAEs' own: fit alone
    row["epochs"] = epochs if method in VAE_METHODS else None
    row = dict(row, dataset=dataset, dims=dims, method=method, seed=seed)
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
    print(json.dumps(shown), flush=True)
    return row


def quality_tasks(datasets, dims_list, seeds, umap_dims, methods=None):
    """(dataset, dims, method, seed) of every row, slowest first.

    ``methods`` keeps only those methods ("LDA" also selects "LDA(9)").
    """
    tasks = []
    for dataset in datasets:
        for dims in dims_list:
            for seed in seeds:
                for method in VAE_METHODS:
                    tasks.append((dataset, dims, method, seed))
            if dims in umap_dims:
                tasks.append((dataset, dims, "supervised UMAP", 0))
            lda = "LDA" if dims <= 9 else "LDA(9)"
            tasks += [(dataset, dims, "PCA", "-"), (dataset, dims, lda, "-")]
    if methods is not None:
        tasks = [t for t in tasks if t[2] in methods or (t[2] == "LDA(9)" and "LDA" in methods)]
    return tasks


def merge_rows(previous, new):
    """``previous`` rows whose (dataset, dims, method, seed) was not rerun, plus ``new``."""
    previous = previous.astype({"seed": str})
    new = new.astype({"seed": str})
    rerun = previous.set_index(ROW_KEY).index.isin(new.set_index(ROW_KEY).index)
    return pd.concat([previous[~rerun], new], ignore_index=True)


METHOD_ORDER = ["PCA", "LDA", "LDA(9)", "supervised UMAP", "plain VAE (fit(X))", "original recipe",
                "skvae defaults"]


def goals(table):
    """Goal checks of issue 5 for the defaults' rows."""
    out = []
    for (dataset, dims), group in table.groupby(["dataset", "dims"]):
        ours = group[group.method == "skvae defaults"]
        plain = group[group.method == "plain VAE (fit(X))"]
        if ours.empty:
            continue
        recon_ratio = ours.recon_mse.mean() / plain.recon_mse.mean() if len(plain) else np.nan
        border_goal = 0.4 if dims <= 2 else 0.8
        checks = {
            "head_acc >= 0.93": ours.head_acc.min() >= 0.93,
            "head_drop <= 0.01": ours.head_drop.max() <= 0.01,
            "silhouette >= 0.5": ours.silhouette.min() >= 0.5,
            "generation_acc >= 0.95": ours.generation_acc.min() >= 0.95,
            f"border_share >= {border_goal}": ours.border_share.min() >= border_goal,
            "recon <= 1.05 x plain": recon_ratio <= 1.05,
        }
        for goal, ok in checks.items():
            out.append(dict(dataset=dataset, dims=dims, goal=goal, met=bool(ok),
                            worst=_worst(goal, ours, recon_ratio)))
    return pd.DataFrame(out)


def _worst(goal, ours, recon_ratio):
    if goal.startswith("recon"):
        return round(float(recon_ratio), 3)
    column = goal.split()[0]
    values = ours[column]
    return round(float(values.max() if column == "head_drop" else values.min()), 4)


def summarize(table):
    """Mean (min-max over seeds) per dataset, dims and method."""
    metrics = [c for c in QUALITY_METRICS if c in table]
    rows = []
    for (dataset, dims, method), group in table.groupby(["dataset", "dims", "method"], sort=False):
        row = dict(dataset=dataset, dims=dims, method=method,
                   seeds=",".join(str(s) for s in group.seed),
                   epochs=",".join(str(e) for e in sorted({int(e) for e in group.epochs.dropna()})) or "-")
        for m in metrics:
            values = group[m].astype(float)
            if values.isna().all():
                row[m] = "-"
            elif len(values) == 1 or values.min() == values.max():
                row[m] = f"{values.mean():.3f}"
            else:
                row[m] = f"{values.mean():.3f} ({values.min():.3f}-{values.max():.3f})"
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: digits, 2-D, 1 seed, 2 epochs, quick speed checks")
    parser.add_argument("--only", nargs="+", choices=["quality", "ablation", "speed"],
                        default=["quality", "ablation", "speed"])
    parser.add_argument("--datasets", nargs="+", choices=["mnist", "digits"], default=["mnist", "digits"])
    parser.add_argument("--dims", nargs="+", type=int, default=[2, 8, 16])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs-mnist", type=int, default=DEFAULT_EPOCHS["mnist"])
    parser.add_argument("--epochs-digits", type=int, default=DEFAULT_EPOCHS["digits"])
    parser.add_argument("--ablation-dims", nargs="+", type=int, default=[2, 8, 16],
                        help="latent dimensions of the ablation (default 2 8 16)")
    parser.add_argument("--umap-dims", nargs="*", type=int, default=[2],
                        help="latent dimensions with a supervised UMAP row (default 2; none: no UMAP)")
    parser.add_argument("--methods", nargs="+", choices=[m for m in METHOD_ORDER if m != "LDA(9)"],
                        help="quality rows of these methods only (default: all)")
    parser.add_argument("--update", action="store_true",
                        help="merge the quality rows into the existing quality.csv, replacing rows "
                             "of the same dataset, dims, method and seed, instead of overwriting it")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel fits (default 2)")
    add_output_argument(parser, "the CSV tables and report.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.dims, args.seeds = ["digits"], [2], [0]
        args.epochs_digits = 2
        args.umap_dims = []
        args.ablation_dims = [2]
        args.jobs = 1
    torch.set_num_threads(args.threads)
    out = output_folder(args.output)
    info = machine()
    epochs = {"mnist": args.epochs_mnist, "digits": args.epochs_digits}
    judges = {}
    datasets = {name: load_dataset(name) for name in args.datasets}
    report = []

    if "quality" in args.only:
        from joblib import Parallel, delayed

        for name, data in datasets.items():
            judge_for(name, data, judges, args.quick)
        tasks = quality_tasks(args.datasets, args.dims, args.seeds, args.umap_dims, args.methods)
        rows = Parallel(n_jobs=args.jobs)(
            delayed(quality_task)(dataset, dims, method, seed, epochs[dataset], judges[dataset], args.threads)
            for dataset, dims, method, seed in tasks
        )
        table = pd.DataFrame(rows).reindex(columns=QUALITY_COLUMNS)
        if args.update and (out / "quality.csv").exists():
            table = merge_rows(pd.read_csv(out / "quality.csv", dtype={"seed": str}), table)
        table["order"] = table.method.map(METHOD_ORDER.index)
        table = table.sort_values(["dataset", "dims", "order", "seed"], kind="stable").drop(columns="order")
        table.to_csv(out / "quality.csv", index=False)
        summary = summarize(table)
        checks = goals(table)
        checks.to_csv(out / "goals.csv", index=False)
        report += ["## Quality\n", markdown(summary), "\n## Goals (skvae defaults)\n", markdown(checks)]
        print(markdown(summary), "\n", markdown(checks), sep="\n", flush=True)

    if "ablation" in args.only:
        for name, data in datasets.items():
            judge = judge_for(name, data, judges, args.quick)
            for dims in args.ablation_dims:
                table = ablation.run(data, judge, dims=dims, epochs=epochs[name], n_jobs=args.jobs)
                table.insert(0, "dataset", name)
                table.insert(1, "dims", dims)
                table.to_csv(out / f"ablation_{name}_{dims}d.csv", index=False)
                report += [f"\n## Ablation ({name}, {dims}-D, GridSearchCV on a train/validation split)\n",
                           markdown(table)]
                print(markdown(table), flush=True)

    if "speed" in args.only:
        table = speed.run(quick=args.quick, threads=args.threads)
        table.to_csv(out / "speed.csv", index=False)
        report += ["\n## Speed\n", markdown(table, floatfmt=",.2f")]
        print(markdown(table, floatfmt=",.2f"), flush=True)

    header = ["# skvae benchmarks\n", run_line(command_line("run_all", argv), info, load_average()) + "\n"]
    (out / "report.md").write_text("\n".join(header + report) + "\n")
    print(f"wrote {out / 'report.md'}")


if __name__ == "__main__":
    main()
