"""The convolutional encoder against the MLP on image data (issue 24).

    python -m benchmarks.architecture --jobs 2    # 4 image sets, 2-D and 8-D, seeds 0-2 (~40 min on 2 free cores)
    python -m benchmarks.architecture --quick     # smoke test: glyphs16, 2-D, seed 0, 2 epochs
    python -m benchmarks.architecture --sets mnist14 --dims 2 --seeds 0 --update   # rerun some rows

``architecture="auto"`` gives data whose ``image_shape`` is set the
convolutional encoder where the images are at least 14 pixels high and
wide. On each image set, latent dimension and seed this fits
``DisentangledVAE(n_components=dims, random_state=seed, image_shape=shape,
architecture=a)`` for ``a`` in ``"conv"`` and ``"mlp"``, one after the
other in the same process (so that their time ratio shares the load), and
reports each one's head accuracy, the 5-NN accuracy of its latent space
(``KNeighborsClassifier(5)`` fitted on ``transform(X_train)``) and fit
time, and which of the two ``"auto"`` picks (``auto``). Every other
parameter is the default, the noise check of ``input_dropout="auto"``
included.

Sets, as in ``benchmarks.regret`` (split once with ``random_state=0``):
``glyphs16`` (16x16 drawn shapes, 4,000 / 1,000), ``mnist_perturbed``
(MNIST's standard split, shifted, rotated and stroke-noised), ``mnist14``
(mean-pooled to 14x14), ``mnist`` (the standard split, 8,000 / 2,000) and
``digits`` (8x8, 1,437 / 360: below the size where ``"auto"`` picks conv).
The MNIST sets are skipped with a message where MNIST is not stored.

Writes ``architecture.csv`` (one row per fit) and ``architecture.md`` (means
over seeds: heads, 5-NN, the conv-minus-MLP difference in points and the
fit-time ratio) to ``--output`` (default ``benchmarks/results``).
"""

import json
import time

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from sklearn.neighbors import KNeighborsClassifier

from benchmarks.common import (
    command_line, grid_arguments, load_average, load_dataset, machine, markdown, output_folder,
    run_line, sets_present, timed,
)
from benchmarks.regret import load as load_regret_set
from skvae import DisentangledVAE
from skvae._build import resolve_architecture

#: (channels, height, width), as the estimator resolves image_shape.
SHAPES = {"glyphs16": (1, 16, 16), "mnist_perturbed": (1, 28, 28), "mnist14": (1, 14, 14), "mnist": (1, 28, 28),
          "digits": (1, 8, 8)}
ARCHITECTURES = ["conv", "mlp"]
QUICK_EPOCHS = 2
FULL_RUN = {"sets": list(SHAPES), "dims": [2, 8], "seeds": [0, 1, 2]}
QUICK_RUN = {"sets": ["glyphs16"], "dims": [2], "seeds": [0]}


def load(name):
    return load_dataset(name) if name in ("mnist", "digits") else load_regret_set(name)


def measure(name, dims, seed, quick, threads):
    """The conv and the MLP fit of one set, dims and seed."""
    torch.set_num_threads(threads)
    X_train, X_test, y_train, y_test = load(name)
    rows = []
    for architecture in ARCHITECTURES:
        params = {"max_epochs": QUICK_EPOCHS} if quick else {}
        vae = DisentangledVAE(n_components=dims, random_state=seed, image_shape=SHAPES[name],
                              architecture=architecture, **params)
        _, fit_s = timed(lambda vae=vae: vae.fit(X_train, y_train))
        knn = KNeighborsClassifier(5).fit(vae.transform(X_train), y_train)
        rows.append({
            "data": name, "dims": dims, "seed": seed, "architecture": vae.architecture_,
            "is_auto": architecture == resolve_architecture("auto", SHAPES[name]), "input_dropout": vae.input_dropout_,
            "max_epochs": vae.max_epochs_, "fit_s": fit_s, "head_acc": vae.score(X_test, y_test),
            "knn5_acc": knn.score(vae.transform(X_test), y_test),
        })
    return rows


