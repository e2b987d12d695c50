"""Reproduce every benchmark number of ``benchmarks/RESULTS.md``.

    python benchmarks/run_all.py                 # everything (hours on 2 cores)
    python benchmarks/run_all.py --quick         # smoke test: digits, tiny epochs
    python benchmarks/run_all.py --only quality --datasets mnist --dims 2 --seeds 0 1

Parts (``--only``, default all):

* ``quality`` -- skvae's defaults against anchors (PCA, LDA, a plain VAE =
  skvae ``fit(X)`` without labels, the original recipe via parameters,
  supervised UMAP when ``umap-learn`` is installed) on the MNIST standard
  split and on digits, at each ``--dims``; measures in ``quality.py``.
* ``ablation`` -- which change bought what: a ``GridSearchCV`` over named
  recipes with skvae's scorers (``ablation.py``).
* ``speed`` -- training throughput vs a hand-written loop (MLP and conv),
  transform / inverse_transform rows/s and peak memory on 100,000 rows,
  fit time per epoch at 1k/4k/8k rows.

Tables are printed as markdown and written, with the machine description,
to ``--output`` (default ``benchmarks/results``): ``quality.csv``,
``ablation.csv``, ``speed.csv`` and ``report.md``.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import quality  # noqa: E402

#: Parameters that give back the original recipe (before issue 5).
ORIGINAL_RECIPE = dict(
    reconstruction="mse",
    kl="abs",
    class_spacing=None,
    classification_weight=None,  # filled in by original_recipe()
    warmup_steps=100,
    classifier_hidden=(10, 10),
)

QUALITY_COLUMNS = [
    "dataset", "dims", "method", "seed", "head_acc", "head_drop", "knn5_acc", "silhouette",
    "recon_mse", "generation_acc", "border_share", "fit_s",
]
DEFAULT_EPOCHS = {"mnist": 30, "digits": 300}


def original_recipe():
    """The recipe of the first release, reachable by parameters."""
    from skvae.schedules import SigmoidDecay

    params = dict(ORIGINAL_RECIPE)
    params["classification_weight"] = SigmoidDecay(start=100.0, end=0.01, midpoint=0.5, steepness=10.0)
    return params


def machine():
    return {
        "date": datetime.date.today().isoformat(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def judge_for(name, data, cache):
    if name not in cache:
        start = time.perf_counter()
        cache[name] = quality.fit_judge(data[0], data[2])
        acc = cache[name].score(data[1], data[3])
        print(f"[{name}] judge (MLPClassifier on pixels): test acc {acc:.3f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    return cache[name]


def quality_rows(dataset, dims, seeds, epochs, judge, data, use_umap=True):
    """Rows of the quality table for one dataset and latent dimension."""
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from skvae import DisentangledVAE

    rows = []

    def add(method, seed, row):
        row = dict(row, dataset=dataset, dims=dims, method=method, seed=seed)
        row.pop("head_trace", None)
        rows.append(row)
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        print(json.dumps(shown), flush=True)

    X_train, _, y_train, _ = data
    pca = PCA(dims, random_state=0).fit(X_train)
    add("PCA", "-", quality.evaluate(pca.transform, pca.inverse_transform, data, judge))
    n_lda = min(dims, len(np.unique(y_train)) - 1)
    lda = LinearDiscriminantAnalysis(n_components=n_lda).fit(X_train, y_train)
    add(f"LDA({n_lda})" if n_lda != dims else "LDA", "-",
        quality.evaluate(lda.transform, None, data, judge, lda.predict))
    if use_umap:
        try:
            import umap
        except ImportError:
            print("umap-learn not installed: no supervised UMAP row", flush=True)
        else:
            start = time.perf_counter()
            reducer = umap.UMAP(n_components=dims, random_state=0, n_jobs=1).fit(X_train, y_train)
            row = quality.evaluate(reducer.transform, reducer.inverse_transform, data, judge)
            row["fit_s"] = time.perf_counter() - start
            add("supervised UMAP", 0, row)
    for seed in seeds:
        common = dict(n_components=dims, max_epochs=epochs, random_state=seed)
        row, _ = quality.evaluate_vae(DisentangledVAE(**common), data, judge, supervised=False)
        add("plain VAE (fit(X))", seed, row)
        row, _ = quality.evaluate_vae(DisentangledVAE(**common, **original_recipe()), data, judge)
        add("original recipe", seed, row)
        row, _ = quality.evaluate_vae(DisentangledVAE(**common), data, judge)
        add("skvae defaults", seed, row)
    return rows


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


def markdown(df, floatfmt=".3f"):
    try:
        return df.to_markdown(index=False, floatfmt=floatfmt)
    except ImportError:  # tabulate missing
        return df.to_string(index=False)


def summarize(table):
    """Mean (min-max over seeds) per dataset, dims and method."""
    metrics = [c for c in QUALITY_COLUMNS[4:] if c in table]
    rows = []
    for (dataset, dims, method), group in table.groupby(["dataset", "dims", "method"], sort=False):
        row = dict(dataset=dataset, dims=dims, method=method,
                   seeds=",".join(str(s) for s in group.seed))
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
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs-mnist", type=int, default=DEFAULT_EPOCHS["mnist"])
    parser.add_argument("--epochs-digits", type=int, default=DEFAULT_EPOCHS["digits"])
    parser.add_argument("--no-umap", action="store_true", help="skip supervised UMAP")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--output", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.dims, args.seeds = ["digits"], [2], [0]
        args.epochs_digits = 2
        args.no_umap = True
    torch.set_num_threads(args.threads)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    report = [f"# skvae benchmarks\n\nmachine: `{json.dumps(info)}`\n\ncommand: "
              f"`python benchmarks/run_all.py {' '.join(sys.argv[1:] if argv is None else argv)}`\n"]
    epochs = {"mnist": args.epochs_mnist, "digits": args.epochs_digits}
    judges = {}
    datasets = {name: quality.load_dataset(name) for name in args.datasets}

    if "quality" in args.only:
        rows = []
        for name, data in datasets.items():
            judge = judge_for(name, data, judges)
            for dims in args.dims:
                rows += quality_rows(name, dims, args.seeds, epochs[name], judge, data,
                                     use_umap=not args.no_umap)
        table = pd.DataFrame(rows)[QUALITY_COLUMNS]
        table.to_csv(out / "quality.csv", index=False)
        summary = summarize(table)
        checks = goals(table)
        checks.to_csv(out / "goals.csv", index=False)
        report += ["## Quality\n", markdown(summary), "\n## Goals (skvae defaults)\n", markdown(checks)]
        print(markdown(summary), "\n", markdown(checks), sep="\n", flush=True)

    if "ablation" in args.only:
        import ablation

        for name, data in datasets.items():
            judge = judge_for(name, data, judges)
            table = ablation.run(data, judge, dims=2, epochs=epochs[name], quick=args.quick)
            table.insert(0, "dataset", name)
            table.to_csv(out / f"ablation_{name}.csv", index=False)
            report += [f"\n## Ablation ({name}, 2-D, GridSearchCV on a train/validation split)\n",
                       markdown(table)]
            print(markdown(table), flush=True)

    if "speed" in args.only:
        import speed

        table = speed.run(quick=args.quick)
        table.to_csv(out / "speed.csv", index=False)
        report += ["\n## Speed\n", markdown(table, floatfmt=",.2f")]
        print(markdown(table, floatfmt=",.2f"), flush=True)

    (out / "report.md").write_text("\n".join(report) + "\n")
    print(f"wrote {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
