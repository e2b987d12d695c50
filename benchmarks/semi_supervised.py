"""Semi-supervised skvae against scikit-learn's semi-supervised estimators.

For each data set (the 8x8 digits, 1,437 train / 360 test; MNIST, 8,000 /
2,000), each fraction of labeled training rows (1%, 10%, 100%; a stratified
subset drawn per seed), each seed and each latent size (2-D, 8-D), compares
on the test rows:

* skvae: ``DisentangledVAE(n_components, unlabeled_label=-1)`` with its
  defaults, fitted on all training rows, the unlabeled ones marked -1; its
  head predicts. Also reported: the test latent's 5-NN accuracy (5-fold
  cross-validation within the test latents) and silhouette, the test
  reconstruction error relative to the fully labeled (100%) model of the
  same seed and size, and the fit time.
* plain VAE + LogReg: ``DisentangledVAE(n_components).fit(X)`` without
  labels, and a ``LogisticRegression`` on the latent means of the labeled rows.
* LabelSpreading(kernel="knn", n_neighbors=7) and
  SelfTrainingClassifier(SVC(probability=True)) on the pixels, the unlabeled
  rows marked -1 (100%: an SVC on all rows, LabelSpreading is skipped as it
  has nothing to spread);
* LogisticRegression on the pixels of the labeled rows only.

Every result row is appended to a JSON-lines file as it is measured, so an
interrupted run keeps what it measured; the Markdown tables (results and the
issue's goals) are printed at the end, or from the file with ``--report``
(several runs' files concatenated report together).

    python -m benchmarks.semi_supervised [--datasets digits mnist] [--seeds 3] [--first-seed 0] [--quick]
        [--output benchmarks/results/semi_supervised.jsonl] [--report]
"""

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
from sklearn.svm import SVC

from benchmarks.common import RESULTS_DIR, load_dataset, machine, output_folder, timed
from skvae import DisentangledVAE
from skvae.metrics import reconstruction_scorer

FRACTIONS = (0.01, 0.1, 1.0)
DIMS = (2, 8)


def labeled_mask(y, fraction, random_state):
    """Boolean mask of a stratified ``fraction`` of ``y``."""
    if fraction >= 1:
        return np.ones(len(y), dtype=bool)
    index = np.arange(len(y))
    labeled, _ = train_test_split(index, train_size=fraction, stratify=y, random_state=random_state)
    mask = np.zeros(len(y), dtype=bool)
    mask[labeled] = True
    return mask


def separation(Z, y):
    """Silhouette and 5-NN cross-validated accuracy of latent points ``Z``."""
    knn = cross_val_score(KNeighborsClassifier(n_neighbors=5), Z, y, cv=5).mean()
    return float(silhouette_score(Z, y)), float(knn)


def anchors(X_train, y_semi, mask, X_test, y_test):
    """Accuracy and fit time of the scikit-learn estimators on the pixels."""
    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LabelSpreading's 0/0 rows, convergence
        if not mask.all():
            model, seconds = timed(lambda: LabelSpreading(kernel="knn", n_neighbors=7).fit(X_train, y_semi))
            rows["LabelSpreading"] = (model.score(X_test, y_test), seconds)
        svc = SVC(probability=True, random_state=0)
        model, seconds = timed(lambda: SelfTrainingClassifier(svc).fit(X_train, y_semi))
        rows["SelfTraining(SVC)"] = (model.score(X_test, y_test), seconds)
        model, seconds = timed(lambda: LogisticRegression(max_iter=2000).fit(X_train[mask], y_semi[mask]))
        rows["LogReg (labeled pixels)"] = (model.score(X_test, y_test), seconds)
    return rows


def run_seed(dataset, data, seed, max_epochs, write):
    X_train, X_test, y_train, y_test = data
    params = {"random_state": seed} if max_epochs is None else {"random_state": seed, "max_epochs": max_epochs}
    plain = {}
    for dim in DIMS:
        model, seconds = timed(lambda: DisentangledVAE(dim, **params).fit(X_train))
        plain[dim] = (model, seconds)
    full_recon = {}
    # 100% first: the other fractions' reconstruction is relative to it.
    for fraction in sorted(FRACTIONS, reverse=True):
        mask = labeled_mask(y_train, fraction, seed)
        y_semi = np.where(mask, y_train, -1)
        common = {"dataset": dataset, "seed": seed, "fraction": fraction, "n_labeled": int(mask.sum())}
        for name, (acc, seconds) in anchors(X_train, y_semi, mask, X_test, y_test).items():
            write({**common, "method": name, "dim": None, "acc": acc, "fit_s": seconds})
        for dim in DIMS:
            model, seconds = plain[dim]
            Z_test = model.transform(X_test)
            logreg = LogisticRegression(max_iter=2000).fit(model.transform(X_train)[mask], y_train[mask])
            silhouette, knn = separation(Z_test, y_test)
            write({**common, "method": "plain VAE + LogReg", "dim": dim, "acc": logreg.score(Z_test, y_test),
                   "knn": knn, "silhouette": silhouette, "fit_s": seconds})
            est, seconds = timed(lambda: DisentangledVAE(dim, unlabeled_label=-1, **params).fit(X_train, y_semi))
            recon = -reconstruction_scorer(est, X_test)
            full_recon.setdefault(dim, recon)
            silhouette, knn = separation(est.transform(X_test), y_test)
            write({**common, "method": "skvae", "dim": dim, "acc": est.score(X_test, y_test), "knn": knn,
                   "silhouette": silhouette, "recon_ratio": recon / full_recon[dim], "fit_s": seconds})


