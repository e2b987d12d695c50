"""Borders on request (issue 15): ``class_neighbors`` judged independently.

    python -m benchmarks.borders                      # RESULTS.md "Borders on request" (~25 min on 2 cores)
    python -m benchmarks.borders --quick              # smoke test: digits, seed 0, 10 epochs
    python -m benchmarks.borders --pairs 0-8 1-7 3-6  # other requests

For each data set (``digits``, ``mnist``: ``common.load_dataset``) and
seed, two 2-D models with default parameters: without a request (``none``),
and with ``class_neighbors`` = the pairs (default: 0 and 8, the mix the
original experiment asked for). Both are judged on the same pairs. The
judge is ``quality.fit_judge``, an ``MLPClassifier`` on the pixels that
never sees the VAE. Columns:

* ``met`` -- share of the pairs whose straight latent path
  between the two class means (training latents, 21 decoded points) the
  judge labels only as one of the two classes; ``path_<a>-<b>`` is the
  judge's label at each of the 21 points;
* ``border_share`` -- the same test over all class pairs
  (``quality.border_share``): requesting borders should not cost others;
* ``head_acc`` -- test accuracy of the latent classifier; ``recon_mse`` --
  test reconstruction error per pixel; ``fit_s`` -- seconds of ``fit``.

Writes ``borders.csv`` to ``--output`` (default ``benchmarks/results``) and
prints it with the means per data set and request as markdown.
"""

import argparse

import numpy as np
import pandas as pd
import torch

from benchmarks import quality
from benchmarks.common import add_output_argument, load_dataset, markdown, output_folder, timed
from skvae import DisentangledVAE
from skvae.metrics import reconstruction_scorer


def run_one(data, judge, pairs, request, seed, **params):
    """One fitted model's row; ``pairs`` are judged, ``request`` (a bool) says
    whether the model was asked for them."""
    X_train, X_test, y_train, y_test = data
    model = DisentangledVAE(class_neighbors=pairs if request else None, random_state=seed, **params)
    _, fit_s = timed(lambda: model.fit(X_train, y_train))
    Z = model.transform(X_train)
    row = {
        "head_acc": model.score(X_test, y_test),
        "recon_mse": -reconstruction_scorer(model, X_test),
        "border_share": quality.border_share(Z, y_train, model.inverse_transform, judge),
        "fit_s": fit_s,
    }
    met = []
    for (a, b), labels in zip(pairs, quality.judged_paths(Z, y_train, model.inverse_transform, judge, pairs)):
        row[f"path_{a}-{b}"] = " ".join(str(label) for label in labels)
        met.append(np.isin(labels, [a, b]).all())
    return row, met


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: digits, seed 0, 10 epochs, a quick judge")
    parser.add_argument("--datasets", nargs="+", choices=["digits", "mnist"], default=["digits", "mnist"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--pairs", nargs="+", default=["0-8"], metavar="A-B", help="requested pairs (default 0-8)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    add_output_argument(parser, "borders.csv")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.seeds = ["digits"], [0]
    torch.set_num_threads(args.threads)
    pairs = [tuple(int(label) for label in pair.split("-")) for pair in args.pairs]
    out = output_folder(args.output)
    rows = []
    for name in args.datasets:
        data = load_dataset(name)
        judge = quality.fit_judge(data[0], data[2], quick=args.quick)
        for seed in args.seeds:
            for request in (False, True):
                row, met = run_one(data, judge, pairs, request, seed, **({"max_epochs": 10} if args.quick else {}))
                rows.append({"data": name, "seed": seed, "request": " ".join(args.pairs) if request else "none",
                             "met": np.mean(met), **row})
                print({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
                pd.DataFrame(rows).to_csv(out / "borders.csv", index=False)
    table = pd.DataFrame(rows)
    means = table.groupby(["data", "request"], sort=False)[["met", "border_share", "head_acc", "recon_mse", "fit_s"]]
    print(markdown(table), "", markdown(means.mean().reset_index()), sep="\n")


if __name__ == "__main__":
    main()
