"""Which rule for choosing the masking noise on validation rows predicts the final head (issue 24).

    python -m benchmarks.noise_selection --jobs 2      # 8 sets, 2-D seeds 0-1 and 8-D seed 0 (~1.5 h on 2 free cores)
    python -m benchmarks.noise_selection --quick       # smoke test: digits, 2-D, 4 epochs
    python -m benchmarks.noise_selection --rules-only  # the tables from a saved noise_selection.jsonl

For each set, latent dimension, seed and candidate noise (0, 0.15 and 0.3:
what ``early_stopping="auto"`` chose among before the noise check of
:mod:`benchmarks.noise_check` replaced that choice),
one fit that holds the validation tenth out and trains every epoch of
``max_epochs="auto"`` (``early_stopping=True`` with a patience longer than
the fit) records, after every epoch, the head's accuracy on the validation
rows and on the test split. A candidate trained for part of the epochs is
the prefix of such a fit (same weights, batches and schedule), so every
selection rule -- compare after a share of the epochs, successive halving,
a smoothed score -- can be replayed on the curves: the rule picks a noise
from the validation curves, and scores the test accuracy of that noise's
last epoch. One more fit per set, dims and seed keeps every default
(``input_dropout="auto"`` by the width rule, no rows held out): the model a
user got when this ran (the records of ``benchmarks/results`` predate the
noise check; today's default also checks the rule's noise on pilot fits). The tables compare every rule's test head with the best
candidate's and with the default's, and give its cost in fits.

Writes ``noise_selection.jsonl`` (one fit per line: the curves; a run
that stops goes on where it stopped when started again with the same
``--output``) and ``noise_selection_rules.csv`` to ``--output``.

Sets: those of :mod:`benchmarks.regret` (MNIST ones skipped without MNIST)
and the 1-D ``signals`` of :mod:`benchmarks.noise_choice`.
"""

import argparse
import json

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed

from benchmarks import regret
from benchmarks.common import MnistMissing, add_output_argument, markdown, output_folder
from benchmarks.noise_choice import TestAccuracy, signals
from sklearn.model_selection import train_test_split

SETS = ["digits", "waveforms", "glyphs16", "wide", "imbalanced", "signals", "mnist14", "mnist_perturbed"]
RUNS = [(2, 0), (2, 1), (8, 0)]
DEFAULT = "default"  # the defaults' fit: input_dropout="auto" by the width rule, every row trained on
KEY = ("data", "dims", "seed", "noise")
#: The noises the former ``early_stopping="auto"`` chose among on held-out rows.
INPUT_DROPOUT_CANDIDATES = (0.0, 0.15, 0.3)


def load(name):
    if name == "signals":
        X, y = signals()
        return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    return regret.load(name)


def curve(name, dims, seed, noise, max_epochs, threads):
    """One fit's per-epoch head accuracies; ``noise="default"``: the defaults (no rows held out)."""
    torch.set_num_threads(threads)
    X_train, X_test, y_train, y_test = load(name)
    if noise == DEFAULT:
        pipe = regret.model(name, dims, seed, max_epochs=max_epochs)
    else:
        pipe = regret.model(name, dims, seed, input_dropout=noise, early_stopping=True, n_iter_no_change=10**6,
                            max_epochs=max_epochs)
    X_scaled_test = pipe[:-1].fit(X_train).transform(X_test) if len(pipe) > 1 else X_test
    test = TestAccuracy(np.asarray(X_scaled_test, dtype=np.float32), np.asarray(y_test))
    pipe[-1].set_params(callbacks=[test])
    pipe.fit(X_train, y_train)
    valid = pipe[-1].validation_scores_ if noise != DEFAULT else []
    return {"data": name, "dims": dims, "seed": seed, "noise": noise, "input_dropout_": pipe[-1].input_dropout_,
            "valid": list(map(float, valid)), "test": test.scores_}


def pick(valid_curves, rule):
    """The candidate index a rule picks from the candidates' validation curves, and its cost in fits."""
    n = len(valid_curves[0])

    def score(index, share, window_share=0.05):
        end = max(1, round(n * share))
        window = max(1, round(n * window_share))
        return np.mean(valid_curves[index][max(0, end - window):end])

    candidates = list(range(len(valid_curves)))
    kind, *args = rule
    if kind == "at":
        share, window_share = args
        return int(np.argmax([score(i, share, window_share) for i in candidates])), len(candidates) * share + (1 - share)
    if kind == "halving":  # all to share_1, best (k - 1) to share_2, best one to the end
        first, second = args
        kept = sorted(candidates, key=lambda i: -score(i, first))[:-1]
        best = max(kept, key=lambda i: score(i, second))
        cost = len(candidates) * first + len(kept) * (second - first) + (1 - second)
        return best, cost
    raise ValueError(rule)