def merged(old, new):
    """``new`` rows, and those of ``old`` (or None) whose data, dims and seed ``new`` does not have."""
    if old is None:
        return new
    key = ["data", "dims", "seed"]
    keep = old[~old.set_index(key).index.isin(new.set_index(key).index)]
    return pd.concat([keep, new], ignore_index=True)


def summarize(table):
    """Per set and dims, means over seeds: both heads and 5-NNs, the difference and the time ratio."""
    rows = []
    for (name, dims), g in table.groupby(["data", "dims"], sort=False):
        by = {arch: g[g.architecture == arch].set_index("seed").sort_index() for arch in ARCHITECTURES}
        conv, mlp = by["conv"], by["mlp"]
        rows.append({
            "data": name, "dims": dims, "seeds": ",".join(map(str, conv.index)),
            "auto": resolve_architecture("auto", SHAPES[name]),
            "conv_head": conv.head_acc.mean(), "mlp_head": mlp.head_acc.mean(),
            "head_diff_pts": 100 * (conv.head_acc - mlp.head_acc).mean(),
            "worst_seed_diff_pts": 100 * (conv.head_acc - mlp.head_acc).min(),
            "conv_knn5": conv.knn5_acc.mean(), "mlp_knn5": mlp.knn5_acc.mean(),
            "conv_head_minus_knn5_pts": 100 * (conv.head_acc - conv.knn5_acc).mean(),
            "conv_fit_s": conv.fit_s.mean(), "mlp_fit_s": mlp.fit_s.mean(),
            "time_ratio": float(np.exp(np.log(conv.fit_s / mlp.fit_s).mean())),
        })
    return pd.DataFrame(rows)


def main(argv=None):
    args = grid_arguments(
        __doc__.splitlines()[0], argv, sets=list(SHAPES), quick_run=QUICK_RUN, full_run=FULL_RUN,
        quick_help=f"{QUICK_EPOCHS} epochs per fit; glyphs16, 2-D, seed 0", table="architecture.csv", files="architecture.csv and architecture.md",
    )
    sets = sets_present(args.sets, load)  # each task makes its data again, from the same seeds
    torch.set_num_threads(args.threads)
    out = output_folder(args.output)
    info = machine()
    print(f"machine: {json.dumps(info)}", flush=True)
    path = out / "architecture.csv"
    old = pd.read_csv(path) if args.update and path.exists() else None
    start = time.perf_counter()
    tasks = [(name, dims, seed) for seed in args.seeds for name in sets for dims in args.dims]
    done = []
    for rows in Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
            delayed(measure)(*task, args.quick, args.threads) for task in tasks):
        done.extend(rows)
        conv, mlp = rows
        print(f"[{time.perf_counter() - start:.0f} s] {conv['data']} {conv['dims']}-D seed {conv['seed']}: conv head "
              f"{conv['head_acc']:.3f} in {conv['fit_s']:.0f} s, mlp {mlp['head_acc']:.3f} in {mlp['fit_s']:.0f} s",
              flush=True)
        merged(old, pd.DataFrame(done)).to_csv(path, index=False)  # a stopped run keeps what it did
    table = merged(old, pd.DataFrame(done))
    table["order"] = table.data.map(list(SHAPES).index)
    table = table.sort_values(["order", "dims", "seed", "architecture"], kind="stable").drop(columns="order")
    table.to_csv(path, index=False)
    summary = summarize(table)
    report = "\n\n".join([
        run_line(command_line("architecture", argv), info, load_average())
        + f" {len(done)} fits in {time.perf_counter() - start:.0f} s"
        + (f", merged into {len(table)} rows." if old is not None else "."),
        markdown(summary, floatfmt=".3f"),
    ])
    (out / "architecture.md").write_text(report + "\n")
    print("", report, sep="\n", flush=True)


if __name__ == "__main__":
    main()
