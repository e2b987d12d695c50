"""Could the noise check's pilots train less (issue 24)? What pilots stopped earlier would have decided.

    python -m benchmarks.pilot_length --jobs 2     # 14 cases x 2-D, 8-D x seeds 0-2 (~10 min on 2 cores)
    python -m benchmarks.pilot_length --quick      # smoke test: digits, 2-D, seed 0, 16 epochs

The noise check of ``input_dropout="auto"``
(:func:`skvae._validation.check_input_dropout`) costs about half a fit: two
pilots, the width rule's noise and none, each train a stratified half of the
rows for half of the fit's epochs, then classify a held-out tenth. Shorter
pilots would cost less. This script trains the same two pilots through the
public API -- ``partial_fit`` one epoch at a time, with the full fit's
``max_epochs`` so that the schedules run as in the fit, on rows split as the
check splits them (:func:`skvae._validation.check_rows`) -- and predicts the
held-out rows after every epoch up to half of the fit. For each share of the
epochs in :data:`SHARES` it then makes the check's decision with the check's
own functions (``selection_epochs``, ``paired_comparison``,
``no_noise_wins``: the paired z and the lead over the last tenth of the fit's
epochs before that point), as pilots stopped there would.

What the check is for: the ``amplitudes`` signals of
:mod:`benchmarks.noise_check`, where the rule's noise erases the class (head
0.10 with it, 0.66-0.71 without). Everywhere else the rule's noise won the
full fit (``noise_check.csv``, ``architecture.csv``), so a switch there is a
false one. Cases: the sets of :mod:`benchmarks.noise_check` with the MLP, and
the image sets of :mod:`benchmarks.architecture` with the convolutional
encoder (``image_shape`` given). Writes ``pilot_length.csv`` (a row per case
and share) and ``pilot_length_summary.csv`` (a row per share).
"""

import json
import time

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed

from benchmarks import architecture, noise_check
from benchmarks.common import (
    command_line, grid_arguments, load_average, machine, markdown, output_folder, run_line, sets_present,
)
from skvae import DisentangledVAE
from skvae._validation import PILOT_ROW_SHARE, check_rows, no_noise_wins, paired_comparison, selection_epochs
from skvae.estimator import auto_input_dropout, auto_max_epochs

#: Shares of the fit's epochs at which pilots could stop; the check stops at 1/2.
SHARES = (1 / 8, 3 / 16, 1 / 4, 3 / 8, 1 / 2)
CONV_SETS = ("glyphs16", "mnist_perturbed", "mnist14", "mnist")
CASES = [*(f"{name}:mlp" for name in noise_check.SETS), *(f"{name}:conv" for name in CONV_SETS)]
QUICK_EPOCHS = 16
FULL_RUN = {"sets": CASES, "dims": [2, 8], "seeds": [0, 1, 2]}
QUICK_RUN = {"sets": ["digits:mlp"], "dims": [2], "seeds": [0]}


def load(case):
    name, encoder = case.split(":")
    if encoder == "conv":
        return architecture.load(name)
    X_train, X_test, y_train, y_test = noise_check.load(name)
    preprocess = noise_check.model(name, 2, 0)[:-1]  # the pipeline's scaler, if any
    if len(preprocess):
        X_train = preprocess.fit_transform(X_train)
    return np.asarray(X_train, dtype=np.float32), X_test, y_train, y_test


def estimator(case, dims, seed, **params):
    name, encoder = case.split(":")
    shape = {"image_shape": architecture.SHAPES[name]} if encoder == "conv" else {}
    return DisentangledVAE(n_components=dims, random_state=seed, **shape, **params)


def fit_length(case, dims, seed, X, y):
    """The default fit's ``max_epochs``: whether the head must arrange the classes comes from a one-epoch fit."""
    probe = estimator(case, dims, seed, input_dropout=0.0, max_epochs=1).fit(X, y)
    arranges = probe.class_prior_means_ is None and len(probe.classes_) > 1
    return auto_max_epochs(len(X), probe.batch_size, arranges_classes=arranges)