RULES = [("at", 1 / 3, 0.05), ("at", 1 / 3, 0.15), ("at", 0.5, 0.1), ("halving", 0.25, 0.5), ("halving", 1 / 3, 0.6),
         ("at", 1.0, 0.05)]


def rule_name(rule):
    kind, first, second = rule
    if kind == "at":
        return f"best at {first:.2f} (window {second:.2f})"
    return f"halving {first:.2f} -> {second:.2f}"


def rules_table(records):
    """Per set, dims and seed: each candidate's final test head, and the noise each rule picks (its test head).

    Also a summary: per rule, its mean test head against the best
    candidate's and against the default's, how often it beat the default,
    and its cost in fits.
    """
    frame = pd.DataFrame(records)
    defaults = frame[frame.noise == DEFAULT].set_index(["data", "dims", "seed"])
    frame = frame[frame.noise != DEFAULT].astype({"noise": float})
    rows, losses = [], {rule_name(rule): [] for rule in RULES}
    for (name, dims, seed), group in frame.groupby(["data", "dims", "seed"]):
        if len(group) < len(INPUT_DROPOUT_CANDIDATES) or (name, dims, seed) not in defaults.index:
            continue  # a run still under way
        group = group.sort_values("noise")
        default = defaults.loc[(name, dims, seed)]
        valid, test, noises = list(group["valid"]), [t[-1] for t in group["test"]], list(group["noise"])
        row = {"data": name, "dims": dims, "seed": seed, "default p": default.input_dropout_,
               "default": default.test[-1],
               **{f"p={p:g}": t for p, t in zip(noises, test)}}
        for rule in RULES:
            index, _ = pick(valid, rule)
            row[rule_name(rule)] = f"{test[index]:.3f} (p={noises[index]:g})"
            losses[rule_name(rule)].append((max(test) - test[index], test[index] - default.test[-1]))
        rows.append(row)
    summary = pd.DataFrame([
        {"rule": rule_name(rule),
         "vs best candidate (pts)": -100 * np.mean([loss for loss, _ in losses[rule_name(rule)]]),
         "vs default (pts)": 100 * np.mean([gain for _, gain in losses[rule_name(rule)]]),
         "above the default": sum(gain > 0 for _, gain in losses[rule_name(rule)]),
         "below the default": sum(gain < 0 for _, gain in losses[rule_name(rule)]),
         "fits": len(losses[rule_name(rule)]),
         "best candidate vs default (pts)": 100 * np.mean([gain + loss for loss, gain in losses[rule_name(rule)]]),
         "cost (fits of 0.9 of the rows)": pick([[0.0] * 20] * len(INPUT_DROPOUT_CANDIDATES), rule)[1]}
        for rule in RULES
    ])
    return pd.DataFrame(rows), summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--sets", nargs="+", default=SETS)
    parser.add_argument("--rules-only", action="store_true")
    add_output_argument(parser, "noise_selection.jsonl")
    args = parser.parse_args(argv)
    out = output_folder(args.output)
    path = out / "noise_selection.jsonl"
    if not args.rules_only:
        runs, max_epochs = RUNS, "auto"
        sets = args.sets
        if args.quick:
            runs, max_epochs, sets = [(2, 0)], 4, ["digits"]
        tasks = []
        for name in sets:
            try:
                regret.load(name) if name != "signals" else None
            except MnistMissing as missing:
                print(f"skipping {name}: {missing}")
                continue
            tasks += [(name, dims, seed, noise) for dims, seed in runs for noise in (*INPUT_DROPOUT_CANDIDATES, DEFAULT)]
        done = {tuple(json.loads(line)[k] for k in KEY) for line in path.read_text().splitlines()} if path.exists() else set()
        tasks = [task for task in tasks if task not in done]  # an interrupted run goes on
        threads = 1 if args.jobs > 1 else torch.get_num_threads()
        with path.open("a") as stream:
            for record in Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
                delayed(curve)(*task, max_epochs, threads) for task in tasks
            ):
                stream.write(json.dumps(record) + "\n")
                stream.flush()
                print(record["data"], record["dims"], record["seed"], record["noise"], record["test"][-1], flush=True)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    table, summary = rules_table(records)
    table.to_csv(out / "noise_selection_rules.csv", index=False)
    print(markdown(table))
    print()
    print(markdown(summary))


if __name__ == "__main__":
    main()
