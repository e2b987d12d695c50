"""skvae versus supervised UMAP side by side, and the training-step ladder, in one run (issue 25).

    python -m benchmarks.versus_umap              # MNIST 8,000 / 2,000 and digits, ladder on MNIST (~15 min)
    python -m benchmarks.versus_umap --quick      # smoke test: digits, 2 epochs, no compiled steps

Side by side, on the MNIST standard split and on digits (both as
``common.load_dataset`` splits them): skvae's ``DisentangledVAE(random_state=0)``
in float32 and with ``precision="bf16-mixed"`` (where the CPU runs bfloat16),
and supervised UMAP, ``umap.UMAP(n_components=2, random_state=0).fit(X, y)``
(umap-learn, the ``benchmarks`` extra; ``--quick`` goes on without it). Each
method fits each data set in a fresh process (``common.run_measurement_child``)
that has imported skvae, or umap, as a user's script does:

* ``first_fit_s`` -- the process's first fit, with what only a first fit pays
  (UMAP's numba compilation, or its load from numba's on-disk cache; torch's
  imports at the first optimizer step);
* ``warm_fit_s`` -- a second fit in the same process, same seed;
* ``transform_rows_s`` -- test rows per second of the second model's
  ``transform``, called until a second has passed;
* ``head_acc``, ``knn5_acc``, ``silhouette`` -- ``quality.evaluate`` of the
  second model (head: skvae's ``predict``; UMAP has none);
* ``*_vs_umap`` -- each figure over UMAP's on the same data set.

The ladder: samples/s of one MLP VAE training step (the default network,
batch 256, ``warmup_steps=0``) on the same rows (MNIST's 8,000 training rows;
``--quick``: digits'), by ``compiled_step.steady_state``: the hand-written loop
(``training_speed.hand_loop``) eager with Adam(foreach), eager with fused Adam,
``torch.compile`` of forward and loss with fused Adam, and the latter two
under bfloat16 autocast; skvae's ``fit`` with ``compile=False`` (the default)
and ``compile=True``, in float32 and ``bf16-mixed``, timed by its epochs (the
noise fixed at the width rule's, ``training_speed.skvae_epochs``). Each contender's FLOP
rate (``roofline.flop_counts``) is also given as a share of the float32 and of
the bfloat16 GEMM rate (``roofline.reference_gemm``) measured in the same
repeats: the median over repeats of the ratio of the two.

Writes ``versus_umap.csv`` (side by side) and ``versus_umap_ladder.csv`` to
``--output`` (default ``benchmarks/results``) and prints both as markdown.
"""

import argparse
import importlib.metadata
import importlib.util
import json

import numpy as np
import pandas as pd

from benchmarks import compiled_step, quality, roofline
from benchmarks.common import (
    add_output_argument, command_line, cpu_runs_bf16, load_average, load_dataset, machine, markdown, output_folder,
    run_line, run_measurement_child, seconds_per_call, timed,
)
from skvae import DisentangledVAE

UMAP = "supervised UMAP"
#: The side-by-side methods: name -> skvae's ``precision`` (None: UMAP).
METHODS = {"skvae fp32": "32", "skvae bf16-mixed": "bf16-mixed", UMAP: None}
#: Seconds of ``transform`` calls timed (after one untimed call).
TRANSFORM_SECONDS = 1.0
#: Seconds of reference GEMM calls timed in each ladder repeat.
GEMM_SECONDS = 0.5
BF16 = dict(precision="bf16-mixed")
#: The ladder's contenders: name -> the keyword arguments of ``compiled_step.train``.
LADDER = {
    **{name: settings for name, settings in compiled_step.LADDER.items() if settings["loop"] == "hand"},
    "hand loop, eager, Adam(fused), bf16 autocast": dict(loop="hand", **BF16),
    "hand loop, compiled + Adam(fused), bf16 autocast": dict(loop="hand", compiled=True, **BF16),
    **{name: settings for name, settings in compiled_step.LADDER.items() if settings["loop"] == "skvae"},
    "skvae fit, bf16-mixed, compile=False": dict(loop="skvae", **BF16),
    "skvae fit, bf16-mixed, compile=True": dict(loop="skvae", compiled=True, **BF16),
}
EAGER_FP32 = next(iter(LADDER))
GEMM = {"32": "fp32", "bf16-mixed": "bf16"}


def new_model(method, max_epochs):
    """An unfitted model of ``method``; skvae's with ``max_epochs`` unless None (its default)."""
    if method == UMAP:
        import umap  # the benchmarks extra, imported only where UMAP runs

        return umap.UMAP(n_components=2, random_state=0)
    epochs = {} if max_epochs is None else dict(max_epochs=max_epochs)
    return DisentangledVAE(random_state=0, precision=METHODS[method], **epochs)


def measure(dataset, method, max_epochs):
    """One row of the side-by-side table, measured in this (fresh) process."""
    data = X_train, X_test, y_train, _ = load_dataset(dataset)
    _, first = timed(lambda: new_model(method, max_epochs).fit(X_train, y_train))
    model, warm = timed(lambda: new_model(method, max_epochs).fit(X_train, y_train))
    scores = quality.evaluate(model.transform, None, data, None, None if method == UMAP else model.predict)
    seconds = seconds_per_call(lambda: model.transform(X_test), TRANSFORM_SECONDS)
    return dict(
        dataset=dataset, method=method, n_train=len(X_train), n_test=len(X_test),
        epochs=None if method == UMAP else model.max_epochs_, first_fit_s=first, warm_fit_s=warm,
        transform_rows_s=len(X_test) / seconds, head_acc=scores["head_acc"], knn5_acc=scores["knn5_acc"],
        silhouette=scores["silhouette"],
    )


