"""Does weighting the classes help the head on imbalanced data? (issue 27)

    python -m benchmarks.class_weight              # 2-D and 8-D, seeds 0 and 1: 8 fits, ~2 min on 2 free cores

On the ``imbalanced`` set of :mod:`benchmarks.regret` (5 classes, 20:1 from
the largest to the smallest, 3,000 / 1,000, ``StandardScaler`` in front),
``DisentangledVAE(n_components=dims, random_state=seed)`` with its defaults
is fitted without weights and with
``sample_weight=compute_sample_weight("balanced", y_train)`` -- what a
``class_weight="balanced"`` parameter would pass. Both are judged on the
test split by the head's accuracy and balanced accuracy, and by those of a
5-NN fitted on the latent means of the training rows.

Writes ``class_weight.csv`` (one row per fit) and ``class_weight.md`` (the
means over seeds, with the command and machine) to ``--output`` (default
``benchmarks/results``).
"""

import argparse

import pandas as pd
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.class_weight import compute_sample_weight

from benchmarks.common import (
    add_output_argument, command_line, load_average, machine, markdown, output_folder, run_line, timed,
)
from benchmarks.regret import load, model, scores

WEIGHTINGS = ["none", "balanced"]


def measure(dims, seed, weighting, data):
    X_train, X_test, y_train, y_test = data
    pipe = model("imbalanced", dims, seed)
    weights = compute_sample_weight("balanced", y_train) if weighting == "balanced" else None
    _, fit_s = timed(lambda: pipe.fit(X_train, y_train, disentangledvae__sample_weight=weights))
    knn = KNeighborsClassifier(5).fit(pipe.transform(X_train), y_train)
    return {"dims": dims, "seed": seed, "weighting": weighting, "fit_s": fit_s,
            **scores("head", y_test, pipe.predict(X_test)),
            **scores("knn5", y_test, knn.predict(pipe.transform(X_test)))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    add_output_argument(parser, "class_weight.csv and class_weight.md")
    args = parser.parse_args(argv)
    out = output_folder(args.output)
    info = machine()
    data = load("imbalanced")
    rows = [measure(dims, seed, weighting, data)
            for dims in args.dims for seed in args.seeds for weighting in WEIGHTINGS]
    table = pd.DataFrame(rows)
    table.to_csv(out / "class_weight.csv", index=False)
    summary = table.groupby(["dims", "weighting"], sort=False).mean(numeric_only=True).drop(columns="seed")
    text = (f"{run_line(command_line('class_weight', argv), info, load_average())}\n\n"
            f"{markdown(summary.reset_index())}\n")
    (out / "class_weight.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
