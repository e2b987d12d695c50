"""Semi-supervised skvae vs a plain VAE + logistic regression, on MNIST.

For each fraction of labeled training samples (1%, 10%, 100% of the
standard 8,000-image training split; the same stratified subset for both
methods), compares:

* skvae: ``DisentangledVAE(unlabeled_label=-1)`` fitted on all 8,000 images,
  the unlabeled ones marked -1; its latent classifier predicts the test set.
* baseline: one plain VAE (``DisentangledVAE().fit(X)``, no labels) fitted on
  all 8,000 images, and a ``LogisticRegression`` fitted on the latent means
  of the labeled subset; it predicts from the test latent means.

Reported on the 2,000 test images: the classifier's accuracy, and two
measures of class separation in the latent space that use the test labels
only: the silhouette score of the test latent means, and the accuracy of a
5-nearest-neighbour classifier on them (5-fold cross-validation within the
test latents). The plain VAE's separation does not depend on the fraction.

Both models use skvae's default hyper-parameters except ``max_epochs`` and
``random_state``; each seed draws its own labeled subset and model
initialisation. Prints a Markdown table.

    python benchmarks/semi_supervised.py [--quick] [--max-epochs 15] [--seeds 3] [--data-home DIR]
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import silhouette_score  # noqa: E402
from sklearn.model_selection import cross_val_score, train_test_split  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

from skvae import DisentangledVAE  # noqa: E402
from skvae.datasets import mnist_standard_split  # noqa: E402

FRACTIONS = (0.01, 0.1, 1.0)
DEFAULT_DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


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
    return silhouette_score(Z, y), knn


def run(X_train, y_train, X_test, y_test, max_epochs, random_state, fit_times):
    """One seed: rows of (skvae acc, silhouette, 5-NN, VAE+LogReg acc, silhouette, 5-NN)."""
    params = {"max_epochs": max_epochs, "random_state": random_state}
    start = time.perf_counter()
    plain = DisentangledVAE(**params).fit(X_train)
    fit_times["plain VAE"].append(time.perf_counter() - start)
    Z_train, Z_test = plain.transform(X_train), plain.transform(X_test)
    plain_separation = separation(Z_test, y_test)

    rows = []
    for fraction in FRACTIONS:
        mask = labeled_mask(y_train, fraction, random_state)
        y_semi = np.where(mask, y_train, -1)
        start = time.perf_counter()
        semi = DisentangledVAE(unlabeled_label=-1, **params).fit(X_train, y_semi)
        fit_times[f"skvae {fraction:.0%}"].append(time.perf_counter() - start)
        logreg = LogisticRegression(max_iter=1000).fit(Z_train[mask], y_train[mask])
        rows.append(
            (
                semi.score(X_test, y_test),
                *separation(semi.transform(X_test), y_test),
                logreg.score(Z_test, y_test),
                *plain_separation,
            )
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 training images, 10 epochs, 1 seed: a smoke test")
    parser.add_argument("--max-epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3, help="random states 0, 1, ...: label subset and model")
    parser.add_argument("--data-home", default=DEFAULT_DATA_HOME, help="folder with the MNIST IDX files")
    args = parser.parse_args()

    torch.set_num_threads(1)
    X_train, X_test, y_train, y_test = mnist_standard_split(args.data_home, download=False)
    max_epochs, seeds = args.max_epochs, range(args.seeds)
    if args.quick:
        X_train, y_train, max_epochs, seeds = X_train[:2000], y_train[:2000], 10, range(1)

    fit_times = {name: [] for name in ["plain VAE", *(f"skvae {f:.0%}" for f in FRACTIONS)]}
    start = time.perf_counter()
    # results[seed, fraction, metric]
    results = np.array([run(X_train, y_train, X_test, y_test, max_epochs, seed, fit_times) for seed in seeds])
    total = time.perf_counter() - start

    print(
        f"MNIST standard split: {len(X_train)} training images, {len(X_test)} test images; "
        f"{max_epochs} epochs; random_state in {list(seeds)}; torch {torch.__version__}, 1 thread"
    )
    print()
    print("| labels (n) | skvae head acc | skvae silhouette | skvae 5-NN acc "
          "| VAE + LogReg acc | VAE silhouette | VAE 5-NN acc |")
    print("|---|---|---|---|---|---|---|")
    for i, fraction in enumerate(FRACTIONS):
        n_labeled = labeled_mask(y_train, fraction, 0).sum()
        cells = []
        for values in results[:, i, :].T:
            cell = f"{values.mean():.3f}"
            if len(values) > 1:
                cell += f" ({values.min():.3f}-{values.max():.3f})"
            cells.append(cell)
        print(f"| {fraction:.0%} ({n_labeled}) | " + " | ".join(cells) + " |")
    print()
    if len(seeds) > 1:
        print("Cells: mean over the seeds (lowest-highest).")
    print("Mean fit times: " + ", ".join(f"{name} {np.mean(t):.0f} s" for name, t in fit_times.items())
          + f"; total {total / 60:.1f} min")
    defaults = DisentangledVAE().get_params()
    shown = ("n_components", "hidden_dims", "classifier_hidden", "reconstruction", "kl", "beta",
             "classification_weight", "warmup_steps", "batch_size", "lr")
    print("Defaults used: " + ", ".join(f"{name}={defaults[name]!r}" for name in shown if name in defaults))


if __name__ == "__main__":
    main()