def side_by_side(datasets, methods, max_epochs):
    """Every method on every data set, each in a fresh process, with the ratios to UMAP."""
    rows = []
    for dataset in datasets:
        for method in methods:
            args = [dataset, method, "default" if max_epochs is None else max_epochs]
            rows.append(dict(run_measurement_child("benchmarks.versus_umap", args, f"{method} on {dataset}"),
                             load=load_average()))
            print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    for column in ("first_fit_s", "warm_fit_s", "transform_rows_s"):
        umap_value = table[table.method == UMAP].set_index("dataset")[column]
        table[f"{column.removesuffix('_s')}_vs_umap"] = table[column] / table.dataset.map(umap_value)
    return table


def ladder(X, y, epochs, repeats, contenders, precisions):
    """The samples/s of each contender, against eager fp32, and its share of each precision's GEMM rate."""
    gemm = {precision: roofline.reference_gemm(precision) for precision in precisions}
    reference = {precision: f"GEMM {GEMM[precision]} GFLOP/s" for precision in precisions}
    beside = {reference[p]: lambda p=p: gemm[p][1] / seconds_per_call(gemm[p][0], GEMM_SECONDS) / 1e9
              for p in precisions}
    runs = {name: np.asarray(rates) for name, rates in
            compiled_step.steady_state(X, y, epochs, repeats, contenders, beside).items()}
    module = DisentangledVAE(random_state=0, max_epochs=1).fit(X[:256], y[:256]).net_.module_
    flops = roofline.flop_counts(module, X.shape[1])[1]["train"]
    rows = []
    for name, settings in contenders.items():
        row = dict(contender=name, precision=settings.get("precision", "32"), samples_s=float(np.median(runs[name])),
                   vs_eager_fp32=roofline.paired(runs[name], runs[EAGER_FP32]),
                   gflops=float(np.median(runs[name])) * flops / 1e9)
        for precision in precisions:
            row[f"share_of_{GEMM[precision]}_gemm"] = roofline.paired(runs[name] * flops / 1e9,
                                                                      runs[reference[precision]])
        rows.append(row)
    for precision in precisions:
        rows.append(dict(contender=f"GEMM 4096x784 @ 784x512, {GEMM[precision]}", precision=precision,
                         gflops=float(np.median(runs[reference[precision]]))))
    return pd.DataFrame(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="digits only, 2 epochs, one 1-epoch ladder repeat without compiled steps")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the ladder (default 3)")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)  # the child process of one method
    add_output_argument(parser, "versus_umap.csv and versus_umap_ladder.csv")
    args = parser.parse_args(argv)
    if args.measure:
        dataset, method, max_epochs = args.measure
        print(json.dumps(measure(dataset, method, None if max_epochs == "default" else int(max_epochs))))
        return
    out = output_folder(args.output)
    info = machine()
    umap_installed = importlib.util.find_spec("umap") is not None
    if not (umap_installed or args.quick):
        raise SystemExit("umap-learn is not installed: pip install -e '.[benchmarks]' (or run with --quick)")
    bf16 = cpu_runs_bf16()
    methods = [m for m in METHODS if (m != UMAP or umap_installed) and (bf16 or METHODS[m] != "bf16-mixed")]
    precisions = ["32", "bf16-mixed"] if bf16 else ["32"]
    contenders = {name: settings for name, settings in LADDER.items()
                  if settings.get("precision", "32") in precisions and not (args.quick and settings.get("compiled"))}
    version = importlib.metadata.version
    umap_version = (f"umap-learn {version('umap-learn')}, numba {version('numba')}" if umap_installed
                    else "umap-learn not installed")
    print(f"{umap_version}; bfloat16 {'runs' if bf16 else 'does not run'} on this CPU; load {load_average()}",
          flush=True)
    datasets, max_epochs = (["digits"], 2) if args.quick else (["mnist", "digits"], None)
    table = side_by_side(datasets, methods, max_epochs)
    table.to_csv(out / "versus_umap.csv", index=False)
    X, _, y, _ = load_dataset(datasets[0])
    epochs, repeats = (1, 1) if args.quick else (2, args.repeats)
    steps = ladder(X, y, epochs, repeats, contenders, precisions)
    steps.to_csv(out / "versus_umap_ladder.csv", index=False)
    print(f"\n{run_line(command_line('versus_umap', argv), info, load_average())} {umap_version}.\n")
    print(markdown(table.drop(columns="load"), floatfmt=",.3f"))
    print(f"\nLadder: {datasets[0]}, {len(X):,} rows x {epochs} epochs, median of {repeats}:\n")
    print(markdown(steps, floatfmt=",.3f"))
    print(f"\nwrote {out / 'versus_umap.csv'} and {out / 'versus_umap_ladder.csv'}")


if __name__ == "__main__":
    main()
