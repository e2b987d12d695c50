"""Does the noise check of ``input_dropout="auto"`` keep the rule where it is right and overrule it where not (issue 24)?

    python -m benchmarks.noise_check --jobs 2     # 10 sets, 2-D and 8-D, seed 0 (~1 h on 2 busy cores)
    python -m benchmarks.noise_check --quick      # smoke test: digits, 2-D, 4 epochs

For each set and latent dimension, two fits on the same split: the default
(``input_dropout="auto"``: the width rule's noise, checked by two pilot
fits on held-out rows, :func:`skvae._validation.check_input_dropout`) and
the same estimator with the rule's noise fixed (the default before the
check). Where the check keeps the rule's noise, the two models must be the
same; where it switches to no noise, the table shows what that bought. The
fit times give the check's cost, as a ratio within one run.

Sets: those of :mod:`benchmarks.noise_selection` (the regret panel and the
1-D ``signals``), and two kinds of 1-D signals that no rule here was fitted
to, where the class is a property the masking noise disturbs or does not:

* ``amplitudes`` -- a sinusoid of random phase whose amplitude is the class
  (1 + 0.15 k, 10 classes), plus noise 0.3;
* ``frequencies`` -- a sinusoid of random phase and amplitude whose
  frequency is the class (2 + 0.25 k cycles per window, 10 classes), plus
  noise 0.8.

Both: 64 samples, 4,000 rows, 3,000 / 1,000, ``StandardScaler`` in front.
Writes ``noise_check.csv`` (one row per set and dims) to ``--output``.
"""

import argparse

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks import noise_selection, regret
from benchmarks.common import MnistMissing, add_output_argument, markdown, output_folder, timed

SIGNAL_KINDS = ["amplitudes", "frequencies"]
SETS = [*noise_selection.SETS, *SIGNAL_KINDS]
DIMS = [2, 8]


def sinusoids(kind, n_samples=4000, n_features=64, n_classes=10, random_state=0):
    """A sinusoid per row whose amplitude (``"amplitudes"``) or frequency (``"frequencies"``) is its class."""
    rng = np.random.default_rng(random_state)
    t = np.arange(n_features) / n_features
    y = rng.integers(0, n_classes, n_samples)
    phase = rng.uniform(0, 2 * np.pi, (n_samples, 1))
    if kind == "amplitudes":
        X = (1 + 0.15 * y[:, None]) * np.sin(2 * np.pi * 3 * t + phase)
        X += rng.normal(scale=0.3, size=(n_samples, n_features))
    else:
        amplitude = rng.uniform(0.5, 1.5, (n_samples, 1))
        X = amplitude * np.sin(2 * np.pi * (2 + 0.25 * y[:, None]) * t + phase)
        X += rng.normal(scale=0.8, size=(n_samples, n_features))
    return X.astype(np.float32), y


def load(name):
    if name in SIGNAL_KINDS:
        return regret.split(*sinusoids(name), test_size=1000)
    return noise_selection.load(name)


def model(name, dims, seed, **params):
    if name in SIGNAL_KINDS:
        return make_pipeline(StandardScaler(), regret.model(name, dims, seed, **params)[-1])
    return regret.model(name, dims, seed, **params)


def measure(name, dims, seed, max_epochs, threads):
    torch.set_num_threads(threads)
    X_train, X_test, y_train, y_test = load(name)
    # The process's one-off costs (torch's first optimizer imports) before the timed fits.
    model(name, dims, seed, max_epochs=1).fit(X_train[:300], y_train[:300])
    checked = model(name, dims, seed, max_epochs=max_epochs)
    _, checked_s = timed(lambda: checked.fit(X_train, y_train))
    vae = checked[-1]
    check = getattr(vae, "input_dropout_check_", None)
    rule = vae.setup_.input_dropout if check is None else check["input_dropout"][0]
    fixed = model(name, dims, seed, max_epochs=max_epochs, input_dropout=rule)
    _, fixed_s = timed(lambda: fixed.fit(X_train, y_train))
    same = check is not None and vae.input_dropout_ == rule
    return {
        "data": name, "dims": dims, "seed": seed, "n_train": len(X_train), "rule": rule,
        "checked": check is not None, "chosen": vae.input_dropout_,
        "pilot_acc_rule": np.nan if check is None else check["validation_accuracy"][0],
        "pilot_acc_none": np.nan if check is None else check["validation_accuracy"][1],
        "z": np.nan if check is None else check["z"],
        "head_default": checked.score(X_test, y_test), "head_rule": fixed.score(X_test, y_test),
        "same_model": bool(np.array_equal(checked.transform(X_test), fixed.transform(X_test))) if same else False,
        "fit_s_default": checked_s, "fit_s_rule": fixed_s, "cost": checked_s / fixed_s,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--sets", nargs="+", default=SETS)
    parser.add_argument("--dims", nargs="+", type=int, default=DIMS)
    parser.add_argument("--seed", type=int, default=0)
    add_output_argument(parser, "noise_check.csv")
    args = parser.parse_args(argv)
    sets, dims, max_epochs = (["digits"], [2], 4) if args.quick else (args.sets, args.dims, "auto")
    tasks = []
    for name in sets:
        try:
            load(name)
        except MnistMissing as missing:
            print(f"skipping {name}: {missing}")
            continue
        tasks += [(name, d, args.seed) for d in dims]
    threads = 1 if args.jobs > 1 else torch.get_num_threads()
    rows = Parallel(n_jobs=args.jobs)(delayed(measure)(*task, max_epochs, threads) for task in tasks)
    table = pd.DataFrame(rows)
    table.to_csv(output_folder(args.output) / "noise_check.csv", index=False)
    print(markdown(table))


if __name__ == "__main__":
    main()