def cell(values, digits=3):
    values = np.asarray(values, dtype=float)
    text = f"{values.mean():.{digits}f}"
    if len(values) > 1:
        text += f" ({values.min():.{digits}f}-{values.max():.{digits}f})"
    return text


def report(rows):
    """Markdown: one results table per data set, then the goals table."""
    lines = []
    mean = {}
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        lines += [f"### {dataset}", "",
                  "| labels (n) | method | dim | head acc | 5-NN acc | silhouette | recon / 100% model "
                  "| fit s | seeds |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for fraction in FRACTIONS:
            sel = [r for r in rows if r["dataset"] == dataset and r["fraction"] == fraction]
            if not sel:
                continue
            keys = dict.fromkeys((r["method"], r["dim"]) for r in sel)
            for method, dim in keys:
                group = [r for r in sel if r["method"] == method and r["dim"] == dim]
                mean[dataset, fraction, method, dim] = np.mean([r["acc"] for r in group])
                extra = [cell([r[k] for r in group]) if k in group[0] else "-" for k in ("knn", "silhouette")]
                recon = cell([r["recon_ratio"] for r in group]) if "recon_ratio" in group[0] else "-"
                lines.append(
                    f"| {fraction:.0%} ({group[0]['n_labeled']}) | {method} | {dim or '-'} | "
                    f"{cell([r['acc'] for r in group])} | {' | '.join(extra)} | {recon} | "
                    f"{np.mean([r['fit_s'] for r in group]):.1f} | {len(group)} |"
                )
        lines.append("")
    lines += ["### Goals (means over the seeds run: the *seeds* column above)", "",
              "| goal | data | labels | skvae | reference | met |", "|---|---|---|---|---|---|"]

    def goal(text, dataset, fraction, dim, method, ref_dim=None):
        key, ref = (dataset, fraction, "skvae", dim), (dataset, fraction, method, ref_dim)
        if key in mean and ref in mean:
            met = "met" if mean[key] >= mean[ref] else "**missed**"
            lines.append(
                f"| {text} | {dataset} | {fraction:.0%} | {mean[key]:.3f} | {method} {mean[ref]:.3f} | {met} |"
            )

    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for fraction in FRACTIONS:
            goal("8-D head >= LabelSpreading", dataset, fraction, 8, "LabelSpreading")
            goal("2-D head >= plain VAE + LogReg", dataset, fraction, 2, "plain VAE + LogReg", 2)
            if fraction >= 0.1:
                goal("2-D head >= LabelSpreading", dataset, fraction, 2, "LabelSpreading")
    recon = [r for r in rows if r["method"] == "skvae" and r["fraction"] < 1]
    for key in dict.fromkeys((r["dataset"], r["dim"], r["fraction"]) for r in recon):
        ratio = np.mean([r["recon_ratio"] for r in recon if (r["dataset"], r["dim"], r["fraction"]) == key])
        lines.append(
            f"| {key[1]}-D recon within 5% of the 100% model's | {key[0]} | {key[2]:.0%} | ratio {ratio:.3f} | "
            f"1.05 | {'met' if ratio <= 1.05 else '**missed**'} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist"])
    parser.add_argument("--seeds", type=int, default=3, help="number of random states: label subset and model")
    parser.add_argument("--first-seed", type=int, default=0, help="the first random state")
    parser.add_argument("--quick", action="store_true", help="3 epochs, 1 seed: a smoke test")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "semi_supervised.jsonl",
                        help="JSON-lines file of the result rows (default: benchmarks/results/semi_supervised.jsonl)")
    parser.add_argument("--report", action="store_true", help="only print the tables of --output")
    args = parser.parse_args(argv)
    if not args.report:
        torch.set_num_threads(1)
        print(f"machine: {json.dumps(machine())}")
        print("torch on 1 thread; skvae defaults except n_components and random_state", flush=True)
        output_folder(args.output.parent)
        args.output.write_text("")

        def write(row):
            with args.output.open("a") as f:
                f.write(json.dumps(row) + "\n")

        for dataset in args.datasets:
            data = load_dataset(dataset)
            seeds, max_epochs = range(args.first_seed, args.first_seed + args.seeds), None
            if args.quick:
                seeds, max_epochs = range(1), 3
            for seed in seeds:
                run_seed(dataset, data, seed, max_epochs, write)
    rows = [json.loads(line) for line in args.output.read_text().splitlines() if line]
    print()
    print(report(rows))


if __name__ == "__main__":
    main()
