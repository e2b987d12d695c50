"""skvae's head accuracy alone, semi-supervised, on the splits of ``semi_supervised.py``.

A quicker companion of ``semi_supervised.py`` for comparing estimator
parameters: only ``DisentangledVAE(n_components, unlabeled_label=-1,
random_state=seed, **params)`` is fitted (no anchors, no plain VAE, no 100%
model), on the same data, labeled subsets and seeds, and its test accuracy
printed per setting with the mean over the seeds.

    python -m benchmarks.semi_supervised_head [--dataset digits] [--seeds 3] [--fractions 0.01 0.1]
        [--dims 2 8] [--params '{"pseudo_label_source": "head"}']
"""

import argparse
import json
import warnings

import numpy as np
import torch

from benchmarks.common import load_dataset, machine
from benchmarks.semi_supervised import labeled_mask
from skvae import DisentangledVAE


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--params", type=json.loads, default={}, help="estimator parameters, as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    X_train, X_test, y_train, y_test = load_dataset(args.dataset)
    print(f"machine: {json.dumps(machine())}")
    print(f"{args.dataset}, params {args.params}")
    for fraction in args.fractions:
        for dim in args.dims:
            scores = []
            for seed in range(args.seeds):
                y_semi = np.where(labeled_mask(y_train, fraction, seed), y_train, -1)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est = DisentangledVAE(dim, unlabeled_label=-1, random_state=seed, **args.params)
                    est.fit(X_train, y_semi)
                scores.append(est.score(X_test, y_test))
            seeds = np.round(scores, 3).tolist()
            print(f"{fraction:.0%} {dim}-D: mean {np.mean(scores):.3f}, seeds {seeds}", flush=True)


if __name__ == "__main__":
    main()