def pilot_predictions(case, dims, seed, X, y, rate, max_epochs, epochs, held_out, pilot_rows):
    """Held-out class predictions after each of a pilot's first ``epochs`` epochs: (epochs, n_held_out)."""
    vae = estimator(case, dims, seed, input_dropout=rate, max_epochs=max_epochs)
    predictions = []
    for _ in range(epochs):
        vae.partial_fit(X[pilot_rows], y[pilot_rows], classes=np.unique(y))
        predictions.append(vae.predict(X[held_out]))
    return np.stack(predictions)


def decisions(predictions, y_held_out, max_epochs, shares):
    """For each share, what pilots stopped there decide: accuracies, lead, paired z, switch."""
    rows = []
    for share in shares:
        stop, window = selection_epochs(max_epochs, share)
        z, accuracy = paired_comparison(*(p[stop - window:stop] == y_held_out for p in predictions))
        rows.append({"share": share, "stop_epoch": stop, "window": window, "acc_rule": accuracy[0],
                     "acc_none": accuracy[1], "lead_pts": 100 * (accuracy[1] - accuracy[0]), "z": z,
                     "switches": no_noise_wins(z, accuracy)})
    return rows


def measure(case, dims, seed, quick, threads):
    torch.set_num_threads(threads)
    X, _, y, _ = load(case)
    y = np.asarray(y)
    max_epochs = QUICK_EPOCHS if quick else fit_length(case, dims, seed, X, y)
    epochs = max(1, round(max_epochs * max(SHARES)))
    pilot_rows, held_out = check_rows(y, DisentangledVAE().validation_fraction, seed)
    rule = auto_input_dropout(X.shape[1])
    start = time.perf_counter()
    predictions = [pilot_predictions(case, dims, seed, X, y, rate, max_epochs, epochs, held_out, pilot_rows)
                   for rate in (rule, 0.0)]
    pilots_s = time.perf_counter() - start
    name, encoder = case.split(":")
    return [{"data": name, "encoder": encoder, "dims": dims, "seed": seed, "rule": rule, "max_epochs": max_epochs,
             "held_out": len(held_out), **row, "pilots_s": pilots_s}
            for row in decisions(predictions, y[held_out], max_epochs, SHARES)]


def summarize(table):
    """Per share: the pilots' cost, how many fits of the class-erasing set switch, how many others do."""
    pilot_rows = (1 - DisentangledVAE().validation_fraction) * PILOT_ROW_SHARE
    rows = []
    for share, g in table.groupby("share"):
        erasing = g.data == "amplitudes"
        rows.append({
            "share": f"{share:.3g}", "pilot cost (fits)": 2 * share * pilot_rows,
            "amplitudes switched": f"{int(g[erasing].switches.sum())} of {int(erasing.sum())}",
            "amplitudes lead (pts)": (f"{g[erasing].lead_pts.min():.1f} to {g[erasing].lead_pts.max():.1f}"
                                      if erasing.any() else "-"),
            "others switched": f"{int(g[~erasing].switches.sum())} of {int((~erasing).sum())}",
            "others' largest lead (pts)": g[~erasing].lead_pts.max(), "others' largest z": g[~erasing].z.max(),
        })
    return pd.DataFrame(rows)


def main(argv=None):
    args = grid_arguments(
        __doc__.splitlines()[0], argv, sets=CASES, quick_run=QUICK_RUN, full_run=FULL_RUN,
        quick_help=f"{QUICK_EPOCHS} epochs; digits, 2-D, seed 0", table="pilot_length.csv",
        files="pilot_length.csv and pilot_length_summary.csv",
    )
    out = output_folder(args.output)
    info = machine()
    print(f"machine: {json.dumps(info)}", flush=True)
    cases = sets_present(args.sets, load)  # each task loads its data again
    tasks = [(case, dims, seed) for seed in args.seeds for case in cases for dims in args.dims]
    start = time.perf_counter()
    results = Parallel(n_jobs=args.jobs)(delayed(measure)(*task, args.quick, args.threads) for task in tasks)
    table = pd.DataFrame([row for rows in results for row in rows])
    table.to_csv(out / "pilot_length.csv", index=False)
    summary = summarize(table)
    summary.to_csv(out / "pilot_length_summary.csv", index=False)
    print(run_line(command_line("pilot_length", argv), info, load_average())
          + f" {len(tasks)} case(s) in {time.perf_counter() - start:.0f} s\n")
    print(markdown(summary, floatfmt=".2f"))


if __name__ == "__main__":
    main()
