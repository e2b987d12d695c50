"""
=============================
Grid search on a Dask cluster
=============================

*Story:* which schedule of the classification weight works best depends on
the data, so you grid-search it -- one fit per candidate schedule and
cross-validation fold. The fits are independent of each other, so they can
run anywhere: scikit-learn hands them to joblib, and joblib's ``"dask"``
backend sends them to the workers of a `Dask <https://distributed.dask.org>`_
cluster. You want to run the search on a cluster without changing the
search itself.

This example runs it on a :class:`distributed.LocalCluster` of two worker
processes on this machine, then shows the one line that changes for a
remote cluster. It needs Dask's ``distributed`` package
(``pip install "skvae[dask]"``).
"""

# %%
# ``OMP_WAIT_POLICY=PASSIVE`` keeps torch's idle threads from busy-waiting
# (set before torch is imported); ``SKVAE_EXAMPLES_FAST=1`` shrinks the data
# and the training for the test suite.
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
FAST = os.environ.get("SKVAE_EXAMPLES_FAST") == "1"

# %%
# Data, model and grid
# --------------------
# The 8x8 digits (scaled to [0, 1] by :func:`skvae.datasets.load_digits`), a
# small network with a 2-dimensional latent space, and four schedules for
# the classification weight: the original recipe's sigmoid decay to 0.01
# (the estimator's default stops at a floor of 30), an earlier sigmoid
# decay, a linear decay and a constant weight. Ten epochs keep the example
# short; they are far too few for a well-trained model (the default
# ``max_epochs="auto"`` would train over ten times as many on 900 samples
# at this batch size), so the accuracies below are low and say little about which
# schedule is best: this example is about where the fits run. For the
# comparison itself, see
# :ref:`sphx_glr_auto_examples_plot_grid_search_schedule.py`.
import logging
import time

import matplotlib.pyplot as plt
from joblib import parallel_backend
from sklearn.model_selection import GridSearchCV

from skvae import Constant, DisentangledVAE, LinearDecay, SigmoidDecay
from skvae.datasets import load_digits

X, y = load_digits(return_X_y=True)
if FAST:
    X, y = X[:400], y[:400]

vae = DisentangledVAE(
    n_components=2,
    hidden_dims=(64,),
    max_epochs=2 if FAST else 10,
    batch_size=32,
    lr=1e-2,
    random_state=0,
)
schedules = [SigmoidDecay(), SigmoidDecay(midpoint=0.2), LinearDecay(), Constant(1.0)]
search = GridSearchCV(vae, {"classification_weight": schedules}, cv=2, n_jobs=-1)

# %%
# The search on a local cluster
# -----------------------------
# :class:`~distributed.LocalCluster` starts a scheduler and two worker
# processes with one thread each; :class:`~distributed.Client` connects to it
# and becomes the default client, the one joblib's ``"dask"`` backend uses.
# Inside ``parallel_backend("dask")``, ``n_jobs=-1`` means every worker
# thread of the cluster. Each task takes a clone of the estimator and its
# fold's data to a worker, which fits it and sends back the scores; the
# final refit on all the data runs here.
#
# The worker processes do not inherit this process's torch settings, so the
# environment they need goes with ``env``: one OpenMP thread each (two
# processes on two cores) and passive waiting.
#
# The workers start by importing this script, as any :mod:`multiprocessing`
# child does; the ``if __name__ == "__main__":`` guard keeps them from
# starting clusters of their own.
if __name__ == "__main__":
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        env={"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    print(f"{len(client.scheduler_info()['workers'])} workers, scheduler at {cluster.scheduler_address}")

    start = time.perf_counter()
    with parallel_backend("dask"):
        search.fit(X, y)
    n_fits = len(schedules) * search.n_splits_
    print(f"{n_fits} fits on the cluster and the refit here: {time.perf_counter() - start:.0f} s")

    client.close()
    cluster.close()

# %%
# The results
# -----------
# ``cv_results_`` is the one the same search gives with ``n_jobs=1`` in this
# process: each fit is seeded by ``random_state``, whichever worker runs it.
# Had a worker died mid-search, its nanny would have restarted it and the
# scheduler would have run its lost fits again, with the same results.
if __name__ == "__main__":
    results = search.cv_results_
    print(f"{'classification_weight':<28} accuracy")
    for params, mean, std in zip(results["params"], results["mean_test_score"], results["std_test_score"]):
        print(f"{params['classification_weight']!r:<28} {mean:.3f} +/- {std:.3f}")
    print(f"best: {search.best_params_['classification_weight']!r}")

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for schedule, mean in zip(schedules, results["mean_test_score"]):
        schedule.plot(100, ax=ax, label=f"{schedule!r}: accuracy {mean:.3f}")
    ax.set(xlabel="training progress (%)", yscale="log", title="Classification weight, with CV accuracy")
    ax.legend(fontsize="small")
    plt.show()

# %%
# On a remote cluster
# -------------------
# With a Dask scheduler running elsewhere (``dask scheduler`` on one machine,
# ``OMP_NUM_THREADS=1 dask worker tcp://scheduler:8786 --nthreads 1`` on each
# worker machine), only the client changes: connect it to the scheduler
# instead of starting a local cluster. The search is the same.
#
# .. code-block:: python
#
#     from distributed import Client
#
#     client = Client("tcp://scheduler:8786")
#     with parallel_backend("dask"):
#         search.fit(X, y)
#
# The workers need the same versions of skvae, torch and scikit-learn as
# this process, since estimators travel between them pickled. On other
# CPUs, scores can differ from a local run in the last digits (other float
# kernels). ``joblib.parallel_config(backend="dask")`` is the newer spelling
# of ``parallel_backend("dask")``; both work.
