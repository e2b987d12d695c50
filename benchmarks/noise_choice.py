"""When to compare masking-noise candidates on validation rows.

    python -m benchmarks.noise_choice                 # docs/defaults.rst "Choosing on validation rows" (~30 min)
    python -m benchmarks.noise_choice --quick         # smoke test: digits, 8-D, 6 epochs

Writes ``noise_curves.csv`` to ``--output`` (default ``benchmarks/results``):
for each data set and fixed ``input_dropout`` (0, 0.1, 0.2, 0.3), a fit that
holds a tenth out (``early_stopping=True`` with a patience longer than the
fit, so it trains every epoch): the validation head accuracy averaged over
the last 5% of the epochs up to a quarter, a third, 0.4 and half of them,
and the test head accuracy of the last epoch. A comparison point is good
when the order there is the final one. (The session that chose the
comparison point also compared the defaults with the noise chosen among 0,
0.15 and 0.3 on validation rows; the noise check of
:mod:`benchmarks.noise_check` replaced that choice.)

Data: ``digits`` (scaled), and ``signals``: 1-D signals generated here, 10
classes, each a template of three sinusoids, shifted by up to a quarter of
the 64 samples, scaled by 0.5-1.5, with Gaussian noise of 1.5, standardised
(4,000 rows). A quarter of each set is the test split.
"""

import argparse

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from benchmarks.common import add_output_argument, markdown, output_folder
from skvae import DisentangledVAE
from skvae.datasets import load_digits

NOISES = (0.0, 0.1, 0.2, 0.3)
COMPARISON_POINTS = (1 / 4, 1 / 3, 0.4, 1 / 2)


def signals(n_samples=4000, n_features=64, n_classes=10, noise=1.5, random_state=0):
    """Shifted, scaled, noisy sums of three sinusoids; one template per class."""
    rng = np.random.default_rng(random_state)
    t = np.linspace(0, 1, n_features, endpoint=False)
    templates = []
    for _ in range(n_classes):
        frequencies, amplitudes, phases = rng.integers(1, 6, 3), rng.normal(size=3), rng.uniform(0, 2 * np.pi, 3)
        templates.append(sum(a * np.sin(2 * np.pi * f * t + p) for f, a, p in zip(frequencies, amplitudes, phases)))
    y = rng.integers(0, n_classes, n_samples)
    shift = n_features // 4
    X = np.stack([np.roll(templates[c], rng.integers(-shift, shift)) * rng.uniform(0.5, 1.5) for c in y])
    X += rng.normal(scale=noise, size=X.shape)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def load(name):
    return load_digits(return_X_y=True) if name == "digits" else signals()


class TestAccuracy(Callback):
    """The head's accuracy on held-out rows after every epoch (for the last epoch's)."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def on_train_begin(self, net, **kwargs):
        self.scores_ = []

    def on_epoch_end(self, net, **kwargs):
        net.module_.eval()
        import torch

        with torch.inference_mode():
            logits = net.module_.head_logits(net.module_.encode(torch.as_tensor(self.X))[0])
        self.scores_.append(float((logits.argmax(1).numpy() == self.y).mean()))


def curves(name, dims, seed, max_epochs):
    X, y = load(name)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    rows = []
    for noise in NOISES:
        test = TestAccuracy(np.asarray(X_test, dtype=np.float32), y_test)
        vae = DisentangledVAE(n_components=dims, input_dropout=noise, early_stopping=True, n_iter_no_change=10**6,
                              max_epochs=max_epochs, random_state=seed, callbacks=[test]).fit(X_train, y_train)
        valid = np.asarray(vae.validation_scores_)
        window = max(1, round(len(valid) * 0.05))
        row = {"data": name, "dims": dims, "seed": seed, "noise": noise}
        for point in COMPARISON_POINTS:
            end = max(1, round(len(valid) * point))
            row[f"valid at {point:.2f}"] = valid[max(0, end - window):end].mean()
        row["final test"] = test.scores_[-1]
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="digits, 8-D, seed 0, 6 epochs")
    add_output_argument(parser, "noise_curves.csv")
    args = parser.parse_args(argv)
    runs = [("digits", 8, 0), ("signals", 8, 0), ("digits", 2, 0), ("signals", 2, 0)]
    max_epochs = "auto"
    if args.quick:
        runs, max_epochs = runs[:1], 6
    out = output_folder(args.output)
    curve_rows = [row for run in runs for row in curves(*run, max_epochs)]
    pd.DataFrame(curve_rows).to_csv(out / "noise_curves.csv", index=False)
    print(markdown(pd.DataFrame(curve_rows)))


if __name__ == "__main__":
    main()
