"""One rank of the data-parallel runs of ``test_data_parallel.py``.

Run as ``python data_parallel_run.py RANK WORLD_SIZE PORT OUT_DIR [BACKEND]``
in as many processes as ranks. Each rank joins the process group on
127.0.0.1 and goes through the scenarios below in order, writing what it
saw to ``OUT_DIR/rank{RANK}.npz`` (arrays) and ``.json`` (outcomes).
"""

import json
import os
import signal
import sys
import warnings

import numpy as np
import torch
import torch.distributed as dist
from skorch.callbacks import Callback, Checkpoint

from skvae import DisentangledVAE
from skvae.datasets import load_digits
from skvae.exceptions import DivergenceError

#: The fit every scenario runs: small, seeded, a few epochs.
PARAMS = dict(hidden_dims=(32, 16), classifier_hidden=(8,), max_epochs=3, batch_size=100, random_state=0)


class AtBatch(Callback):
    """Calls ``action(net, X)`` before the training batch ``batch`` (counted
    from 1 over the whole fit) on rank ``rank`` only."""

    def __init__(self, rank, batch, action):
        self.rank, self.batch, self.action = rank, batch, action

    def initialize(self):
        self.seen_ = 0
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        self.seen_ += 1
        if self.seen_ == self.batch and dist.get_rank() == self.rank:
            self.action(net, batch[0])


def make_nan(net, X):
    X.fill_(float("nan"))


def interrupt(net, X):
    os.kill(os.getpid(), signal.SIGINT)


def fail(net, X):
    raise RuntimeError("a failure of this rank alone")


def fit_outcome(X, y, sample_weight=None, **params):
    """``(estimator or None, outcome)`` of a fit: "fitted", "interrupted" or the error's type."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            vae = DisentangledVAE(**{**PARAMS, **params}).fit(X, y, sample_weight=sample_weight)
        except Exception as exc:  # noqa: BLE001 -- the outcome is what the test checks
            return None, f"{type(exc).__name__}: {exc}"
    interrupted = any("interrupted" in str(w.message) for w in caught)
    return vae, "interrupted" if interrupted else "fitted"


def main(rank, world_size, port, out, backend="gloo"):
    torch.set_num_threads(1)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    device = f"cuda:{rank}" if backend == "nccl" else "cpu"
    X, y = load_digits(return_X_y=True)
    X, y = X[:1000], y[:1000]
    arrays, outcomes = {}, {}

    vae, outcomes["parallel"] = fit_outcome(X, y, device=device)
    arrays.update(z=vae.transform(X), proba=vae.predict_proba(X), loss=vae.loss_curve_)
    vae.save(os.path.join(out, f"model_of_rank{rank}.skvae"))
    if rank == 0:
        # One process, the same global batch; the other ranks wait meanwhile.
        alone, outcomes["alone"] = fit_outcome(X, y, device=device, data_parallel=False)
        arrays.update(z_alone=alone.transform(X), proba_alone=alone.predict_proba(X), loss_alone=alone.loss_curve_)
    if backend == "nccl":
        return finish(out, rank, arrays, outcomes)

    # Semi-supervised, weighted: the class balance term is no sum over rows.
    rng = np.random.RandomState(0)
    y_semi = np.where(rng.rand(len(y)) < 0.2, y, -1)
    semi = dict(unlabeled_label=-1, sample_weight=rng.rand(len(y)) + 0.5)
    vae, outcomes["semi"] = fit_outcome(X, y_semi, **semi)
    arrays.update(z_semi=vae.transform(X))
    if rank == 0:
        alone, outcomes["semi_alone"] = fit_outcome(X, y_semi, data_parallel=False, **semi)
        arrays.update(z_semi_alone=alone.transform(X))

    checkpoint = Checkpoint(dirname=os.path.join(out, f"checkpoints_of_rank{rank}"), monitor=None)
    outcomes["checkpoint"] = fit_outcome(X, y, callbacks=[checkpoint])[1]

    diverging, outcomes["divergence"] = fit_outcome(X, y, callbacks=[AtBatch(1, 15, make_nan)])

    # 10 batches an epoch: rank 1 alone is interrupted in the second epoch.
    stopped, outcomes["interrupt_one"] = fit_outcome(X, y, callbacks=[AtBatch(1, 15, interrupt)])
    arrays.update(z_interrupt_one=stopped.transform(X), epochs_interrupt_one=len(stopped.history_))
    # Every rank, at different batches (as torchrun's forwarded Ctrl-C arrives).
    stopped, outcomes["interrupt_every"] = fit_outcome(X, y, callbacks=[AtBatch(rank, 13 + 3 * rank, interrupt)])
    arrays.update(epochs_interrupt_every=len(stopped.history_))

    outcomes["other_data"] = fit_outcome(X[: len(X) - rank], y[: len(y) - rank])[1]

    # Last: rank 1 fails alone and its process ends, which ends the group.
    finish(out, rank, arrays, outcomes)
    outcomes["failure_one"] = fit_outcome(X, y, callbacks=[AtBatch(1, 15, fail)])[1]
    finish(out, rank, arrays, outcomes)


def finish(out, rank, arrays, outcomes):
    np.savez(os.path.join(out, f"rank{rank}.npz"), **arrays)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as file:
        json.dump(outcomes, file)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:])
