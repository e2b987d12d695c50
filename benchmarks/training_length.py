"""Training length where the head arranges the classes itself (issue 24).

    python -m benchmarks.training_length --jobs 2           # 2-D, 11 sets, seeds 0-2 (~50 min on 2 free cores)
    python -m benchmarks.training_length --quick            # smoke test: waveforms, 2 and 3 epochs

``max_epochs="auto"`` trains 1.5 times longer where the latent classifier's
classes get no fixed centres (``class_prior_means_`` is None: 10 classes in
2-D). This fits, on each set, seed and latent dimension, the default
(``DisentangledVAE(n_components=dims, random_state=seed)``) and the same
model at the length the rule gave before, ``auto_max_epochs(n, batch_size)``
(``"1x"``), on the same split, and reports the head accuracy of both.

Sets: ``mnist`` (the standard 8,000 / 2,000 split), the seven of
:mod:`benchmarks.regret` (the rule was chosen on those: its table showed
twice the epochs winning 13 of its 16 rows), and three generated here that
played no part in choosing it:

* ``signals6`` -- ``make_waveforms(3000, n_features=40, n_classes=6,
  noise=0.8)``, 2,000 / 1,000, *scaled*;
* ``tab8`` -- ``make_classification(n_samples=3000, n_features=30,
  n_informative=12, n_classes=8)``, 2,000 / 1,000, *scaled*;
* ``glyphs24`` -- ``make_glyphs(4000, image_size=24, n_classes=12)``,
  3,000 / 1,000.

Writes ``training_length.csv`` (one row per fit: data, dims, seed, length --
``1x`` or ``default`` --, ``max_epochs``, ``fit_s``, ``head_acc``,
``head_balanced_acc``) and ``training_length_summary.csv`` (per set and
dims: both heads' means over seeds and the gain in points) to ``--output``
(default ``benchmarks/results``). The MNIST sets are skipped with a message
where MNIST is not stored.
"""

import argparse

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from sklearn.datasets import make_classification
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks import regret
from benchmarks.common import MnistMissing, add_output_argument, load_dataset, markdown, output_folder
from skvae import DisentangledVAE
from skvae.datasets import make_glyphs, make_waveforms
from skvae.estimator import auto_max_epochs

CONFIRMATION_SETS = ["signals6", "tab8", "glyphs24"]
SETS = ["mnist"] + regret.SETS + CONFIRMATION_SETS
SCALED = regret.SCALED | {"signals6", "tab8"}


def load(name):
    """``(X_train, X_test, y_train, y_test)`` of set ``name``; raises ``MnistMissing`` without MNIST."""
    if name == "mnist":
        return load_dataset("mnist")
    if name == "signals6":
        X, y = make_waveforms(3000, n_features=40, n_classes=6, noise=0.8, random_state=5)
        return regret.split(X, y, test_size=1000)
    if name == "tab8":
        X, y = make_classification(n_samples=3000, n_features=30, n_informative=12, n_classes=8, random_state=5)
        return regret.split(X, y, test_size=1000)
    if name == "glyphs24":
        return regret.split(*make_glyphs(4000, image_size=24, n_classes=12, random_state=5), test_size=1000)
    return regret.load(name)


def measure(name, dims, seed, quick):
    """The default and the rule's former length, on one set, dims and seed."""
    torch.set_num_threads(1)
    try:
        data = load(name)
    except MnistMissing as exc:
        print(f"{name}: skipped ({exc})")
        return []
    X_train = data[0]
    rows = []
    for length in ("1x", "default"):
        if quick:
            params = {"max_epochs": 2 if length == "1x" else 3}
        else:
            params = {"max_epochs": auto_max_epochs(len(X_train), 256)} if length == "1x" else {}
        vae = DisentangledVAE(n_components=dims, random_state=seed, **params)
        pipe = make_pipeline(StandardScaler(), vae) if name in SCALED else make_pipeline(vae)
        rows.append(dict(data=name, dims=dims, seed=seed, length=length, **regret.fit_and_score(pipe, data)))
    return rows


def summarize(table):
    heads = table.pivot_table(index=["data", "dims"], columns="length", values="head_acc", sort=False)
    epochs = table.pivot_table(index=["data", "dims"], columns="length", values="max_epochs", sort=False).round().astype(int)
    seeds = table.groupby(["data", "dims"], sort=False).seed.apply(lambda s: ",".join(map(str, sorted(set(s)))))
    summary = pd.DataFrame({
        "seeds": seeds,
        "epochs_1x": epochs["1x"], "epochs_default": epochs["default"],
        "head_1x": heads["1x"], "head_default": heads["default"],
        "gain_pts": 100 * (heads["default"] - heads["1x"]),
    })
    return summary.reset_index()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", choices=SETS, help="default: all")
    parser.add_argument("--dims", nargs="+", type=int, default=[2])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="fits in parallel, one torch thread each")
    parser.add_argument("--quick", action="store_true", help="waveforms, 2-D, seed 0, 2 and 3 epochs")
    add_output_argument(parser, "training_length.csv and training_length_summary.csv")
    args = parser.parse_args(argv)
    sets, dims, seeds = (["waveforms"], [2], [0]) if args.quick else (args.sets or SETS, args.dims, args.seeds)
    runs = [(name, d, seed) for name in sets for d in dims for seed in seeds]
    results = Parallel(n_jobs=args.jobs)(delayed(measure)(*run, args.quick) for run in runs)
    table = pd.DataFrame([row for rows in results for row in rows])
    if table.empty:
        print("No set could be measured.")
        return
    out = output_folder(args.output)
    table.to_csv(out / "training_length.csv", index=False)
    summary = summarize(table)
    summary.to_csv(out / "training_length_summary.csv", index=False)
    print(markdown(summary, floatfmt=".3f"))
    gains = summary.gain_pts.to_numpy()
    print(f"\nmean gain {np.mean(gains):.2f} points; {int((gains > 0).sum())} of {len(gains)} rows gain")


if __name__ == "__main__":
    main()
